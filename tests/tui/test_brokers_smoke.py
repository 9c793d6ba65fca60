"""The workbench against the real brokers: connect, list topics, open one, see events arrive, publish
from the dialog, and the lag view renders. Needs ``bash tests/brokers/brokers.sh up``; without a
broker these tests fail (they do not skip). Topic, stream and group names are unique per run."""

from __future__ import annotations

import uuid

import pytest
from textual.widgets import Input

from tests.brokers import endpoints
from workbench import config, service
from workbench.broker import OutgoingEvent
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.publish import PublishDialog
from workbench.tui.widgets.group_table import GroupTable

from .conftest import SIZE, make_app, open_events, publish, rendered, settle

WAIT = 60.0  # brokers on a shared, busy machine: a deadline, not a sleep


def require(host: str, port: int, what: str) -> None:
    if not endpoints.port_open(host, port):
        pytest.fail(f"{what} does not answer on {host}:{port}: run `bash tests/brokers/brokers.sh up`", pytrace=False)


def kafka_target() -> config.Target:
    require(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT, "Kafka")
    profile = config.Profile(
        name="kafka-smoke", adapter="kafka", options={"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP}
    )
    return config.resolve(profile)


def rabbit_target() -> config.Target:
    require(endpoints.RABBIT_HOST, endpoints.RABBIT_AMQP_PORT, "RabbitMQ AMQP")
    require(endpoints.RABBIT_HOST, endpoints.RABBIT_MANAGEMENT_PORT, "RabbitMQ management")
    profile = config.Profile(
        name="rabbit-smoke",
        adapter="rabbitmq",
        options={
            "url": endpoints.RABBIT_AMQP_URL,
            "management_url": endpoints.RABBIT_MANAGEMENT_URL,
            "timeout_s": 10.0,
        },
    )
    return config.resolve(profile)


def events(n: int, tag: str) -> list[OutgoingEvent]:
    return [OutgoingEvent(value=b'{"n": %d, "tag": "%s"}' % (i, tag.encode()), key=b"k-%d" % i) for i in range(n)]


async def drive(target: config.Target, topic: str, group: str | None = None) -> None:
    """What both brokers must do in the app. ``group``: commits at offset 2 of partition 0 first."""
    await publish(target, topic, events(5, "before"))
    if group is not None:
        async with service.connect(target) as conn:
            await conn.commit_offsets(group, {(topic, 0): 2})
    app = make_app(target, lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.connection_state == "connected" and app.main.topics, "the topic list", WAIT)
        assert "● connected" in rendered(app.query_one("#status"))
        await open_events(pilot, topic, 5)
        await publish(target, topic, events(3, "live"))  # another producer, while the app follows
        await settle(pilot, lambda: len(app.main.stream.buffer) == 8, "the live events", WAIT)
        shown = [line for line in app.main.stream.event_list.visible_text() if line.strip()]
        assert len(shown) == 8 and '"tag":"live"' in shown[-1].replace(" ", "")
        # publish from the dialog: it arrives in the followed view too
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the publish dialog")
        dialog = app.screen
        dialog.query_one("#publish-copies", Input).value = "2"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: dialog.published == 1, "the publish", WAIT)
        assert "✓ 2 of 2 confirmed" in rendered(dialog.query_one("#publish-result"))
        await pilot.press("escape")
        await settle(pilot, lambda: len(app.main.stream.buffer) == 10, "the dialog's events in the view", WAIT)
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view", WAIT)
        assert app.screen.failed is None, app.screen.failed
        assert "Consumer lag" in rendered(app.screen.query_one("#lag-title"))
        if group is not None:
            table = app.screen.query_one("#lag-groups", GroupTable)
            row = [cell.plain for cell in table.get_row(group)]
            assert row[3] == "8" and row[6].startswith("UNKNOWN · ")  # committed at 2 of 10, one sample so far


@pytest.mark.kafka
async def test_the_app_on_kafka():
    target = kafka_target()
    topic, group = f"tui-smoke-{uuid.uuid4().hex[:8]}", f"tui-smoke-group-{uuid.uuid4().hex[:8]}"
    async with service.connect(target) as conn:
        await conn.create_topic(topic, 1)
    try:
        await drive(target, topic, group)
    finally:
        async with service.connect(target) as conn:
            await conn.delete_topic(topic)
        if group in endpoints.kafka_group_ids(group):
            endpoints.delete_kafka_groups(group)


@pytest.mark.rabbitmq
async def test_the_app_on_rabbitmq():
    target = rabbit_target()
    stream = f"tui-smoke-{uuid.uuid4().hex[:8]}"
    async with service.connect(target) as conn:
        await conn.create_topic(stream)
    try:
        await drive(target, stream)
    finally:
        async with service.connect(target) as conn:
            await conn.delete_topic(stream)
