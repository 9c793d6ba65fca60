"""Topics: describe, list, create, delete."""

from __future__ import annotations

import pytest

from workbench.broker import InvalidRequest, NotFound, OutgoingEvent, TopicInfo

from .support import publish_ok


async def test_describe_counts_events_per_partition(harness, conn):
    n = harness.several(3)
    topic = await harness.new_topic(conn, n)
    before = await conn.describe_topic(topic)
    assert [p.partition for p in before.partitions] == list(range(n))
    assert before.count == 0
    second = min(1, n - 1)
    await publish_ok(conn, topic, [OutgoingEvent(value=b"a", partition=0)] * 5)
    await publish_ok(conn, topic, [OutgoingEvent(value=b"b", partition=second)] * 3)
    info = await conn.describe_topic(topic)
    assert isinstance(info, TopicInfo) and info.name == topic
    assert [p.partition for p in info.partitions] == list(range(n))
    assert [p.count for p in info.partitions] == ([5, 3, 0] if n == 3 else [8])
    for old, new in zip(before.partitions, info.partitions, strict=True):
        assert new.start == old.start and new.end == old.end + new.count
    assert info.count == 8


async def test_list_topics_is_sorted_and_has_the_topic(harness, conn):
    first = await harness.new_topic(conn, 1)
    second = await harness.new_topic(conn, harness.several(2))
    names = [t.name for t in await conn.list_topics()]
    assert first in names and second in names
    assert names == sorted(names)


async def test_create_topic(harness, conn):
    harness.require("topic_admin")
    name = harness.unique()
    harness.created_topics.append(name)
    config = dict(harness.topic_config())
    n = harness.several(2)
    created = await conn.create_topic(name, n, config)
    assert created.name == name
    info = await conn.describe_topic(name)
    assert len(info.partitions) == n and info.count == 0
    assert all(info.config.get(k) == v for k, v in config.items()), info.config
    with pytest.raises(InvalidRequest, match="already exists"):
        await conn.create_topic(name, n)


@pytest.mark.parametrize(("name", "partitions"), [("", 1), (None, 1), ("ok-name", 0), ("ok-name", -3)])
async def test_create_topic_rejects_bad_requests(harness, conn, name, partitions):
    harness.require("topic_admin")
    name = name and harness.unique(name)
    with pytest.raises(InvalidRequest):
        await conn.create_topic(name, partitions)
    if name:
        with pytest.raises(NotFound):
            await conn.describe_topic(name)


async def test_delete_topic(harness, conn):
    harness.require("topic_admin")
    topic = await harness.new_topic(conn, harness.several(2))
    await publish_ok(conn, topic, [OutgoingEvent(value=b"x")])
    await conn.delete_topic(topic)
    with pytest.raises(NotFound):
        await conn.describe_topic(topic)
    assert topic not in [t.name for t in await conn.list_topics()]
