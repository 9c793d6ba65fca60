"""`lag explain`, `--fail-on`/`--once`, `--watch -o jsonl` changes and `--serve` against real brokers.

Kafka: a 2-partition topic with 20 keyed events carrying a correlation id; a real consumer in the
group reads and commits the first 6 of partition 0 and 4 of partition 1, then stays in the group
without consuming (alive, stuck: STALL). A dead-letter topic holds one event with the key of the
event partition 0 is stuck at. RabbitMQ: a queue with 1,000 messages and no consumer (NOCONSUMER),
and a dead-letter queue holding a message with the stuck message's correlation id.

Needs Kafka on 127.0.0.1:9092 and RabbitMQ on 5672/15672 (``bash tests/brokers/brokers.sh up``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.brokers import endpoints
from workbench.cli import app

pytestmark = [pytest.mark.timeout(120)]

KAFKA = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"
RABBIT = endpoints.RABBIT_AMQP_URL
COMMITTED = {0: 6, 1: 4}
EVENTS_PER_PARTITION = 10


def cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- Kafka fixture


@pytest.fixture(scope="module")
def stuck_kafka_group():
    """(group, topic, dead-letter topic, the consumer's client id); all removed afterwards."""
    endpoints.require_kafka()
    tag = uuid.uuid4().hex[:8]
    topic, dlt, group = f"it-lagx-{tag}", f"it-lagx-{tag}.DLT", f"it-lagx-{tag}-billing"
    client_id = f"billing-worker-{tag}"
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    for f in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(dlt, 1, 1)], operation_timeout=30).values():
        f.result(60)
    consumer = None
    try:
        producer = Producer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
        for p in range(2):
            for n in range(EVENTS_PER_PARTITION):
                producer.produce(
                    topic,
                    json.dumps({"order": n, "correlationId": f"corr-{p}-{n}"}).encode(),
                    f"order-{p}-{n}".encode(),
                    partition=p,
                )
        stuck_key = f"order-0-{COMMITTED[0]}".encode()
        producer.produce(dlt, b'{"failed": true}', stuck_key, headers=[("kafka_dlt-exception-fqcn", b"x.Poison")])
        assert producer.flush(30) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": endpoints.KAFKA_BOOTSTRAP,
                "group.id": group,
                "client.id": client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not consumer.assignment():
            consumer.poll(0.2)
            assert time.monotonic() < deadline, "the consumer got no assignment in 30 s"
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in COMMITTED.items()], asynchronous=False)
        yield group, topic, dlt, client_id  # the consumer stays in the group, consuming nothing
    finally:
        if consumer is not None:
            consumer.close()
        for f in admin.delete_consumer_groups([group], request_timeout=30).values():
            try:
                f.result(30)
            except Exception:  # noqa: BLE001 - best effort: a group never made
                pass
        for f in admin.delete_topics([topic, dlt], operation_timeout=30).values():
            f.result(60)


def test_kafka_explain_names_owner_rule_stuck_event_and_dead_letter(stuck_kafka_group, tmp_path: Path):
    group, topic, dlt, client_id = stuck_kafka_group
    profile = tmp_path / "workbench.toml"
    profile.write_text(
        f'[profiles.prod]\nbroker = "{KAFKA}"\n\n[profiles.prod.dead_letters]\n"{group}" = "{dlt}"\n', encoding="utf-8"
    )
    result = cli(
        "--profile",
        "prod",
        "lag",
        "explain",
        group,
        "--samples",
        "2",
        "--interval",
        "0.5",
        "-o",
        "json",
        env={"WORKBENCH_CONFIG": str(profile)},
    )
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["group"] == group and found["verdict"] == "STALL"
    assert found["total_lag"] == sum(EVENTS_PER_PARTITION - c for c in COMMITTED.values())
    assert found["dead_letters"] == dlt
    parts = {p["partition"]: p for p in found["partitions"]}
    assert set(parts) == {0, 1}
    assert [p["partition"] for p in found["partitions"]] == [0, 1] or parts[1]["lag"] >= parts[0]["lag"]
    p0 = parts[0]
    assert p0["owner"]["client_id"] == client_id and p0["owner"]["host"]
    assert p0["verdict"] == "STALL" and p0["rule"] == "committed offset not moving while lag > 0"
    assert p0["figures"]["committed"] == COMMITTED[0] and p0["figures"]["samples"] == 2
    assert p0["lag"] == EVENTS_PER_PARTITION - COMMITTED[0]
    assert p0["seconds_to_drain"] == "never"  # nothing consumed in the window
    assert p0["time_lag_measured"] and p0["time_lag_ms"] >= 0
    assert p0["event"]["offset"] == COMMITTED[0] and p0["event"]["key"] == f"order-0-{COMMITTED[0]}"
    assert p0["dead_letter_check"]["key_found"] is True and p0["dead_letter_check"]["found"] is True
    assert p0["dead_letter_check"]["correlation_id"] == f"corr-0-{COMMITTED[0]}"
    assert p0["dead_letter_check"]["correlation_found"] is False
    assert parts[1]["event"]["offset"] == COMMITTED[1]
    assert parts[1]["dead_letter_check"]["key_found"] is False

    table = cli("--broker", KAFKA, "lag", "explain", group, "--samples", "2", "--interval", "0.3")
    assert table.exit_code == 0, table.stderr
    assert f"owner: {client_id} on " in table.stdout
    assert "stuck at (at the committed offset):" in table.stdout
    assert f"0/{COMMITTED[0]}" in table.stdout and f"order-0-{COMMITTED[0]}" in table.stdout
    assert "drains: never at the current rates" in table.stdout


