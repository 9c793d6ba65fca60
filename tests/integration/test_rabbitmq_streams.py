"""The RabbitMQ adapter against the real broker: streams, publishing interop, describe, lag.

Needs RabbitMQ on 127.0.0.1 (AMQP 5672, management 15672): ``bash tests/brokers/brokers.sh up``.
Without it these tests fail (they do not skip). Names are unique per test; streams are deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
import time
import uuid

import aio_pika
import pytest

from tests.integration.rabbitmq_support import WAIT, amqp, conn, eventually, options, require_rabbitmq, unique  # noqa: F401 (fixtures)
from workbench.broker import InvalidRequest, NotFound, OutgoingEvent, Position, Unsupported
from workbench_rabbitmq import RabbitMQAdapter

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def stream(conn):
    """A new, empty stream; deleted after the test."""
    name = unique("it-rmq-stream")
    await conn.create_topic(name)
    try:
        yield name
    finally:
        try:
            await conn.delete_topic(name)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass


async def read_all(conn, topic: str, start: Position, **kw) -> list:
    events = []
    async for batch in conn.read(topic, start, **kw):
        events.extend(batch)
    return events


async def test_stream_positions_and_describe(conn, stream):
    before = await conn.describe_topic(stream)
    assert before.kind == "stream" and [(p.start, p.end) for p in before.partitions] == [(0, 0)]
    assert await read_all(conn, stream, Position.beginning()) == []
    events = [OutgoingEvent(value=b"e-%d" % i, key=b"k-%d" % (i % 3)) for i in range(20)]
    results = await conn.publish(stream, events)
    assert all(r.ok and r.partition == 0 and r.offset is None for r in results)
    info = await conn.describe_topic(stream)
    assert [(p.partition, p.start, p.end) for p in info.partitions] == [(0, 0, 20)]
    assert [e.offset for e in await read_all(conn, stream, Position.last(5))] == list(range(15, 20))
    got = await read_all(conn, stream, Position.at_offset(12), batch_size=3)
    assert [e.value for e in got] == [b"e-%d" % i for i in range(12, 20)]
    assert await read_all(conn, stream, Position.at_offset(20)) == []
    assert await read_all(conn, stream, Position.end()) == []
    first = (await read_all(conn, stream, Position.beginning()))[0]
    assert (first.topic, first.partition, first.offset, first.key, first.value) == (stream, 0, 0, b"k-0", b"e-0")
    assert first.metadata["delivery_mode"] == 2 and first.metadata["exchange"] == ""
    assert not [name for name, _ in first.headers if name.startswith("x-")]
    with pytest.raises(NotFound, match="partition 3"):
        await anext(conn.read(stream, Position.beginning(), partitions=[3]))


async def test_timestamps_have_second_granularity(conn, stream):
    base = (int(time.time()) - 600) * 1000
    events = [OutgoingEvent(value=b"%d" % i, timestamp=base + 1000 * i + 789) for i in range(5)]
    assert all(r.ok for r in await conn.publish(stream, events))
    got = await read_all(conn, stream, Position.beginning())
    assert [e.timestamp for e in got] == [base + 1000 * i for i in range(5)]  # ms are lost
    later = await read_all(conn, stream, Position.at_time(base + 2500))
    assert [e.value for e in later] == [b"3", b"4"]


async def test_stream_fed_by_an_exchange_keeps_the_routing_key(conn, amqp, stream):
    ch = await amqp.channel()
    exchange = await ch.declare_exchange(unique("it-rmq-feed"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
    queue = await ch.get_queue(stream, ensure=False)
    await queue.bind(exchange, "#")
    results = await conn.publish(exchange.name, [OutgoingEvent(value=b"routed", key=b"order.paid")])
    assert results[0].ok
    (event,) = await read_all(conn, stream, Position.beginning())
    assert event.key == b"order.paid" and event.metadata["exchange"] == exchange.name
    # describe of the exchange lists its bindings and how a tap would bind
    info = await conn.describe_topic(exchange.name)
    assert info.kind == "exchange" and info.metadata["type"] == "topic"
    assert [(b["destination"], b["routing_key"]) for b in info.metadata["bindings"]] == [(stream, "#")]
    assert info.metadata["tap"] == [{"routing_key": "#", "arguments": {}}]
    # the stream as well ('exchange:' names the exchange if a queue had the same name)
    assert (await conn.describe_topic(f"exchange:{exchange.name}")).kind == "exchange"
    await queue.unbind(exchange, "#")


async def test_published_messages_interoperate(conn, amqp):
    """What another AMQP client sees of an event published by the workbench."""
    ch = await amqp.channel()
    queue = await ch.declare_queue(unique("it-rmq-interop"), exclusive=True)
    event = OutgoingEvent(
        value=b'{"id": 7}',
        key=b"order-7",
        headers=(("content-type", b"application/json"), ("correlation_id", b"c-7"), ("raw", b"\xff\x00")),
        timestamp=1_700_000_000_123,
    )
    (result,) = await conn.publish(queue.name, [event])
    assert result.ok
    message = await queue.get(timeout=5)
    await message.ack()
    assert message.body == b'{"id": 7}'
    assert message.content_type == "application/json" and message.correlation_id == "c-7"
    assert message.headers["content-type"] == "application/json"
    assert bytes(message.headers["raw"]) == b"\xff\x00"
    assert bytes(message.headers["x-workbench-key"]) == b"order-7"
    assert message.timestamp == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_per_event_errors(conn, stream):
    small = await RabbitMQAdapter(options(max_message_bytes=1000)).connect()
    try:
        results = await small.publish(
            stream,
            [
                OutgoingEvent(value=b"ok"),
                OutgoingEvent(value=b"x" * 1001),
                OutgoingEvent(value=b"wrong partition", partition=1),
                OutgoingEvent(value=b"ok too"),
            ],
        )
    finally:
        await small.close()
    assert [r.ok for r in results] == [True, False, False, True]
    assert isinstance(results[1].error, InvalidRequest) and "1001 bytes" in str(results[1].error)
    assert isinstance(results[2].error, InvalidRequest) and "partition" in str(results[2].error)
    assert [e.value for e in await read_all(conn, stream, Position.beginning())] == [b"ok", b"ok too"]


async def test_topic_admin_errors(conn, amqp):
    with pytest.raises(InvalidRequest, match="one partition"):
        await conn.create_topic(unique("it-rmq-x"), 3)
    with pytest.raises(InvalidRequest, match="unknown stream argument"):
        await conn.create_topic(unique("it-rmq-x"), 1, {"retention.ms": "1000"})
    with pytest.raises(NotFound):
        await conn.delete_topic(unique("it-rmq-missing"))
    with pytest.raises(Unsupported, match="exchange"):
        await conn.delete_topic("amq.topic")
    name = unique("it-rmq-cfg")
    await conn.create_topic(name, 1, {"x-max-length-bytes": "50000000", "x-max-age": "2h"})
    try:
        info = await conn.describe_topic(name)
        assert info.config["x-max-length-bytes"] == "50000000" and info.config["x-max-age"] == "2h"
        with pytest.raises(InvalidRequest, match="already exists"):
            await conn.create_topic(name)
    finally:
        await conn.delete_topic(name)
    with pytest.raises(NotFound):
        await conn.describe_topic(name)


def rabbitmqctl_depth(queue: str) -> tuple[int, int] | None:
    """(ready, unacknowledged) as ``rabbitmqctl list_queues`` says, or None if it cannot run."""
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return None
    done = subprocess.run(
        [tool, "list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if parts and parts[0] == queue:
            return int(parts[1]), int(parts[2])
    return None


async def test_groups_and_lag_of_a_queue_with_a_consumer(conn, amqp):
    ch = await amqp.channel()
    await ch.set_qos(prefetch_count=2)
    queue = await ch.declare_queue(unique("it-rmq-lagging"), exclusive=True)
    for i in range(7):
        await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key=queue.name)
    held = []

    async def hold(message) -> None:  # never acks: 2 unacknowledged, 5 ready
        held.append(message)

    tag = await queue.consume(hold)

    async def figures():
        (lag,) = await conn.lag([queue.name])
        ready = lag.metadata["messages_ready"]
        unacked = lag.metadata["messages_unacknowledged"]
        return lag if (ready, unacked, lag.state) == (5, 2, "Stable") else None

    lag = await eventually(figures, "the statistics to show 5 ready + 2 unacked, 1 consumer", timeout=15)
    (p,) = lag.partitions
    assert (p.topic, p.partition, p.lag) == (queue.name, 0, 7)
    assert lag.state == "Stable" and lag.metadata["consumers"] == 1
    assert rabbitmqctl_depth(queue.name) in (None, (5, 2))  # the broker's own tool agrees

    async def listed():
        groups = {g.group_id: g for g in await conn.groups()}
        return groups.get(queue.name) if queue.name in groups and groups[queue.name].members else None

    group = await eventually(listed, "groups() to list the queue with its consumer", timeout=15)
    assert [m.client_id for m in group.members] == [tag]
    assert group.state == "Stable" and group.members[0].assignment == ((queue.name, 0),)
    assert queue.name in [g.group_id for g in await conn.lag()]
    with pytest.raises(NotFound):
        await conn.lag([unique("it-rmq-nobody")])
    await queue.cancel(tag)


async def test_bounded_read_of_a_busy_stream_ends(conn, stream):
    """A bounded read ends at the end it saw first, even while events keep arriving."""
    await conn.publish(stream, [OutgoingEvent(value=b"before-%d" % i) for i in range(300)])
    publisher = await RabbitMQAdapter(options()).connect()
    stop = asyncio.Event()

    async def keep_publishing() -> None:
        n = 0
        while not stop.is_set():
            await publisher.publish(stream, [OutgoingEvent(value=b"after-%d" % n)])
            n += 1

    task = asyncio.create_task(keep_publishing())
    try:
        got = await asyncio.wait_for(read_all(conn, stream, Position.beginning(), batch_size=64), 30)
    finally:
        stop.set()
        await task
        await publisher.close()
    values = [e.value for e in got]
    assert values[:300] == [b"before-%d" % i for i in range(300)]
    assert [e.offset for e in got] == list(range(len(got)))


async def test_connection_name_and_uuid_are_independent():
    """Two adapters with their own connection names both connect (names are not unique keys)."""
    require_rabbitmq()
    name = f"it-rmq-{uuid.uuid4().hex[:6]}"
    a = await RabbitMQAdapter(options(connection_name=name)).connect()
    b = await RabbitMQAdapter(options(connection_name=name)).connect()
    await a.close()
    await b.close()


async def test_a_stream_deleted_while_followed_ends_the_read_with_not_found(conn):
    name = unique("it-rmq-doomed")
    await conn.create_topic(name)
    reader = conn.read(name, Position.end(), follow=True)
    pending = asyncio.ensure_future(anext(reader))
    other = await RabbitMQAdapter(options()).connect()
    try:
        while not pending.done():  # probes until the follow read is attached and sees one
            await other.publish(name, [OutgoingEvent(value=b"probe")])
            await asyncio.wait({pending}, timeout=0.2)
        assert pending.result()[0].value == b"probe"
        pending = asyncio.ensure_future(anext(reader))
        await other.delete_topic(name)
    finally:
        await other.close()
    with pytest.raises(NotFound, match="deleted"):
        await asyncio.wait_for(pending, WAIT)
    await reader.aclose()
    assert (await conn.list_topics()) is not None  # the connection is fine
