"""The TUI's lag view: a RabbitMQ queue with messages and no consumer leads with NOCONSUMER, and
`e` explains the highlighted group (on the real broker, and on the local event log) while the view
keeps answering keys. Needs ``bash tests/brokers/brokers.sh up`` for the RabbitMQ test."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from tests.brokers import endpoints
from workbench import service
from workbench.broker import OutgoingEvent
from workbench.tui.screens.lag import LagScreen, explanation_text
from workbench.tui.widgets.group_table import GroupTable

from .conftest import SIZE, make_app, make_target, rendered, settle
from .test_brokers_smoke import WAIT, rabbit_target


async def open_lag_view(pilot, app) -> LagScreen:
    await settle(pilot, lambda: app.conn is not None and app.main.topics is not None, "the connection", WAIT)
    await pilot.press("l")
    await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view", WAIT)
    return app.screen


async def filter_to(pilot, screen: LagScreen, needle: str) -> GroupTable:
    await pilot.press("slash")
    for key in needle:
        await pilot.press(key)
    await pilot.press("enter")
    return screen.query_one("#lag-groups", GroupTable)


@pytest.fixture
async def unread_queue():
    """Two queues of this run: 30 messages and no consumer; 80 messages and a consumer that never acks."""
    tag = uuid.uuid4().hex[:8]
    lonely, busy = f"tui-lagx-{tag}-a-lonely", f"tui-lagx-{tag}-b-busy"
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queues = {name: await channel.declare_queue(name) for name in (lonely, busy)}
        for name, count in ((lonely, 30), (busy, 80)):
            for n in range(count):
                await channel.default_exchange.publish(aio_pika.Message(b'{"n": %d}' % n), routing_key=name)

        async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            """Takes one message (prefetch 1) and never acks it."""

        consumer_tag = await queues[busy].consume(hold, no_ack=False)
        yield tag, lonely, busy
        await queues[busy].cancel(consumer_tag)
    finally:
        for name in (lonely, busy):
            await channel.queue_delete(name)
        await connection.close()


@pytest.mark.rabbitmq
async def test_a_queue_nobody_reads_leads_with_noconsumer_and_explains(unread_queue):
    tag, lonely, busy = unread_queue
    app = make_app(rabbit_target(), lag_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_view(pilot, app)
        table = await filter_to(pilot, screen, tag)

        def both_counted() -> bool:
            figures = {g.group_id: g.total for g in table.groups}
            return figures.get(lonely) == 30 and (figures.get(busy) or 0) >= 79

        await settle(pilot, both_counted, "both queues with their messages counted", 30)
        assert table.row_keys == [lonely, busy]  # fewer messages, but nobody reads them: first
        assert "NOCONSUMER" in table.get_row(lonely)[6].plain
        assert "NOCONSUMER" not in table.get_row(busy)[6].plain

        table.move_to(0)
        await pilot.press("e")
        title = screen.query_one("#lag-partitions-title")
        await settle(pilot, lambda: screen.explained is not None, "the explanation", WAIT)
        assert screen.explained is not None
        shown = explanation_text(screen.explained).plain
        assert f"Why {lonely} is behind: NOCONSUMER" in shown
        assert "30 message(s) waiting, 0 consumer(s)" in shown
        assert "no live member" in shown and "stuck at 0/" in shown and '{"n":0}' in shown
        await settle(pilot, lambda: screen.loaded >= 3, "two more refreshes", WAIT)
        assert "Why " in rendered(title) and "is behind" in rendered(title)  # kept while its group is highlighted


@pytest.fixture
def stuck_local(isolated_home):
    """A local log: topic "orders" (2 partitions, 10 events each), group "billing" stuck at 4 and 7."""

    async def seed() -> None:
        async with service.connect(make_target()) as conn:
            await conn.create_topic("orders", 2)
            await conn.publish(
                "orders",
                [OutgoingEvent(value=b'{"order": %d}' % n, key=b"k%d" % n, partition=n % 2) for n in range(20)],
            )
            await conn.commit_offsets("billing", {("orders", 0): 4, ("orders", 1): 7})

    asyncio.run(seed())
    return make_target()


async def test_explain_on_the_local_log_keeps_the_keys_answered(stuck_local):
    app = make_app(stuck_local, lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_view(pilot, app)
        await pilot.press("e")
        await pilot.press("s")  # sorting while the explanation samples the lag (2 s)
        assert not screen.by_lag and screen.explained is None  # answered before the explanation came
        await settle(pilot, lambda: screen.explained is not None, "the explanation", WAIT)
        assert screen.explained is not None
        shown = explanation_text(screen.explained).plain
        assert "Why billing is behind:" in shown
        assert "orders/0  lag 6" in shown and "orders/1  lag 3" in shown
        assert "stuck at 0/4 key k8" in shown  # the 5th event of partition 0 (even numbers)
        assert "drains never" in shown
