"""The workbench app driven with Pilot against the real local adapter on demo data."""

from __future__ import annotations

import json
import re

from textual.widgets import DataTable, OptionList, Static, TabbedContent

from workbench import service
from workbench.broker import OutgoingEvent, Position
from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.position import PositionDialog
from workbench.tui.widgets.group_table import GroupTable
from workbench.tui.widgets.stream_view import StreamView

from .conftest import (
    SIZE,
    enter_text,
    make_app,
    open_events,
    open_topic,
    publish,
    rendered,
    settle,
)


async def topic_figures(target, name):
    async with service.connect(target) as conn:
        return await conn.describe_topic(name)


async def test_topics_are_listed_and_filtered_by_typing(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.main.topics, "the topic list")
        shown = rendered(app.query_one("#topics", OptionList))
        for name in ("inventory", "orders", "payments", "shipping"):
            assert name in shown
        assert re.search(rf"orders +{counts['orders']} *$", shown, re.MULTILINE)  # the count on the right
        await pilot.press("f", "p", "a", "y")
        await settle(pilot, lambda: app.query_one(OptionList).option_count == 1, "the filtered list")
        assert "payments" in rendered(app.query_one("#topics", OptionList))
        assert "● connected" in rendered(app.query_one("#status"))


async def test_selecting_a_topic_shows_partitions_and_consuming_groups(target):
    info = await topic_figures(target, "orders")
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        table = app.query_one("#partitions", DataTable)
        await settle(pilot, lambda: table.row_count == len(info.partitions), "the partitions table")
        for p in info.partitions:
            assert [c.plain for c in table.get_row(str(p.partition))] == [
                str(p.partition),
                f"{p.start:,}",
                f"{p.end:,}",
                f"{p.count:,}",
            ]
        groups = app.query_one("#groups", DataTable)
        await settle(pilot, lambda: groups.row_count > 0, "the groups table")
        consuming = {str(k.value) for k in groups.rows}
        assert {"inventory-service", "analytics"} <= consuming and "billing-service" not in consuming


async def test_stream_view_shows_the_events_and_the_count_matches(target):
    info = await topic_figures(target, "orders")
    expected = service.expected_count(info, Position.last(200), None)
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", expected)
        stream = app.main.stream
        await settle(pilot, lambda: stream.pump.state == "running", "the follow read")
        assert len(stream.buffer) == expected == info.count  # fewer than 200 per partition
        lines = [line for line in stream.event_list.visible_text() if line.strip()]
        assert len(lines) == min(expected, stream.event_list.scrollable_content_region.height)
        assert all("Order" in line and "ORD-" in line for line in lines)
        # following: the newest event is on the last visible line
        newest = stream.buffer[-1]
        assert f"{newest.partition}/{newest.offset}" in lines[-1]
        assert f"buffered {expected}/10,000" in rendered(app.query_one("#status"))


HOSTILE_VALUE = "\x1b[31mRED\x1b[0m [bold red]markup[/] \u202eevil\x07 \x1b]0;pwned\x07".encode()


