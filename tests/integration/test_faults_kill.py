"""SIGKILL of the workbench: nothing left behind on the brokers, nothing half-written locally.

* ``tail --follow`` on Kafka, killed: no consumer group appears (reads use ``assign()`` and never
  commit), before, during or after.
* ``tail --follow`` of a RabbitMQ stream, killed: its connection and its consumer go, and no
  queue or exchange was created for it. (An exchange tap, killed, is covered in
  test_rabbitmq_tap.py.)
* ``publish`` into a local file, killed half-way: SQLite's integrity check passes, the events
  present are the first N of the input, each complete, at contiguous offsets.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid

import httpx
import pytest

from tests.brokers import endpoints
from tests.integration import rabbitmq_support
from tests.integration.faults_support import (
    KAFKA_URL,
    RABBIT_URL,
    Workbench,
    require_kafka,
    seq_value,
    until,
)
from workbench.broker import OutgoingEvent, Position
from workbench_kafka import KafkaAdapter
from workbench_local import LocalAdapter
from workbench_rabbitmq import RabbitMQAdapter

EVENTS = 200


# --------------------------------------------------------------------------- Kafka


async def tail_groups(conn) -> set[str]:
    """Consumer groups a workbench tail would have made (its consumers' throwaway group ids)."""
    return await asyncio.to_thread(endpoints.kafka_group_ids, "workbench-tail-")


@pytest.mark.kafka
async def test_killed_kafka_tail_leaves_no_consumer_group():
    require_kafka()
    topic = f"it-faults-kill-{uuid.uuid4().hex[:8]}"
    conn = await KafkaAdapter({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "timeout_s": 10}).connect()
    try:
        await conn.create_topic(topic, 2)
        assert all(r.ok for r in await conn.publish(topic, [OutgoingEvent(b"%d" % i) for i in range(EVENTS)]))
        before = await asyncio.to_thread(endpoints.kafka_group_ids)
        tail = Workbench("-b", KAFKA_URL, "tail", topic, "--from", "beginning", "--follow", "-o", "jsonl")
        try:
            await asyncio.to_thread(tail.wait_lines, EVENTS, 60)
            during = await asyncio.to_thread(endpoints.kafka_group_ids)
            tail.proc.kill()
            await asyncio.to_thread(tail.wait, 30)
        finally:
            tail.close()
        after = await asyncio.to_thread(endpoints.kafka_group_ids)
        assert not await tail_groups(conn)
        # Whatever else runs on the broker meanwhile, nothing of this tail's appeared.
        assert not {g for g in during - before if g.startswith("workbench")}, during - before
        assert not {g for g in after - before if g.startswith("workbench")}, after - before
    finally:
        try:
            await conn.delete_topic(topic)
        finally:
            await conn.close()


# --------------------------------------------------------------------------- RabbitMQ


@pytest.fixture
async def http():
    rabbitmq_support.require_rabbitmq()
    auth = (endpoints.RABBIT_USER, endpoints.RABBIT_PASSWORD)
    async with httpx.AsyncClient(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=auth, timeout=10) as client:
        yield client


async def names(http: httpx.AsyncClient, kind: str) -> set[str]:
    response = await http.get(f"/api/{kind}/%2F", params={"columns": "name"})
    response.raise_for_status()
    return {item["name"] for item in response.json()}


async def connections_named(http: httpx.AsyncClient, name: str) -> list[dict]:
    response = await http.get("/api/connections", params={"columns": "name,client_properties"})
    response.raise_for_status()
    return [c for c in response.json() if (c.get("client_properties") or {}).get("connection_name") == name]


async def consumers_of(http: httpx.AsyncClient, connection: str, stream: str) -> int:
    """The consumers a connection (by its broker-side name) has on a stream."""
    response = await http.get("/api/consumers/%2F")
    response.raise_for_status()
    return sum(
        1
        for c in response.json()
        if (c.get("queue") or {}).get("name") == stream
        and isinstance(c.get("channel_details"), dict)
        and c["channel_details"].get("connection_name") == connection
    )


@pytest.mark.rabbitmq
async def test_killed_rabbitmq_stream_tail_leaves_nothing(http):
    stream = rabbitmq_support.unique("it-faults-kill")
    label = rabbitmq_support.unique("faults-kill-conn")  # finds this tail's connection
    conn = await RabbitMQAdapter(rabbitmq_support.options()).connect()
    try:
        await conn.create_topic(stream)
        assert all(r.ok for r in await conn.publish(stream, [OutgoingEvent(b"%d" % i) for i in range(EVENTS)]))
        queues, exchanges = await names(http, "queues"), await names(http, "exchanges")
        url = f"{RABBIT_URL}?connection_name={label}"
        tail = Workbench("-b", url, "tail", stream, "--from", "beginning", "--follow", "-o", "jsonl")
        try:
            await asyncio.to_thread(tail.wait_lines, EVENTS, 60)

            async def reading() -> str | None:
                for c in await connections_named(http, label):
                    if await consumers_of(http, c["name"], stream) == 1:
                        return c["name"]
                return None

            connection = await rabbitmq_support.eventually(reading, "the tail's connection and consumer", 30)
            tail.proc.kill()
            await asyncio.to_thread(tail.wait, 30)
        finally:
            tail.close()

        async def gone() -> bool:
            return not await connections_named(http, label) and await consumers_of(http, connection, stream) == 0

        await rabbitmq_support.eventually(gone, "the killed tail's connection and consumer to go", 30)
        new_queues = {q for q in await names(http, "queues") - queues if q.startswith("workbench")}
        new_exchanges = {e for e in await names(http, "exchanges") - exchanges if e.startswith("workbench")}
        assert not new_queues and not new_exchanges, (new_queues, new_exchanges)
        assert (await conn.describe_topic(stream)).count == EVENTS  # and the stream untouched
    finally:
        try:
            await conn.delete_topic(stream)
        finally:
            await conn.close()


# --------------------------------------------------------------------------- local


LOCAL_EVENTS = 200_000
PARTITIONS = 3


def envelope(n: int) -> str:
    """Input line n: a key, a value with its sequence number, two headers (all checkable)."""
    return json.dumps(
        {"key": f"k{n % 101}", "value": seq_value("kill", n), "headers": [["seq", str(n)], ["pad", "x" * 40]]},
        separators=(",", ":"),
    )


async def test_killed_local_publish_leaves_complete_contiguous_events(tmp_path):
    db = tmp_path / "events.db"
    source = tmp_path / "events.jsonl"
    source.write_text("".join(envelope(n) + "\n" for n in range(LOCAL_EVENTS)))
    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        await conn.create_topic("orders", PARTITIONS)

        async def published() -> int:
            return (await conn.describe_topic("orders")).count

        publisher = Workbench("-b", f"local:{db}", "publish", "orders", "--file", str(source))
        try:
            # Killed once some batches are in, and (surely) before all of them are.
            await until(published, "the first events in the file", 120)
            publisher.proc.kill()
            await asyncio.to_thread(publisher.wait, 30)
        finally:
            publisher.close()
        assert publisher.proc.returncode == -9

    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()

    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        info = await conn.describe_topic("orders")
        events = []
        async for batch in conn.read("orders", Position.beginning()):
            events.extend(batch)
    present = len(events)
    assert 0 < present < LOCAL_EVENTS, f"{present} events: the kill did not land half-way"
    assert present == info.count
    seqs = sorted(int(dict(e.headers)["seq"]) for e in events)
    assert seqs == list(range(present)), "the events present are not the first N of the input"
    for e in events:
        n = int(dict(e.headers)["seq"])
        assert (e.key, e.value, e.headers) == (
            f"k{n % 101}".encode(),
            seq_value("kill", n).encode(),
            (("seq", str(n).encode()), ("pad", b"x" * 40)),
        ), f"event {n} is not complete"
    for part in info.partitions:
        offsets = [e.offset for e in events if e.partition == part.partition]
        assert offsets == list(range(part.start, part.end)), f"partition {part.partition}: offsets not contiguous"
    print(f"\nlocal publish killed: {present} of {LOCAL_EVENTS} events present, all complete, offsets contiguous")
