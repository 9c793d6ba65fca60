"""Reads start where the Position says, in every selected partition."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from workbench.broker import NotFound, OutgoingEvent, Position

from .support import by_partition, publish_ok, read_all, read_raising, spread, values

PER_PARTITION = 10


@dataclass
class Filled:
    topic: str
    partitions: int  # 3, or 1 for an adapter without partitions
    first: dict[int, int]  # the offset of event 0 in each partition

    def expect(self, partition: int, indexes) -> list[bytes]:
        return [f"e-{partition}-{i}".encode() for i in indexes]


@pytest.fixture
async def filled(harness, conn) -> Filled:
    """3 partitions x 10 events; event i of partition p: value b"e-p-i", offset first[p] + i."""
    harness.require("history")
    n = harness.several(3)
    topic = await harness.new_topic(conn, n)
    info = await conn.describe_topic(topic)
    await publish_ok(conn, topic, spread(n, PER_PARTITION))
    return Filled(topic, n, {p.partition: p.end for p in info.partitions})


async def test_beginning_returns_every_event(conn, filled):
    got = by_partition(await read_all(conn, filled.topic, Position.beginning()))
    assert sorted(got) == list(range(filled.partitions))
    for p, events in got.items():
        assert values(events) == filled.expect(p, range(PER_PARTITION))
        assert [e.offset for e in events] == [filled.first[p] + i for i in range(PER_PARTITION)]
        assert all(e.topic == filled.topic and e.partition == p for e in events)


async def test_end_returns_nothing_old(conn, filled):
    assert await read_all(conn, filled.topic, Position.end()) == []


async def test_absolute_offset(conn, filled):
    at = max(filled.first.values()) + 4
    got = by_partition(await read_all(conn, filled.topic, Position.at_offset(at)))
    assert sorted(got) == list(range(filled.partitions))
    for p, events in got.items():
        assert values(events) == filled.expect(p, range(at - filled.first[p], PER_PARTITION))
        assert events[0].offset == at


async def test_offset_past_the_end_returns_nothing(conn, filled):
    at = max(filled.first.values()) + 10_000
    assert await read_all(conn, filled.topic, Position.at_offset(at)) == []


async def test_timestamp_position(harness, conn):
    harness.require("history", "publish_timestamp")
    n = harness.several(3)
    topic = await harness.new_topic(conn, n)
    base = (int(time.time()) - 3600) * 1000  # an hour ago: inside any retention
    stamps = [base + 1000 * i for i in range(PER_PARTITION)]
    await publish_ok(conn, topic, spread(n, PER_PARTITION, timestamps=stamps))

    def expect(p, indexes):
        return [f"e-{p}-{i}".encode() for i in indexes]

    got = by_partition(await read_all(conn, topic, Position.at_time(base + 4500)))
    assert sorted(got) == list(range(n))
    for p, events in got.items():
        assert values(events) == expect(p, range(5, PER_PARTITION))
        assert [e.timestamp for e in events] == stamps[5:]
    exact = by_partition(await read_all(conn, topic, Position.at_time(base + 4000)))
    assert {p: values(es) for p, es in exact.items()} == {p: expect(p, range(4, PER_PARTITION)) for p in range(n)}
    everything = await read_all(conn, topic, Position.at_time(base - 60_000))
    assert len(everything) == n * PER_PARTITION
    assert await read_all(conn, topic, Position.at_time(stamps[-1] + 1)) == []


async def test_timestamp_position_finds_the_first_event_at_or_after(harness, conn):
    """Timestamps out of order: the read starts at the first offset whose timestamp is >= the
    value and goes on from there (later events with older timestamps included)."""
    harness.require("history", "publish_timestamp")
    topic = await harness.new_topic(conn, 1)
    base = (int(time.time()) - 3600) * 1000
    stamps = [base, base + 5000, base + 1000, base + 6000, base + 2000]
    await publish_ok(
        conn,
        topic,
        [OutgoingEvent(value=b"%d" % i, partition=0, timestamp=t) for i, t in enumerate(stamps)],
    )
    got = await read_all(conn, topic, Position.at_time(base + 3000))
    assert values(got) == [b"1", b"2", b"3", b"4"]
    got = await read_all(conn, topic, Position.at_time(base + 5500))
    assert values(got) == [b"3", b"4"]


async def test_last_n_per_partition(conn, filled):
    got = by_partition(await read_all(conn, filled.topic, Position.last(3)))
    assert sorted(got) == list(range(filled.partitions))
    for p, events in got.items():
        assert values(events) == filled.expect(p, range(PER_PARTITION - 3, PER_PARTITION))
    more = by_partition(await read_all(conn, filled.topic, Position.last(1000)))
    assert {p: values(es) for p, es in more.items()} == {
        p: filled.expect(p, range(PER_PARTITION)) for p in range(filled.partitions)
    }
    assert await read_all(conn, filled.topic, Position.last(0)) == []


async def test_subset_of_partitions(harness, conn, filled):
    harness.require("partitions")
    only_two = await read_all(conn, filled.topic, Position.beginning(), partitions=[2])
    assert values(only_two) == filled.expect(2, range(PER_PARTITION))
    got = by_partition(await read_all(conn, filled.topic, Position.last(2), partitions=[0, 2]))
    assert sorted(got) == [0, 2]
    assert values(got[0]) == filled.expect(0, range(8, 10))
    assert values(got[2]) == filled.expect(2, range(8, 10))


async def test_unknown_partition_is_not_found(conn, filled):
    with pytest.raises(NotFound, match="7919"):
        await read_raising(conn, filled.topic, Position.beginning(), partitions=[0, 7919])


async def test_batches_respect_batch_size(conn, filled):
    got = await read_all(conn, filled.topic, Position.beginning(), batch_size=4)  # checks sizes
    assert len(got) == filled.partitions * PER_PARTITION
    assert {p: values(es) for p, es in by_partition(got).items()} == {
        p: filled.expect(p, range(PER_PARTITION)) for p in range(filled.partitions)
    }
