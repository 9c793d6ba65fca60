"""prepare_publish(): a hint before a publish. It sends nothing, refuses nothing (not even a topic
that does not exist), and the publish after it confirms every event as usual."""

from __future__ import annotations

from workbench.broker import OutgoingEvent, Position

from .support import publish_ok, read_all, values


async def test_prepare_then_publish_confirms_every_event(harness, conn):
    harness.require("publisher_confirms")
    topic = await harness.new_topic(conn, 1)
    await conn.prepare_publish(topic)
    await conn.prepare_publish(topic)  # twice: still one ready publisher
    results = await publish_ok(conn, topic, [OutgoingEvent(value=b"v%d" % i) for i in range(10)])
    assert [r.index for r in results] == list(range(10))


async def test_prepare_sends_nothing(harness, conn):
    harness.require("history")
    topic = await harness.new_topic(conn, 1)
    await conn.prepare_publish(topic)
    assert await read_all(conn, topic, Position.beginning()) == []
    await publish_ok(conn, topic, [OutgoingEvent(value=b"only")])
    assert values(await read_all(conn, topic, Position.beginning())) == [b"only"]


async def test_prepare_for_a_missing_topic_refuses_nothing(harness, conn):
    await conn.prepare_publish(harness.unique("never-created"))
