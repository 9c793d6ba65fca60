"""`e` on a RabbitMQ exchange starts a live tap (a follow read from the end, as `workbench tail
EXCHANGE --follow` does), on the real broker. Needs ``bash tests/brokers/brokers.sh up``; the
exchange is unique per run and deleted in teardown, even on failure."""

from __future__ import annotations

import time
import uuid

import aio_pika
import pytest

from tests.brokers import endpoints
from workbench.broker import Position

from .conftest import SIZE, make_app, open_topic, rendered, settle
from .test_brokers_smoke import WAIT, rabbit_target


@pytest.fixture
async def exchange():
    """A topic exchange of its own (not auto-delete: the tap's binding comes and goes)."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
    try:
        channel = await connection.channel()
        made = await channel.declare_exchange(f"tui-tap-{uuid.uuid4().hex[:8]}", aio_pika.ExchangeType.TOPIC)
        try:
            yield made
        finally:
            await made.delete()
    finally:
        await connection.close()


@pytest.mark.rabbitmq
async def test_e_on_an_exchange_starts_a_live_tap(exchange):
    target = rabbit_target()
    app = make_app(target, lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: any(t.name == exchange.name for t in app.main.topics), "the exchange listed", WAIT)
        await open_topic(pilot, exchange.name)
        overview = app.query_one("#topic-title")
        await settle(pilot, lambda: "live tap" in rendered(overview), "the exchange's overview", WAIT)
        await pilot.press("e")
        stream = app.main.stream
        await settle(pilot, lambda: stream.pump is not None and stream.pump.state == "running", "the tap", WAIT)
        assert stream.position == Position.end()
        # the tap is bound a moment after the read starts: publish until one arrives
        deadline = time.monotonic() + WAIT
        n = 0
        while not len(stream.buffer) and time.monotonic() < deadline:
            await exchange.publish(aio_pika.Message(b'{"n": %d}' % n), routing_key="order.created")
            n += 1
            await settle(pilot, lambda: True, "a round")
        await settle(pilot, lambda: len(stream.buffer) > 0, "an event through the tap", WAIT)
        assert stream.pump.state == "running"
        assert not [note for note in app._notifications if note.severity == "error"], list(app._notifications)
        assert "following" in rendered(app.query_one("#stream-title"))