async def test_hostile_payloads_are_shown_inert(target):
    async with service.connect(target) as conn:
        await conn.create_topic("hostile", 1)
    await publish(
        target,
        "hostile",
        [
            OutgoingEvent(
                value=HOSTILE_VALUE,
                key=b"\x1b[2J[red]key[/]",
                headers=(("ce_type", b"[blink]Evil[/]\x1b[5m"), ("correlation_id", "\u202ecorr".encode())),
            )
        ],
    )
    app = make_app(target)
    async with app.run_test(size=(220, 30)) as pilot:  # wide: the whole value fits beside the sidebar
        await open_events(pilot, "hostile", 1)
        text = "\n".join(app.main.stream.event_list.visible_text())
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\\x1b[31mRED\\x1b[0m [bold red]markup[/] \\u202eevil" in text  # visible, not styled
        assert "\\x1b[2J[red]key" in text
        assert "[blink]Evil" in text
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        shown = rendered(app.screen.query_one("#detail"))
        assert "\x1b" not in shown and "\u202e" not in shown
        assert "[bold red]markup[/]" in shown and "\\x1b[31m" in shown


async def test_a_filter_with_a_syntax_error_is_shown_inline_and_the_app_keeps_going(target, counts):
    orders = counts["orders"]
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", orders)
        await pilot.press("slash")
        await enter_text(pilot, "type == ")
        error = app.query_one("#filter-error", Static)
        await settle(pilot, lambda: error.display, "the inline filter error")
        assert "column 9: invalid syntax" in rendered(error)
        assert app.is_running and app.main.stream.pump.active and len(app.main.stream.buffer) == orders
        await enter_text(pilot, 'type == "OrderCancelled"')
        await settle(pilot, lambda: not error.display, "the error to go")
        await settle(pilot, lambda: app.main.stream.pump.scanned == orders, "the filtered read")
        assert 0 < len(app.main.stream.buffer) < orders
        assert all(line.strip() == "" or "OrderCancelled" in line for line in app.main.stream.event_list.visible_text())
        assert "matched" in rendered(app.query_one("#status"))


async def test_pause_stops_new_rows_and_resume_catches_up(target, counts):
    orders = counts["orders"]
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", orders)
        stream = app.main.stream
        before = stream.event_list.visible_text()
        await pilot.press("space")
        assert stream.pump.paused
        await publish(target, "orders", [OutgoingEvent(value=b'{"n": %d}' % i, key=b"k") for i in range(5)])
        await settle(pilot, lambda: stream.pump.held > 0, "the pump to hold the new batch")
        assert len(stream.buffer) == orders and stream.event_list.visible_text() == before
        assert "paused" in rendered(app.query_one("#status"))
        await pilot.press("space")
        await settle(pilot, lambda: len(stream.buffer) == orders + 5, "the pump to catch up")
        assert '{"n":4}' in stream.event_list.visible_text()[-1]


async def test_n_new_instead_of_jumping_when_scrolled_away(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        events = app.main.stream.event_list
        await pilot.press("g")
        assert not events.following and events.scroll_y == 0
        top = events.visible_text()[0]
        indicator = app.query_one("#new-indicator", Static)
        await settle(pilot, lambda: "browsing" in rendered(indicator), "the browsing line")
        await publish(target, "orders", [OutgoingEvent(value=b"new", key=b"k") for _ in range(7)])
        await settle(
            pilot,
            lambda: len(app.main.stream.buffer) == counts["orders"] + 7 and indicator.has_class("-new"),
            "the N new indicator",
        )
        assert "7 new events" in rendered(indicator)
        assert events.visible_text()[0] == top and events.scroll_y == 0  # no jump
        await pilot.press("G")
        await settle(pilot, lambda: not indicator.has_class("-new"), "following again")
        assert events.following and "new" in events.visible_text()[-1]
        assert "following the newest events" in rendered(indicator) and "new event" not in rendered(indicator)


async def test_enter_opens_the_detail_pane_with_pretty_json(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        selected = app.main.stream.buffer[-2]
        await pilot.press("up", "enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        shown = rendered(app.screen.query_one("#detail"))
        pretty = json.dumps(json.loads(selected.value), indent=2).splitlines()
        assert pretty[1] in shown and pretty[2] in shown  # '  "orderId": "ORD-…",' on lines of their own
        assert f"partition {selected.partition} · offset {selected.offset}" in shown
        assert "Headers (9)" in shown and "correlation id" in shown
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, DetailScreen), "back to the list")


async def test_lag_view_lists_the_demo_groups_with_their_lag(target):
    async with service.connect(target) as conn:
        expected = {g.group_id: g.total for g in await service.lag(conn)}
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")
        screen = app.screen
        table = screen.query_one("#lag-groups", GroupTable)
        shown = {key: table.get_row(key)[3].plain for key in table.row_keys}
        assert shown == {g: f"{n:,}" for g, n in expected.items()}
        assert set(shown) == {"billing-service", "inventory-service", "shipping-service", "analytics", "fraud-check"}
        assert "auto-refresh every 5 s" in rendered(screen.query_one("#lag-title"))
        parts = screen.query_one("#lag-partitions", DataTable)
        await settle(pilot, lambda: parts.row_count > 0, "the partition drill-down")
        first = table.current.group_id
        await pilot.press("down")
        await settle(pilot, lambda: table.current.group_id != first, "the next group")
        assert "Partitions of" in rendered(screen.query_one("#lag-partitions-title"))
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, LagScreen), "back")


async def test_position_dialog_shows_errors_inline_then_reads_from_the_position(target):
    total = sum(info.count for info in [await topic_figures(target, "payments")])
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "payments")
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, PositionDialog), "the position dialog")
        await enter_text(pilot, "yesterday")
        error = app.screen.query_one("#position-error", Static)
        await settle(pilot, lambda: error.display, "the inline position error")
        assert "is not a position" in rendered(error)
        await enter_text(pilot, "beginning")
        await settle(pilot, lambda: len(app.main.stream.buffer) == total, "the read from the beginning")
        assert str(app.main.stream.position) == "beginning"


