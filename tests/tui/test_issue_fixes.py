"""Issue 19, the TUI parts other than scale: slow is not lost, the sidebar, RabbitMQ exchanges,
sagas on a missing topic, the trace layout and progress, stale filter errors, the help and
detail keys, plurals and the local profile's path."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList

from workbench.broker import Connection, NotFound, Timeout, Unreachable
from workbench.tui.inflight import InFlight
from workbench.tui.screens.lag import LagScreen

from .conftest import SIZE, make_app, make_target, open_topic, rendered, settle


class Wrapped(Connection):
    """A connection passing everything through, for tests to change one call."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner
        self.closed = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()

    async def list_topics(self):
        return await self.inner.list_topics()

    async def describe_topic(self, name):
        return await self.inner.describe_topic(name)

    async def publish(self, topic, events):
        return await self.inner.publish(topic, events)

    def read(self, topic, start, **kwargs):
        return self.inner.read(topic, start, **kwargs)

    async def lag(self, group_ids=None, **kwargs):
        return await self.inner.lag(group_ids, **kwargs)


class SlowLag(Wrapped):
    """The lag of every group times out; everything else answers."""

    async def lag(self, group_ids=None, **kwargs):
        raise Timeout("lag of 10,008 groups: no answer within 30 s")


def titles(app) -> list[str]:
    return [n.title for n in app._notifications]


# ---------------------------------------------------------------- 2. slow is not lost


async def test_a_bulk_request_that_times_out_while_the_broker_answers_is_slow_not_lost(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.topics, "the connection")
        slow = app.conn = SlowLag(app.conn)
        await open_topic(pilot, "orders")  # the topic view reads the lag of every group
        status = app.query_one("#status")
        await settle(pilot, lambda: "the broker is slow" in rendered(status), "the broker is slow")
        assert "The broker is slow" in titles(app) and "Lost the broker" not in titles(app)
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")
        await pilot.pause()
        assert "Timeout" in rendered(app.screen.query_one("#lag-title"))
        assert app.connection_state == "connected" and app.conn is slow and not slow.closed
        assert "Lost the broker" not in titles(app) and titles(app).count("The broker is slow") == 1


class Outage(Wrapped):
    """A lag request held until the test lets it go; list_topics fails once ``down`` is set."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.down = False
        self.release = asyncio.Event()
        self.in_lag = False

    async def list_topics(self):
        if self.down:
            raise Unreachable("127.0.0.1:9092: connection refused")
        return await self.inner.list_topics()

    async def lag(self, group_ids=None, **kwargs):
        self.in_lag = True
        await self.release.wait()
        return await self.inner.lag(group_ids, **kwargs)


async def test_a_reconnect_waits_for_the_requests_in_flight_before_closing_the_connection(target):
    app = make_app(target, health_interval=0.05, retry_delays=(0.05,), lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.topics, "the connection")
        tracked = app.conn
        assert isinstance(tracked, InFlight)
        outage = tracked.inner = Outage(tracked.inner)
        await pilot.press("l")
        await settle(pilot, lambda: outage.in_lag, "the lag refresh in flight")
        outage.down = True  # the periodic check's cheap call fails: a loss
        status = app.query_one("#status")
        await settle(pilot, lambda: "waiting for 1 request(s) in flight" in rendered(status), "the wait")
        assert "Lost the broker" in titles(app)
        assert "open" in repr(outage.inner)  # the lag refresh still runs on it
        outage.release.set()
        await settle(pilot, lambda: "closed" in repr(outage.inner), "the old connection closed once idle")
        await settle(pilot, lambda: app.connection_state == "connected" and app.conn is not None, "reconnected")
        assert app.conn is not tracked
        await settle(pilot, lambda: app.screen.loaded, "the refresh that was in flight")
        assert app.screen.failed is None  # it finished on its own connection


# ---------------------------------------------------------------- 3. sidebar: enter opens the match


class HeldLag(Wrapped):
    """The lag of every group takes its time (a big cluster): it answers once ``release`` is set."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.release = asyncio.Event()

    async def lag(self, group_ids=None, **kwargs):
        await self.release.wait()
        return await self.inner.lag(group_ids, **kwargs)


async def test_enter_in_the_topic_filter_opens_the_one_match_not_the_previous_topic(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        view = app.query_one("#topic-title")
        await settle(pilot, lambda: "orders" in rendered(view), "the orders overview")
        held = app.conn = HeldLag(app.conn)  # the groups of the next topic take long to come
        await pilot.press("f")
        for key in "paym":
            await pilot.press(key)
        assert len(app.query_one("#topics", OptionList).options) == 1
        await pilot.press("enter")
        await settle(pilot, lambda: app.topic == "payments", "payments to open")
        await settle(pilot, lambda: rendered(view).startswith("payments"), "the payments overview")
        assert "orders" not in rendered(view)
        held.release.set()


# ---------------------------------------------------------------- 5. sagas on a missing topic


async def test_sagas_on_a_profile_without_the_saga_topic_say_what_saga_list_says(isolated_home):
    from workbench import compensation, config, service
    from workbench.tui.screens.sagas import SagaScreen

    target = make_target()  # an empty event log: the demo saga's topics do not exist
    async with service.connect(target) as conn:
        definitions = list(compensation.SagaSettings.load(config.load_config()).definitions.values())
        try:
            await compensation.expected_events(conn, definitions)  # what `saga list` runs first (exit 5)
        except NotFound as exc:
            expected = str(exc)
    app = make_app(target)
    async with app.run_test(size=(160, 36)) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        await pilot.press("S")
        await settle(pilot, lambda: isinstance(app.screen, SagaScreen) and app.screen.loaded, "the saga view")
        title = " ".join(rendered(app.screen.query_one("#sagas-title")).split())
        assert "none yet" not in title and "0 instances" not in title
        assert " ".join(expected.split()) in title, (expected, title)
        assert "create the topic" in title  # the hint, as the CLI prints it