def test_kafka_fail_on_exits_11_naming_the_group(stuck_kafka_group):
    group, *_ = stuck_kafka_group
    result = cli(
        "--broker", KAFKA, "lag", "--group", group, "--watch", "--interval", "0.3", "--fail-on", "stall,stop",
        "--iterations", "20",
    )  # fmt: skip
    assert result.exit_code == 11, (result.stdout, result.stderr)
    assert f"alarm: {group} STALL: committed offset not moving while lag > 0" in result.stderr
    assert "reached a verdict of --fail-on STALL,STOP" in result.stderr


def test_kafka_once_judges_one_window_and_writes_each_verdict_once(stuck_kafka_group):
    group, *_ = stuck_kafka_group
    result = cli(
        "--broker", KAFKA, "lag", "--group", group, "--once", "--window", "3", "--interval", "0.3", "-o", "jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr  # no --fail-on: a report, not an alarm
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["group"], x["verdict"], x["previous"]) for x in lines] == [(group, "STALL", None)]
    assert lines[0]["figures"]["samples"] == 3 and lines[0]["worst_partition"]["partition"] in (0, 1)
    alarmed = cli(
        "--broker", KAFKA, "lag", "--group", group, "--once", "--window", "2", "--interval", "0.2",
        "--fail-on", "WARN,STALL",
    )  # fmt: skip
    assert alarmed.exit_code == 11