async def test_help_screen_and_quit(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        assert "pause / resume" in rendered(app.screen.query_one("#help"))
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")
        await pilot.press("q")
        await settle(pilot, lambda: not app.is_running, "the app to quit")
    assert app.conn is None  # the connection was closed


async def test_a_tab_activation_still_queued_when_the_views_are_gone_does_nothing(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        tabs = app.query_one(TabbedContent)
        activated = TabbedContent.TabActivated(tabs, tabs.get_tab("tab-events"))
        await app.query_one("#body").remove()  # as at exit: the views go before the app's queue is empty
        await app.main.on_tabbed_content_tab_activated(activated)  # no NoMatches(StreamView)
        assert app.conn is not None and not app.query(StreamView)


async def test_an_unreachable_broker_says_reconnecting_and_the_app_recovers_when_it_is_back(isolated_home):
    from workbench import config

    # the local adapter's "broker" is unreachable while its directory is missing
    bad = config.resolve(config.url_profile("local:later/events.db"))
    app = make_app(bad, retry_delays=(0.05, 0.1))
    async with app.run_test(size=SIZE) as pilot:
        await settle(
            pilot, lambda: app.connection_state == "reconnecting" and app.attempt >= 2, "the retries with backoff"
        )
        notes = list(app._notifications)
        assert len(notes) == 1 and notes[0].severity == "error"  # one notification, not one per retry
        assert "does not exist" in notes[0].message and "r retries now" in notes[0].message
        status = rendered(app.query_one("#status"))
        assert "reconnecting (attempt" in status and "local:later/events.db: directory" in status
        (isolated_home / "later").mkdir()
        await settle(pilot, lambda: app.connection_state == "connected", "the reconnect")
        await settle(pilot, lambda: "● connected" in rendered(app.query_one("#status")), "the status line")
        assert any(n.title == "Reconnected" for n in app._notifications)
        await pilot.press("ctrl+c")
        await settle(pilot, lambda: not app.is_running, "ctrl+c to quit")


async def test_a_bad_profile_is_not_retried(isolated_home):
    from workbench import config

    bad = config.resolve(config.url_profile("local:events.db"))
    bad = config.Target(bad.profile, "no-such-adapter", bad.options)
    app = make_app(bad, retry_delays=(0.05,))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.connection_state == "not connected", "the failed connection")
        assert app.attempt == 0 and "not connected (r retries)" in rendered(app.query_one("#status"))
        notes = list(app._notifications)
        assert notes and notes[0].severity == "error" and "Traceback" not in notes[0].message


async def test_a_deleted_topic_stops_the_read_with_a_notification(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "shipping", counts["shipping"])
        async with service.connect(target) as conn:
            await conn.delete_topic("shipping")
        await settle(pilot, lambda: app.main.stream.pump.state == "failed", "the read to fail")
        await settle(pilot, lambda: app._notifications, "the notification")
        note = list(app._notifications)[-1]
        assert note.severity == "error" and "Could not read 'shipping'" in note.title
        assert "deleted" in note.message and "press r" in note.message
        assert "stopped by an error" in rendered(app.query_one("#status"))
        assert app.is_running and len(app.main.stream.buffer) == counts["shipping"]  # what was read stays


async def test_buffer_overflow_drops_the_oldest_and_shows_the_count(target, counts):
    app = make_app(target, capacity=50)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        await pilot.press("e")
        await settle(pilot, lambda: app.main.stream.buffer.received == counts["orders"], "all of orders")
        await settle(
            pilot, lambda: f"dropped {counts['orders'] - 50}" in rendered(app.query_one("#status")), "the drop count"
        )
        assert "buffered 50/50" in rendered(app.query_one("#status"))
        await pilot.press("g")  # the top is the oldest event still kept
        first = app.main.stream.buffer[0]
        assert f"{first.partition}/{first.offset}" in app.main.stream.event_list.visible_text()[0]
