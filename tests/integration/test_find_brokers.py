"""Finding the event against the real brokers: a key search on Kafka reads only the key's partitions
(and finds what reading them all finds), --until windows by time, --max-matches, the `scanned` line,
and the `live` line of follow reads (Kafka from the end, a RabbitMQ stream, an exchange tap): an event
published right after `live` is always shown.

Needs Kafka on 127.0.0.1:9092 and RabbitMQ on 5672/15672 (``bash tests/brokers/brokers.sh up``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from tests.brokers import endpoints
from tests.integration.rabbitmq_support import require_rabbitmq
from workbench.cli import app
from workbench.partitioning import partition_for

KAFKA = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"
RABBIT = endpoints.RABBIT_AMQP_URL
PARTITIONS = 12
BASE_MS = 1_700_000_000_000


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def scanned_json(stderr: str) -> dict:
    (line,) = [x for x in stderr.splitlines() if x.startswith("scanned ")]
    return json.loads(line.removeprefix("scanned "))


@pytest.fixture(scope="module")
def kafka_topic():
    """12 partitions, 1,200 events: keys order-0..order-199 (6 each), placed by murmur2 (a Java-like
    producer), stamped BASE_MS + i seconds."""
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(f"Kafka does not answer on {endpoints.KAFKA_BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`")
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    name = f"wb-find-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    try:
        # Idempotent: the first sends to a topic just created may be retried, and a retried batch
        # must not land after a later one (the windows below count on each partition's order).
        producer = Producer(
            {
                "bootstrap.servers": endpoints.KAFKA_BOOTSTRAP,
                "partitioner": "murmur2_random",
                "enable.idempotence": True,
            }
        )
        for i in range(1200):
            value = json.dumps({"n": i, "status": "failed" if i % 100 == 7 else "ok"}).encode()
            producer.produce(name, value=value, key=f"order-{i % 200}".encode(), timestamp=BASE_MS + i * 1000)
        assert producer.flush(30) == 0
        yield name
    finally:
        admin.delete_topics([name])[name].result(30)


pytestmark = pytest.mark.kafka


def test_kafka_key_search_reads_only_the_key_partition_and_finds_every_event(kafka_topic):
    home = partition_for(b"order-42", PARTITIONS, "murmur2")
    narrow = cli("--broker", KAFKA, "tail", kafka_topic, "--key", "order-42", "--partitioner", "murmur2", "-o", "jsonl")
    assert narrow.exit_code == 0, narrow.stderr
    found = [json.loads(line) for line in narrow.stdout.splitlines()]
    assert [json.loads(e["value"])["n"] for e in found] == [42, 242, 442, 642, 842, 1042]
    assert {e["partition"] for e in found} == {home}
    assert f"murmur2 -> {home}: reading partition {home} of {PARTITIONS}" in narrow.stderr
    figures = scanned_json(narrow.stderr)
    assert [p["partition"] for p in figures["partitions"]] == [home]
    assert figures["complete"] and figures["matched"] == 6 and figures["scanned"] < 1200 / 4

    everywhere = cli("--broker", KAFKA, "tail", kafka_topic, "--key", "order-42", "--all-partitions", "-o", "jsonl")
    assert everywhere.stdout == narrow.stdout
    assert scanned_json(everywhere.stderr)["scanned"] == 1200
    default = cli("--broker", KAFKA, "tail", kafka_topic, "--key", "order-42", "-o", "jsonl")
    assert default.stdout == narrow.stdout
    assert "crc32 -> " in default.stderr and scanned_json(default.stderr)["partitions_read"] <= 2


def test_kafka_window_by_time_max_matches_and_the_scanned_line(kafka_topic):
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

    window = cli(
        "--broker", KAFKA, "tail", kafka_topic, "--from", iso(BASE_MS + 100_000), "--until", iso(BASE_MS + 299_000),
        "-o", "jsonl",
    )  # fmt: skip
    assert window.exit_code == 0, window.stderr
    assert sorted(json.loads(json.loads(x)["value"])["n"] for x in window.stdout.splitlines()) == list(range(100, 300))
    figures = scanned_json(window.stderr)
    assert figures["scanned"] == 200 and figures["complete"] and len(figures["partitions"]) == PARTITIONS

    first = cli("--broker", KAFKA, "tail", kafka_topic, "--filter", 'value.status == "failed"', "--max-matches", "1")
    assert first.exit_code == 0 and first.stdout.count("failed") == 1
    line = [x for x in first.stderr.splitlines() if x.startswith("scanned ")][0]
    assert "1 matched" in line and "stopped after 1 match (--max-matches)" in line and "not read to the end" in line


def follower(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", *argv, "--follow", "-o", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_live(proc: subprocess.Popen) -> str:
    """The stderr lines up to the one that says `live` (none is ever printed after an event)."""
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if "live" in line:
            return line
    raise AssertionError(f"no live line: {seen}")


def first_event(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.poll() is not None else "no event"
    return json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(15)


def test_kafka_follow_from_the_end_says_live_once_assigned(kafka_topic):
    proc = follower("--broker", KAFKA, "tail", kafka_topic)
    try:
        assert "live" in wait_live(proc)
        producer = Producer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
        producer.produce(kafka_topic, value=b"right-after-live", key=b"k")
        assert producer.flush(10) == 0
        assert first_event(proc)["value"] == "right-after-live"
    finally:
        stop(proc)


@pytest.mark.rabbitmq
def test_an_exchange_tap_says_live_once_bound_and_sees_the_next_message():
    require_rabbitmq()
    exchange = f"wb-find-x-{uuid.uuid4().hex[:8]}"

    async def declare_and(publish: bool) -> None:
        conn = await aio_pika.connect(RABBIT, timeout=10)
        try:
            ch = await conn.channel(publisher_confirms=True)
            x = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=False)
            if publish:  # mandatory: the broker refuses it when no queue (no tap) is bound yet
                await x.publish(aio_pika.Message(b"right-after-live"), routing_key="order.created", mandatory=True)
            else:
                return
        finally:
            await conn.close()

    async def delete() -> None:
        conn = await aio_pika.connect(RABBIT, timeout=10)
        try:
            await (await conn.channel()).exchange_delete(exchange)
        finally:
            await conn.close()

    asyncio.run(declare_and(False))
    proc = follower("--broker", RABBIT, "tail", exchange)
    try:
        line = wait_live(proc)
        assert "tap queue is bound" in line
        asyncio.run(declare_and(True))
        assert first_event(proc)["value"] == "right-after-live"
    finally:
        stop(proc)
        asyncio.run(delete())


@pytest.mark.rabbitmq
def test_a_stream_follow_from_the_end_says_live_and_sees_the_next_message():
    require_rabbitmq()
    stream = f"wb-find-s-{uuid.uuid4().hex[:8]}"

    async def with_channel(work) -> None:
        conn = await aio_pika.connect(RABBIT, timeout=10)
        try:
            await work(await conn.channel(publisher_confirms=True))
        finally:
            await conn.close()

    async def declare(ch) -> None:
        await ch.declare_queue(stream, durable=True, arguments={"x-queue-type": "stream"})
        await ch.default_exchange.publish(aio_pika.Message(b"old"), routing_key=stream)

    async def publish(ch) -> None:
        await ch.default_exchange.publish(aio_pika.Message(b"right-after-live"), routing_key=stream)

    async def delete(ch) -> None:
        await ch.queue_delete(stream)

    asyncio.run(with_channel(declare))
    proc = follower("--broker", RABBIT, "tail", stream)
    try:
        assert "live" in wait_live(proc)
        asyncio.run(with_channel(publish))
        assert first_event(proc)["value"] == "right-after-live"
    finally:
        stop(proc)
        asyncio.run(with_channel(delete))
