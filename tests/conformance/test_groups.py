"""Consumer groups: the raw lag figures (committed, start, end) and the group list."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from workbench.broker import NotFound, OutgoingEvent

from .support import publish_ok


@dataclass
class Committed:
    topic: str
    group: str
    partitions: int  # 2, or 1 for an adapter without partitions
    start: dict[int, int]  # each partition's first offset


@pytest.fixture
async def committed(harness, conn) -> Committed:
    """Partition 0 holds 10 events, partition 1 (if any) 4; the group committed start+7 on 0."""
    harness.require("consumer_groups")
    n = harness.several(2)
    topic = await harness.new_topic(conn, n)
    start = {p.partition: p.start for p in (await conn.describe_topic(topic)).partitions}
    await publish_ok(conn, topic, [OutgoingEvent(value=b"%d" % i, partition=0) for i in range(10)])
    if n > 1:
        await publish_ok(conn, topic, [OutgoingEvent(value=b"%d" % i, partition=1) for i in range(4)])
    group = harness.unique("wbc-group")
    await harness.commit(conn, group, {(topic, 0): start[0] + 7})
    return Committed(topic, group, n, start)


def partition_lag(lag, topic, partition):
    found = [p for p in lag.partitions if (p.topic, p.partition) == (topic, partition)]
    assert len(found) <= 1, f"{topic}/{partition} listed twice: {found}"
    return found[0] if found else None


async def test_lag_figures(conn, committed):
    topic, group, s0 = committed.topic, committed.group, committed.start[0]
    before = int(time.time() * 1000)
    (lag,) = await conn.lag([group])
    assert lag.group_id == group
    p0 = partition_lag(lag, topic, 0)
    assert p0 is not None
    assert (p0.committed, p0.start, p0.end) == (s0 + 7, s0, s0 + 10)
    assert p0.lag == 3
    if committed.partitions > 1:
        p1 = partition_lag(lag, topic, 1)
        assert p1 is None or p1.committed is None  # never committed there: no figure, or None
    assert lag.total == 3
    assert abs(lag.observed_at - before) < 60_000


async def test_lag_follows_new_commits_and_events(harness, conn, committed):
    topic, group, s0 = committed.topic, committed.group, committed.start[0]
    offsets = {(topic, 0): s0 + 10}
    if committed.partitions > 1:
        offsets[(topic, 1)] = committed.start[1] + 1
    await harness.commit(conn, group, offsets)
    await publish_ok(conn, topic, [OutgoingEvent(value=b"late", partition=0)])
    (lag,) = await conn.lag([group])
    p0 = partition_lag(lag, topic, 0)
    assert (p0.committed, p0.end, p0.lag) == (s0 + 10, s0 + 11, 1)
    if committed.partitions > 1:
        s1 = committed.start[1]
        p1 = partition_lag(lag, topic, 1)
        assert (p1.committed, p1.start, p1.end, p1.lag) == (s1 + 1, s1, s1 + 4, 3)
        assert lag.total == 4
    else:
        assert lag.total == 1


async def test_lag_of_all_groups_includes_the_group(conn, committed):
    group = committed.group
    everything = await conn.lag()
    assert group in [g.group_id for g in everything]


async def test_unknown_group_is_not_found(harness, conn, committed):
    with pytest.raises(NotFound):
        await conn.lag([harness.unique("wbc-nobody")])


async def test_groups_lists_the_group(conn, committed):
    group = committed.group
    groups = {g.group_id: g for g in await conn.groups()}
    assert group in groups
    assert isinstance(groups[group].state, str) and groups[group].state


async def test_commit_to_unknown_topic_or_partition_is_not_found(harness, conn, committed):
    harness.require("offsets_reset")
    topic, group = committed.topic, committed.group
    with pytest.raises(NotFound):
        await conn.commit_offsets(group, {(harness.unique("wbc-missing"), 0): 1})
    with pytest.raises(NotFound):
        await conn.commit_offsets(group, {(topic, 7919): 1})
    (lag,) = await conn.lag([group])  # nothing of the failed commits was applied
    assert partition_lag(lag, topic, 0).committed == committed.start[0] + 7
