"""Follow mode sees new events; bounded reads stop at the end seen when they started."""

from __future__ import annotations

import asyncio

from workbench.broker import Connection, Event, OutgoingEvent, Position

from .support import WAIT, Follower, by_partition, publish_ok, read_all, spread, values


def probe_into(publisher: Connection, topic: str):
    """A probe for ``Follower.until_live``: one small event per call."""
    return lambda n: publish_ok(publisher, topic, [OutgoingEvent(value=b"probe-%d" % n)])


async def check_follow_from_end(harness, conn, publisher):
    n = harness.several(2)
    topic = await harness.new_topic(conn, n)
    await publish_ok(conn, topic, spread(n, 5, prefix="old"))
    follower = Follower(conn, topic, Position.end())
    try:
        await follower.until_live(probe_into(publisher, topic))
        fresh = spread(n, 20, prefix="new")
        await publish_ok(publisher, topic, fresh)
        wanted = {e.value for e in fresh}
        await follower.wait_for(lambda events: wanted <= {e.value for e in events})
    finally:
        await follower.close()
    seen = values(follower.events)
    assert not [v for v in seen if v.startswith(b"old")], "a follow read from the end returned old events"
    for p, events in by_partition(follower.events).items():
        news = [e.value for e in events if e.value.startswith(b"new")]
        assert news == [f"new-{p}-{i}".encode() for i in range(20)]
        offs = [e.offset for e in events]
        assert offs == list(range(offs[0], offs[0] + len(offs))), "gap or repeat in a follow read"


async def test_follow_from_end_sees_events_published_by_the_same_connection(harness, conn):
    await check_follow_from_end(harness, conn, conn)


async def test_follow_from_end_sees_events_published_by_another_connection(harness, conn):
    other = await harness.adapter().connect()
    try:
        await check_follow_from_end(harness, conn, other)
    finally:
        await other.close()


async def test_follow_from_beginning_sees_old_then_new(harness, conn):
    harness.require("history")
    topic = await harness.new_topic(conn, 1)
    await publish_ok(conn, topic, [OutgoingEvent(value=b"old-%d" % i) for i in range(3)])
    follower = Follower(conn, topic, Position.beginning(), batch_size=2)
    try:
        await follower.wait_for(lambda events: len(events) >= 3)
        await publish_ok(conn, topic, [OutgoingEvent(value=b"new-%d" % i) for i in range(3)])
        await follower.wait_for(lambda events: len(events) >= 6)
    finally:
        await follower.close()
    assert values(follower.events) == [b"old-0", b"old-1", b"old-2", b"new-0", b"new-1", b"new-2"]


async def test_follow_from_an_offset_past_the_end_starts_at_the_end(harness, conn):
    """Offsets are clamped to [start, end]: nothing published after the read began is skipped."""
    harness.require("history")
    topic = await harness.new_topic(conn, 1)
    await publish_ok(conn, topic, [OutgoingEvent(value=b"old")])
    (end,) = [p.end for p in (await conn.describe_topic(topic)).partitions]
    follower = Follower(conn, topic, Position.at_offset(end + 1000))
    try:
        await follower.until_live(probe_into(conn, topic))
    finally:
        await follower.close()
    # (Which probe comes first depends on when the read started; none may be skipped after it.)
    first = follower.events[0]
    assert first.value.startswith(b"probe-") and first.offset >= end


async def test_bounded_read_stops_at_the_end_seen_when_it_started(harness, conn):
    harness.require("history")
    n = harness.several(2)
    topic = await harness.new_topic(conn, n)
    await publish_ok(conn, topic, spread(n, 150, prefix="before"))
    it = conn.read(topic, Position.beginning(), batch_size=50)
    got: list[Event] = []
    try:
        got.extend(await asyncio.wait_for(anext(it), WAIT))
        # The read has started: what arrives now is past its end.
        await publish_ok(conn, topic, spread(n, 30, prefix="after"))

        async def rest() -> None:
            async for batch in it:
                got.extend(batch)

        await asyncio.wait_for(rest(), WAIT)
    finally:
        await it.aclose()
    assert sorted(values(got)) == sorted(f"before-{p}-{i}".encode() for p in range(n) for i in range(150))
    # ... and a new read sees both.
    assert len(await read_all(conn, topic, Position.beginning())) == n * 180
