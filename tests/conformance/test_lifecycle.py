"""Typed errors, unreachable brokers, closing: what is left behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from workbench.broker import BrokerError, NotFound, OutgoingEvent, Position, Unreachable

from .support import WAIT, publish_ok, read_raising


async def test_missing_topic_is_not_found_everywhere(harness, conn):
    missing = harness.unique("wbc-missing")
    with pytest.raises(NotFound):
        await conn.describe_topic(missing)
    with pytest.raises(NotFound):
        await read_raising(conn, missing, Position.beginning())
    with pytest.raises(NotFound):
        await conn.publish(missing, [OutgoingEvent(value=b"x")])
    assert missing not in [t.name for t in await conn.list_topics()]


async def test_missing_topic_delete_is_not_found(harness, conn):
    harness.require("topic_admin")
    with pytest.raises(NotFound):
        await conn.delete_topic(harness.unique("wbc-missing"))


async def test_unreachable_within_bounded_time(harness):
    adapter = harness.unreachable_adapter()
    started = time.monotonic()
    with pytest.raises(Unreachable):
        conn = await asyncio.wait_for(adapter.connect(), 30)
        await conn.close()  # (only reached when connect() wrongly succeeded)
    assert time.monotonic() - started < 10


async def test_close_leaves_nothing_behind(harness):
    conn = await harness.adapter().connect()
    topic = await harness.new_topic(conn, harness.several(2))
    await publish_ok(conn, topic, [OutgoingEvent(value=b"%d" % i) for i in range(10)])
    bounded = conn.read(topic, Position.beginning(), batch_size=1)
    assert len(await asyncio.wait_for(anext(bounded), WAIT)) == 1
    await bounded.aclose()
    follow = conn.read(topic, Position.end(), follow=True)
    pending = asyncio.create_task(anext(follow))  # a follow read waiting for events ...
    await asyncio.wait({pending}, timeout=0.2)  # ... probably idle by now (either way is fine)
    pending.cancel()
    with pytest.raises((asyncio.CancelledError, StopAsyncIteration, BrokerError)):
        await pending
    await follow.aclose()
    await conn.close()
    await conn.close()  # closing twice is fine
    with pytest.raises(BrokerError):
        await conn.list_topics()
    await harness.assert_clean()


async def test_async_with_closes(harness):
    async with await harness.adapter().connect() as conn:
        await conn.list_topics()
    with pytest.raises(BrokerError):
        await conn.list_topics()
