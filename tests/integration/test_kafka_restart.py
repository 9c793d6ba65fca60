"""A follow read (``tail --follow``) survives a Kafka restart: no gap, no duplicate.

Stops and starts the test broker with ``bash tests/brokers/brokers.sh down|up kafka`` (Kafka
only; RabbitMQ is left alone), so it disturbs anything else using that broker meanwhile.
Needs Kafka on 127.0.0.1:9092 to begin with (``bash tests/brokers/brokers.sh up``): without it
the test fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest

from tests.brokers import endpoints
from workbench.broker import Event, OutgoingEvent, Position
from workbench_kafka import KafkaAdapter

pytestmark = pytest.mark.kafka

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
PARTITIONS = 2
PER_PARTITION = 300  # per phase: before the restart, and after it


def brokers(*args: str) -> None:
    done = subprocess.run(
        ["bash", str(endpoints.BROKERS_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"brokers.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}"


def stop_kafka() -> None:
    brokers("down", "kafka")


def start_kafka() -> None:
    brokers("up", "kafka")


def phase(tag: str) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(f"{tag}-{p}-{i}".encode(), partition=p) for i in range(PER_PARTITION) for p in range(PARTITIONS)
    ]


async def take(reader, events: list[Event], until: int, timeout: float) -> None:
    async def pull() -> None:
        while len(events) < until:
            events.extend(await anext(reader))

    await asyncio.wait_for(pull(), timeout)


async def test_follow_read_survives_a_broker_restart():
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(f"Kafka does not answer on {BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`")
    topic = f"it-restart-{uuid.uuid4().hex[:8]}"
    adapter = KafkaAdapter({"bootstrap.servers": BOOTSTRAP, "timeout_s": 10})
    conn = await adapter.connect()
    try:
        await conn.create_topic(topic, PARTITIONS)
        results = await conn.publish(topic, phase("before"))
        assert all(r.ok for r in results)

        events: list[Event] = []
        reader = conn.read(topic, Position.beginning(), follow=True, batch_size=50)
        try:
            await take(reader, events, 100, timeout=20)  # part of it read, the rest pending

            await asyncio.to_thread(stop_kafka)
            restarting = asyncio.create_task(asyncio.to_thread(start_kafka))
            # Whatever was fetched before the stop, and the rest once the broker is back.
            await take(reader, events, PARTITIONS * PER_PARTITION, timeout=150)
            await restarting

            # The same connection publishes again: its clients reconnected by themselves, and
            # the idempotent producer retries while leaders settle (no duplicate either way).
            results = await conn.publish(topic, phase("after"))
            assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
            await take(reader, events, 2 * PARTITIONS * PER_PARTITION, timeout=60)
        finally:
            await reader.aclose()

        assert len(events) == 2 * PARTITIONS * PER_PARTITION
        for p in range(PARTITIONS):
            mine = [e for e in events if e.partition == p]
            assert [e.offset for e in mine] == list(range(2 * PER_PARTITION)), "a gap or a duplicate"
            assert [e.value for e in mine] == [
                f"{tag}-{p}-{i}".encode() for tag in ("before", "after") for i in range(PER_PARTITION)
            ]
    finally:
        try:
            await conn.delete_topic(topic)
        finally:
            await conn.close()
