"""publish(): one result per event, in order; offsets; partitions; order per partition."""

from __future__ import annotations

import itertools

import pytest

from workbench.broker import InvalidRequest, OutgoingEvent, Position

from .support import by_partition, publish_ok, read_all, values


async def test_one_result_per_event_in_order(harness, conn):
    harness.require("publisher_confirms")
    topic = await harness.new_topic(conn, 1)
    events = [OutgoingEvent(value=b"v%d" % i) for i in range(25)]
    results = await conn.publish(topic, events)
    assert len(results) == 25
    assert [r.index for r in results] == list(range(25))
    assert all(r.ok and r.error is None for r in results)


async def test_offsets_increase_by_one_per_partition(harness, conn):
    harness.require("publisher_confirms")
    n = harness.several(3)
    topic = await harness.new_topic(conn, n)
    offsets: dict[int, list[int]] = {}
    for call in range(4):  # several publish calls continue the same sequences
        events = [OutgoingEvent(value=b"%d-%d" % (call, i), key=b"k%d" % (i % 7)) for i in range(50)]
        for r in await publish_ok(conn, topic, events):
            assert r.partition is not None and 0 <= r.partition < n
            offsets.setdefault(r.partition, []).append(r.offset)
    if not harness.publish_offsets:
        assert all(o is None for offs in offsets.values() for o in offs)
        return
    for p, offs in offsets.items():
        assert offs == list(range(offs[0], offs[0] + len(offs))), f"partition {p}: {offs}"
    assert sum(len(o) for o in offsets.values()) == 200


async def test_order_per_partition_is_publish_order(harness, conn):
    harness.require("history")
    topic = await harness.new_topic(conn, harness.several(3))
    published: dict[int, list[tuple[int | None, bytes]]] = {}
    for call in range(3):
        events = [OutgoingEvent(value=b"%d-%03d" % (call, i), key=b"key-%d" % (i % 5)) for i in range(100)]
        results = await publish_ok(conn, topic, events)
        for r, e in zip(results, events, strict=True):
            published.setdefault(r.partition, []).append((r.offset, e.value))
    got = by_partition(await read_all(conn, topic, Position.beginning(), batch_size=64))
    assert sorted(got) == sorted(published)
    for p, events in got.items():
        offs = [e.offset for e in events]
        assert all(a < b for a, b in itertools.pairwise(offs)), f"partition {p} not in offset order"
        assert [e.value for e in events] == [v for _, v in published[p]]
        if harness.publish_offsets:  # the results said where each event went
            assert offs == [o for o, _ in published[p]]


async def test_explicit_partition_is_honoured(harness, conn):
    harness.require("partitions", "history")
    topic = await harness.new_topic(conn, 4)
    events = [OutgoingEvent(value=b"to-%d" % p, key=b"same key", partition=p) for p in (3, 1, 2, 0, 3)]
    results = await publish_ok(conn, topic, events)
    assert [r.partition for r in results] == [3, 1, 2, 0, 3]
    got = by_partition(await read_all(conn, topic, Position.beginning()))
    assert values(got[3]) == [b"to-3", b"to-3"]
    assert values(got[1]) == [b"to-1"]


@pytest.mark.parametrize("bad", [4, 99, -1])
async def test_bad_partition_fails_that_event_only(harness, conn, bad):
    harness.require("partitions", "publisher_confirms", "history")
    topic = await harness.new_topic(conn, 4)
    events = [
        OutgoingEvent(value=b"first", partition=0),
        OutgoingEvent(value=b"bad", partition=bad),
        OutgoingEvent(value=b"last", partition=1),
    ]
    results = await conn.publish(topic, events)
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].ok and results[2].ok
    assert not results[1].ok
    assert isinstance(results[1].error, InvalidRequest), results[1].error
    assert (results[0].partition, results[2].partition) == (0, 1)
    got = await read_all(conn, topic, Position.beginning())
    assert sorted(values(got)) == [b"first", b"last"]


async def test_same_key_same_partition(harness, conn):
    harness.require("partitions")
    topic = await harness.new_topic(conn, 4)
    seen: dict[bytes, set[int]] = {}
    for call in range(3):
        events = [OutgoingEvent(value=b"%d" % call, key=b"customer-%d" % k) for k in range(12)]
        for r, e in zip(await publish_ok(conn, topic, events), events, strict=True):
            seen.setdefault(e.key, set()).add(r.partition)
    assert all(len(ps) == 1 for ps in seen.values()), seen


async def test_same_key_same_partition_across_connections(harness, conn):
    """Key partitioning is stable: another connection (or process) places a key identically."""
    harness.require("partitions")
    topic = await harness.new_topic(conn, 5)
    keys = [b"order-%d" % k for k in range(10)]
    first = await publish_ok(conn, topic, [OutgoingEvent(value=b"a", key=k) for k in keys])
    other = await harness.adapter().connect()
    try:
        second = await publish_ok(other, topic, [OutgoingEvent(value=b"b", key=k) for k in keys])
    finally:
        await other.close()
    assert [r.partition for r in first] == [r.partition for r in second]


async def test_empty_publish_returns_no_results(harness, conn):
    topic = await harness.new_topic(conn, 1)
    assert await conn.publish(topic, []) == []