def test_kafka_watch_jsonl_writes_only_verdict_changes(stuck_kafka_group):
    group, *_ = stuck_kafka_group
    result = cli(
        "--broker", KAFKA, "lag", "--group", group, "--watch", "--iterations", "5", "--window", "3",
        "--interval", "0.2", "-o", "jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["verdict"] for x in lines] == ["UNKNOWN", "STALL"]  # 5 refreshes, 2 changes
    assert lines[1]["previous"] == "UNKNOWN" and lines[1]["rule"] == "committed offset not moving while lag > 0"
    assert lines[1]["total_lag"] == sum(EVENTS_PER_PARTITION - c for c in COMMITTED.values())
    assert lines[1]["in_rate"] == 0 and lines[1]["out_rate"] == 0 and lines[1]["seconds_to_drain"] is None


# --------------------------------------------------------------------------- --serve


class Served:
    """`workbench lag --serve` in a subprocess, scraped over HTTP."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", *args, "--serve", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    def scrape_until(self, wanted, timeout: float = 60.0) -> dict:
        """The samples ({(name, labels): value}) of the first scrape for which ``wanted`` holds."""
        deadline = time.monotonic() + timeout
        samples: dict = {}
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples
            }
            if wanted(samples):
                return samples
            time.sleep(0.2)
        raise AssertionError(f"no scrape satisfied the test in {timeout} s; last: {sorted(samples)[:20]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def value(samples: dict, name: str, **labels: str):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_serve_exposes_kafka_lag_verdict_and_drain_per_group_and_partition(stuck_kafka_group):
    group, topic, *_ = stuck_kafka_group
    served = Served("--broker", KAFKA, "lag", "--group", group, "--interval", "0.3", "--window", "3")
    try:
        samples = served.scrape_until(
            lambda s: value(s, "workbench_group_verdict", group=group, verdict="STALL") is not None
        )
    finally:
        served.stop()
    total = sum(EVENTS_PER_PARTITION - c for c in COMMITTED.values())
    assert value(samples, "workbench_group_lag_events", group=group) == total
    assert value(samples, "workbench_group_verdict", group=group, verdict="STALL") == 3
    for p, c in COMMITTED.items():
        labels = {"group": group, "topic": topic, "partition": str(p)}
        assert value(samples, "workbench_lag_events", **labels) == EVENTS_PER_PARTITION - c
        assert value(samples, "workbench_lag_verdict", **labels, verdict="STALL") == 3
        assert value(samples, "workbench_lag_drain_seconds", **labels) == float("inf")
    assert value(samples, "workbench_group_drain_seconds", group=group) == float("inf")
    assert value(samples, "workbench_lag_groups") == 1
    assert value(samples, "workbench_lag_refresh_failures_total") == 0


# --------------------------------------------------------------------------- RabbitMQ


@pytest.fixture
def unread_queue():
    """A queue with 1,000 messages and no consumer, and a dead-letter queue; both deleted afterwards."""
    yield from _unread_queue()


def _unread_queue():
    endpoints.require_rabbitmq()
    import asyncio

    import aio_pika

    tag = uuid.uuid4().hex[:8]
    queue, dlq = f"it-lagx-{tag}-invoices", f"it-lagx-{tag}-invoices.dlq"

    async def setup() -> None:
        conn = await aio_pika.connect(RABBIT, timeout=10)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            for name in (queue, dlq):
                await ch.declare_queue(name, durable=False)
            for n in range(1000):
                await ch.default_exchange.publish(
                    aio_pika.Message(f'{{"n": {n}}}'.encode(), correlation_id=f"inv-{n}"), routing_key=queue
                )
            await ch.default_exchange.publish(
                aio_pika.Message(b'{"failed": true}', correlation_id="inv-0"), routing_key=dlq
            )

    async def teardown() -> None:
        conn = await aio_pika.connect(RABBIT, timeout=10)
        async with conn:
            ch = await conn.channel()
            for name in (queue, dlq):
                await ch.queue_delete(name)

    asyncio.run(setup())
    try:
        _wait_for_depth(queue, 1000)
        yield queue, dlq
    finally:
        asyncio.run(teardown())


def _wait_for_depth(queue: str, depth: int) -> None:
    """The management statistics lag the broker by a few seconds."""
    deadline = time.monotonic() + 30
    url = f"{endpoints.RABBIT_MANAGEMENT_URL}/api/queues/%2F/{queue}"
    while time.monotonic() < deadline:
        got = httpx.get(url, auth=(endpoints.RABBIT_USER, endpoints.RABBIT_PASSWORD), timeout=5).json()
        if got.get("messages") == depth:
            return
        time.sleep(0.3)
    raise AssertionError(f"queue {queue} never showed {depth} messages in its statistics")


def test_rabbitmq_queue_with_no_consumer_is_listed_first_with_noconsumer(unread_queue):
    queue, _ = unread_queue
    as_json = cli("--broker", RABBIT, "lag", "-o", "json")
    assert as_json.exit_code == 0, as_json.stderr
    mine = [g for g in json.loads(as_json.stdout) if g["group"] == queue]
    assert len(mine) == 1 and mine[0]["total_lag"] == 1000
    assert mine[0]["verdict"] == "NOCONSUMER" and mine[0]["figures"] == {"messages": 1000, "consumers": 0}

    table = cli("--broker", RABBIT, "lag")
    assert table.exit_code == 0, table.stderr
    (note,) = [line for line in table.stderr.splitlines() if line.startswith(f"{queue}: ")]
    assert note.startswith(f"{queue}: total lag 1000 ({queue} 1000;")
    assert note.endswith("; NOCONSUMER: messages waiting and no consumer)")
    rows = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    nobody = {g["group"] for g in json.loads(as_json.stdout) if g.get("verdict") == "NOCONSUMER"}
    assert queue in rows and set(rows[: len(nobody)]) == nobody  # the unread queues lead the table

    watched = cli("--broker", RABBIT, "lag", "--watch", "--iterations", "1", "-o", "jsonl")
    assert watched.exit_code == 0, watched.stderr
    lines = {x["group"]: x for x in map(json.loads, watched.stdout.splitlines())}
    assert (
        lines[queue]["verdict"] == "NOCONSUMER" and lines[queue]["because"] == "1,000 message(s) waiting, 0 consumer(s)"
    )

    alarm = cli("--broker", RABBIT, "lag", "--group", queue, "--watch", "--iterations", "1", "--fail-on", "NOCONSUMER")
    assert alarm.exit_code == 11 and f"alarm: {queue} NOCONSUMER" in alarm.stderr


def test_rabbitmq_explain_peeks_the_head_and_finds_its_correlation_id_in_the_dead_letters(unread_queue):
    queue, dlq = unread_queue
    result = cli(
        "--broker", RABBIT, "lag", "explain", queue, "--samples", "2", "--interval", "0.2",
        "--dead-letters", dlq, "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["verdict"] == "NOCONSUMER" and found["total_lag"] == 1000
    (part,) = found["partitions"]
    assert part["owner"] is None
    assert part["event"]["value"] == '{"n": 0}' and "peeked" in part["event_note"]
    check = part["dead_letter_check"]
    assert check["correlation_id"] == "inv-0" and check["correlation_found"] is True


def test_serve_exposes_a_rabbitmq_queue_with_no_consumer(unread_queue):
    queue, _ = unread_queue
    served = Served("--broker", RABBIT, "lag", "--interval", "0.5")
    try:
        samples = served.scrape_until(lambda s: value(s, "workbench_group_lag_events", group=queue) is not None)
    finally:
        served.stop()
    assert value(samples, "workbench_group_lag_events", group=queue) == 1000
    assert value(samples, "workbench_group_verdict", group=queue, verdict="NOCONSUMER") == 5
    labels = {"group": queue, "topic": queue, "partition": "0"}
    assert value(samples, "workbench_lag_events", **labels) == 1000
    assert value(samples, "workbench_lag_verdict", **labels, verdict="NOCONSUMER") == 5
