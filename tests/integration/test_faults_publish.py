"""A broker stopped during ``publish`` of 100,000 events, then a re-run with the same journal (issue 7).

Each test runs ``python -m workbench publish --file F --journal J`` as a real subprocess (rate-limited
so that the stop lands in the middle), stops the broker once the journal holds part of the input,
and checks that the command:

* ends within its timeout (``delivery_timeout_s`` + ``timeout_s`` + a margin for the process),
* exits 7 and reports exactly how many events were confirmed (the journal records the same lines),
* left on the broker every confirmed event, once, and nothing beyond what it sent and did not get
  confirmed (an event in flight when the broker went away may have been written: that is the
  documented limit, counted and printed, never silent);

then starts the broker and re-runs the same command: it skips what was confirmed and sends the rest,
so every sequence number is present, the confirmed ones exactly once.

Stops and starts the test brokers with ``bash tests/brokers/brokers.sh down|up NAME`` (once per
test): that disturbs anything else using that broker meanwhile. Needs Kafka and RabbitMQ running
to begin with; without them these tests fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import endpoints

REPO = Path(__file__).resolve().parents[2]
N = 100_000
RATE = 8000  # events/s: the whole input takes ~12 s, so the stop lands in the middle
DELIVERY_TIMEOUT_S = 8
TIMEOUT_S = 5
#: How long the command may take after the stop: the batch in flight waits out its delivery
#: timeout, then the report is written. The margin covers a loaded 2-core machine.
ENDS_WITHIN_S = DELIVERY_TIMEOUT_S + TIMEOUT_S + 15


def brokers(*args: str) -> None:
    done = subprocess.run(["bash", str(endpoints.BROKERS_SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"brokers.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}"


def write_input(path: Path) -> None:
    with open(path, "w") as f:
        for i in range(1, N + 1):
            f.write(json.dumps({"key": f"k{i % 97}", "value": f"seq-{i}"}) + "\n")


def journal_lines(path: Path) -> set[int]:
    """The line numbers a journal records as confirmed (its documented text format)."""
    if not path.exists():
        return set()
    text = path.read_text()
    records = text.split("\n")[1:]
    if not text.endswith("\n"):
        records = records[:-1]  # being written
    confirmed: set[int] = set()
    for record in filter(None, records):
        for part in record.removeprefix("c ").split(","):
            low, _, high = part.partition("-")
            confirmed.update(range(int(low), int(high or low) + 1))
    return confirmed


def publish(url: str, topic: str, source: Path, journal: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-m",
        "workbench",
        "--broker",
        url,
        "publish",
        topic,
        "--file",
        str(source),
        "--journal",
        str(journal),
        "-o",
        "json",
        *extra,
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for_journal(journal: Path, proc: subprocess.Popen, at_least: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while len(journal_lines(journal)) < at_least:
        assert proc.poll() is None, f"publish ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"the journal did not reach {at_least} lines in {timeout:g} s"
        time.sleep(0.05)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, dict, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"publish did not end within {timeout:g} s:\n{err.decode()[-2000:]}") from None
    return proc.returncode, json.loads(out), err.decode()


def fault_and_rerun(url: str, topic: str, broker: str, tmp_path: Path, read_back) -> None:
    """The scenario shared by every broker; ``read_back()`` returns the values on the broker."""
    source, journal = tmp_path / "seq.jsonl", tmp_path / "seq.journal"
    write_input(source)
    proc = publish(url, topic, source, journal, "--rate", str(RATE))
    stopped = False
    try:
        wait_for_journal(journal, proc, at_least=N // 5)
        stop_started = time.monotonic()
        brokers("down", broker)
        stopped = True
        down_took = time.monotonic() - stop_started
        code, report, err = finish(proc, timeout=ENDS_WITHIN_S + (time.monotonic() - stop_started))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if stopped:
            brokers("up", broker)
    ended_after = time.monotonic() - stop_started

    assert code == 7, err[-2000:]
    confirmed = journal_lines(journal)
    assert 0 < report["confirmed"] < N
    assert report["confirmed"] == len(confirmed), "the report and the journal disagree"
    assert report["confirmed"] + report["failed"] + report["not_sent"] == N
    assert f"{N - report['confirmed']:,} of {N:,} event(s) were not confirmed" in err

    values = read_back()
    present = collections.Counter(values)
    assert all(present[f"seq-{i}"] == 1 for i in confirmed), "a confirmed event is missing or doubled"
    uncertain = len(values) - len(confirmed)  # written while in flight, never confirmed
    assert 0 <= uncertain <= report["failed"], (uncertain, report)
    assert max(present.values()) == 1

    code, again, err = finish(publish(url, topic, source, journal), timeout=180)
    assert code == 0, err[-2000:]
    assert again["skipped"] == len(confirmed) and again["confirmed"] == N - len(confirmed)
    values = read_back()
    present = collections.Counter(values)
    assert set(present) == {f"seq-{i}" for i in range(1, N + 1)}, "an event is missing after the re-run"
    doubled = {v for v, n in present.items() if n > 1}
    assert all(n <= 2 for n in present.values())
    assert not doubled & {f"seq-{i}" for i in confirmed}, "the re-run sent a confirmed event again"
    assert len(doubled) == uncertain
    print(
        f"\nFAULT publish {broker}: {N} events, stopped after {report['confirmed']} confirmed "
        f"({report['failed']} failed in flight, {report['not_sent']} not sent); ended {ended_after:.1f} s "
        f"after the stop began (stopping took {down_took:.1f} s); written but unconfirmed {uncertain}; re-run sent {again['confirmed']}, "
        f"skipped {again['skipped']}; doubled {len(doubled)}",
        file=sys.stderr,
    )


@pytest.mark.kafka
def test_kafka_stopped_during_publish_then_rerun(tmp_path):
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(
            f"Kafka does not answer on {endpoints.KAFKA_BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`",
            pytrace=False,
        )
    topic = f"it-fault-pub-{uuid.uuid4().hex[:8]}"
    # A client for this alone (its futures die with it), closed before the outage: one kept open
    # through it would log its reconnects to stderr.
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    del admin

    def read_back() -> list[str]:
        consumer = Consumer(
            {
                "bootstrap.servers": endpoints.KAFKA_BOOTSTRAP,
                "group.id": f"it-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        try:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(3)}
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
            values, left, deadline = [], {p for p, end in ends.items() if end > 0}, time.monotonic() + 120
            while left:
                assert time.monotonic() < deadline, "reading the topic back took too long"
                for m in consumer.consume(5000, 1.0):
                    if m.error():
                        continue
                    values.append(m.value().decode())
                    if m.offset() + 1 >= ends[m.partition()]:
                        left.discard(m.partition())
            return values
        finally:
            consumer.close()

    url = f"kafka://{endpoints.KAFKA_BOOTSTRAP}?delivery_timeout_s={DELIVERY_TIMEOUT_S}&timeout_s={TIMEOUT_S}"
    try:
        fault_and_rerun(url, topic, "kafka", tmp_path, read_back)
    finally:
        admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
        admin.delete_topics([topic], operation_timeout=30)[topic].result(60)


@pytest.mark.rabbitmq
def test_rabbitmq_stopped_during_publish_then_rerun(tmp_path):
    if not endpoints.port_open(endpoints.RABBIT_HOST, endpoints.RABBIT_AMQP_PORT):
        pytest.fail("RabbitMQ does not answer on 127.0.0.1:5672: run `bash tests/brokers/brokers.sh up`", pytrace=False)
    queue = f"it-fault-pub-{uuid.uuid4().hex[:8]}"

    async def declare() -> None:
        connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
        async with connection:
            await (await connection.channel()).declare_queue(queue, durable=True)

    async def drain() -> list[str]:
        """Every message now in the queue, taken (the test owns the queue)."""
        connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=2000)
            q = await channel.declare_queue(queue, durable=True, passive=True)
            waiting = q.declaration_result.message_count
            values: list[str] = []
            if waiting:
                async with q.iterator(no_ack=True) as messages:
                    async for message in messages:
                        values.append(message.body.decode())
                        if len(values) == waiting:
                            break
            return values

    taken: list[str] = []

    def read_back() -> list[str]:
        """All that reached the queue so far: a queue hands each message once, so keep what was taken."""
        taken.extend(asyncio.run(drain()))
        return list(taken)

    asyncio.run(declare())
    url = f"{endpoints.RABBIT_AMQP_URL}?delivery_timeout_s={DELIVERY_TIMEOUT_S}&timeout_s={TIMEOUT_S}"
    try:
        fault_and_rerun(url, queue, "rabbitmq", tmp_path, read_back)
    finally:

        async def delete() -> None:
            connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
            async with connection:
                await (await connection.channel()).queue_delete(queue)

        asyncio.run(delete())
