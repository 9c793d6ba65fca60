"""Issue 19, the TUI parts other than scale: slow is not lost, the sidebar, RabbitMQ exchanges,
sagas on a missing topic, the trace layout and progress, stale filter errors, the help and
detail keys, plurals and the local profile's path."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList

from workbench.broker import Connection, NotFound, Timeout, Unreachable
from workbench.tui.inflight import InFlight
from workbench.tui.screens.lag import LagScreen

from .conftest import SIZE, Passthrough, make_app, make_target, open_topic, rendered, settle


class Wrapped(Passthrough):
    """A pass-through connection that remembers being closed."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()


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
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
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
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
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
        await settle(pilot, lambda: app.main.topic == "payments", "payments to open")
        await settle(pilot, lambda: rendered(view).startswith("payments"), "the payments overview")
        assert "orders" not in rendered(view)
        held.release.set()


# ---------------------------------------------------------------- 5. sagas on a missing topic


async def test_sagas_on_a_profile_without_the_saga_topic_say_what_saga_list_says(isolated_home):
    from workbench import config, service
    from workbench.sagas import compensation
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


# ---------------------------------------------------------------- 6. the sidebar follows the terminal's width


LONG = "com.example.fulfilment.warehouse-allocation-requests.v2"


async def sidebar_at(target, size: tuple[int, int]) -> int:
    """Checks the topic list at ``size``; the sidebar's width."""
    app = make_app(target)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, lambda: app.main.topics, "the topic list")
        await pilot.pause()
        options = app.query_one("#topics", OptionList)
        width = app.query_one("#sidebar").outer_size.width
        lines = [line.rstrip() for line in rendered(options).splitlines() if line.strip()]
        long_line = next(line for line in lines if line.lstrip().startswith("com.example"))
        assert "…" in long_line and long_line.endswith(" 0")  # cut, and the count still whole
        assert len({len(line) for line in lines}) == 1, lines  # every count against the right edge
        await open_topic(pilot, LONG)
        title = app.query_one("#topic-title")
        await settle(pilot, lambda: "partition" in rendered(title), "the topic's overview")
        assert LONG in rendered(title).replace("\n", "")  # the full name where there is room
    return width


async def test_the_sidebar_grows_with_the_terminal_and_cuts_long_names_before_the_count(target):
    from workbench import service as svc

    async with svc.connect(target) as conn:
        await conn.create_topic(LONG, 1)
    widths = {size[0]: await sidebar_at(target, size) for size in ((100, 30), (180, 40))}
    assert widths[180] > widths[100] >= 24


# ---------------------------------------------------------------- 7. trace: layout and progress


class HeldRead(Wrapped):
    """Reads wait until ``release`` is set (a long scan, frozen for the test)."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.release = asyncio.Event()

    def read(self, topic, start, **kwargs):
        async def held():
            await self.release.wait()
            async for batch in self.inner.read(topic, start, **kwargs):
                yield batch

        return held()


async def test_the_trace_view_shows_events_scanned_of_the_total_and_its_hops_right_under_the_inputs(target, counts):
    from textual.widgets import DataTable

    from workbench.tui.screens.trace import TraceScreen

    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        held = HeldRead(app.conn)
        screen = TraceScreen(lambda: held, correlation_id="no-such-id", since="beginning")
        app.push_screen(screen)
        await settle(pilot, lambda: screen.is_mounted, "the trace view")
        status = screen.query_one("#trace-status")
        total = sum(counts.values())
        await settle(pilot, lambda: f"0 of {total:,} events scanned (0%)" in rendered(status), "the progress")
        held.release.set()
        await settle(pilot, lambda: screen.searches == 1, "the trace")
        assert screen.scanned == total
        inputs = screen.query_one("#trace-inputs")
        hops = screen.query_one("#trace-hops", DataTable)
        assert hops.region.y - (inputs.region.y + inputs.region.height) <= 3  # not at the bottom
        assert status.region.y == inputs.region.y + inputs.region.height


# ---------------------------------------------------------------- 8. small things


async def test_a_refused_filter_and_its_error_do_not_follow_to_the_next_topic(target, counts):
    from .conftest import enter_text, open_events

    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        await pilot.press("slash")
        await enter_text(pilot, "value.(")
        error = app.query_one("#filter-error")
        await settle(pilot, lambda: error.display, "the filter error")
        await pilot.press("escape")  # back to the list (f in the filter box would be typed)
        await open_events(pilot, "payments", counts["payments"])
        assert not error.display
        assert app.query_one("#event-filter", Input).value == ""


async def test_the_help_key_column_is_as_wide_as_the_keys(target):
    from workbench.tui.screens.help import HelpScreen

    app = make_app(target)
    async with app.run_test(size=(180, 50)) as pilot:
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        lines = rendered(app.screen.query_one("#help")).splitlines()
        line = next(line for line in lines if "command palette" in line)
        assert line.index("command palette") - line.index("ctrl+p") < 24, line


async def test_the_detail_footer_lists_copy_and_trace(target, counts):
    from .conftest import open_events

    app = make_app(target, keymap={"trace": "ctrl+g"})
    async with app.run_test(size=(160, 36)) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        await pilot.press("enter")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", "the detail")
        await pilot.pause()
        shown = {
            (b.binding.key, b.binding.description)
            for b in app.screen.active_bindings.values()
            if b.binding.show and b.enabled
        }
        assert {("c", "Copy value"), ("C", "Copy envelope"), ("ctrl+g", "Trace")} <= shown, shown


async def test_a_local_profile_without_a_path_shows_its_file(isolated_home):
    from workbench import config

    profile = config.Profile(name="local", adapter="local", source="workbench.toml")
    target = config.resolve(profile)
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        assert "local()" not in app.sub_title
        assert app.sub_title == f"local · local:{target.options['path']}"


async def test_a_view_asked_for_while_connecting_opens_once_connected(target):
    """`l` pressed as the app opens (the broker not answered yet) is not lost."""
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        assert app.conn is None  # still connecting: the adapter is loaded after the first frame
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen), "the lag view once connected")
