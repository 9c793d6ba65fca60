"""`workbench offsets reset` against the real Kafka broker, checked with kafka-consumer-groups.sh.

Needs Kafka on 127.0.0.1:9092: ``bash tests/brokers/brokers.sh up``. Without it these tests fail
(they do not skip). Topics and groups are uniquely named and removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from tests.brokers import endpoints
from tests.integration.test_kafka_interop import (
    parse_describe,
    require_kafka,
    tool,
    unique,
)
from workbench.broker import OutgoingEvent
from workbench.cli import app
from workbench.errors import ExitCode
from workbench_kafka import KafkaAdapter

pytestmark = pytest.mark.kafka

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
COUNTS = {0: 5, 1: 7, 2: 4}


def workbench(*args: str):
    return CliRunner().invoke(app, ["--broker", f"kafka://{BOOTSTRAP}", *args], catch_exceptions=False)


async def with_kafka(job):
    conn = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        return await job(conn)
    finally:
        await conn.close()


@pytest.fixture
def topic():
    """A topic of 3 partitions holding COUNTS events; deleted with the test's groups afterwards."""
    require_kafka()
    name = unique("it-offsets")
    groups: list[str] = []

    async def make(conn) -> None:
        await conn.create_topic(name, 3)
        events = [OutgoingEvent(b"v", partition=p) for p, n in COUNTS.items() for _ in range(n)]
        assert all(r.ok for r in await conn.publish(name, events))

    asyncio.run(with_kafka(make))
    yield name, groups
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in (admin.delete_consumer_groups(groups, request_timeout=10) if groups else {}).values():
        try:
            future.result(15)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
    asyncio.run(with_kafka(lambda conn: conn.delete_topic(name)))


def described(group: str) -> dict[tuple[str, int], str]:
    """CURRENT-OFFSET per partition, as Kafka's own tool reports it."""
    rows = parse_describe(tool("kafka-consumer-groups", "--describe", "--group", group))
    return {tp: cells[0] for tp, cells in rows.items()}


def test_reset_an_empty_group_to_earliest(topic):
    name, groups = topic
    group = unique("it-offsets-empty")
    groups.append(group)
    # committed offsets and no member: Empty
    asyncio.run(with_kafka(lambda conn: conn.commit_offsets(group, {(name, 0): 3, (name, 1): 7, (name, 2): 2})))
    assert described(group) == {(name, 0): "3", (name, 1): "7", (name, 2): "2"}

    dry = workbench("offsets", "reset", group, "--topic", name, "--to", "earliest")
    assert dry.exit_code == 0, dry.stderr
    assert described(group) == {(name, 0): "3", (name, 1): "7", (name, 2): "2"}  # a dry run changes nothing

    result = workbench(
        "offsets", "reset", group, "--topic", f"{name}:0,1", "--to", "earliest", "--execute", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "Empty" and data["executed"] is True
    assert [(r["partition"], r["current"], r["new"], r["committed"]) for r in data["partitions"]] == [
        (0, 3, 0, 0),
        (1, 7, 0, 0),
    ]
    assert described(group) == {(name, 0): "0", (name, 1): "0", (name, 2): "2"}

    clamped = workbench("offsets", "reset", group, "--topic", f"{name}:2", "--to", "9999", "--execute")
    assert clamped.exit_code == 0, clamped.stderr
    assert "clamped from 9999 to 4" in clamped.stdout
    assert described(group)[(name, 2)] == "4"


def test_a_group_with_an_active_member_is_refused(topic):
    name, groups = topic
    group = unique("it-offsets-live")
    groups.append(group)
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group,
            "client.id": "it-offsets-member",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([name])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 3:
            assert time.monotonic() < deadline, "the consumer did not get its 3 partitions"
            consumer.poll(0.1)
        consumer.commit(offsets=[TopicPartition(name, p, n) for p, n in COUNTS.items()], asynchronous=False)
        consumer.poll(0.1)

        result = workbench("offsets", "reset", group, "--topic", name, "--to", "earliest", "--execute")
        assert result.exit_code == ExitCode.DENIED, result.stderr
        assert "is Stable" in result.stderr and result.stdout == ""
        assert described(group) == {(name, p): str(n) for p, n in COUNTS.items()}
    finally:
        consumer.close()
