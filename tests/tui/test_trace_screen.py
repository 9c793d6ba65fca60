"""The trace screen, driven with Pilot in the real app on the demo event log (local adapter)."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from workbench import service
from workbench.broker import Position
from workbench.events.correlation import DEFAULT_RULES
from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.trace import TraceScreen

from .conftest import SIZE, enter_text, make_app, open_events, rendered, settle


async def failed_payment(target):
    """The correlation id of a PaymentFailed in the demo, and every event carrying it."""
    async with service.connect(target) as conn:
        events = [e async for batch in conn.read("payments", Position.beginning()) for e in batch]
        failed = next(e for e in events if (b"ce_type", b"PaymentFailed") in [(n.encode(), v) for n, v in e.headers])
        wanted = DEFAULT_RULES.correlation_id(failed)
        carrying = []
        for topic in ("inventory", "orders", "payments", "shipping"):
            async for batch in conn.read(topic, Position.beginning()):
                carrying += [e for e in batch if DEFAULT_RULES.correlation_id(e) == wanted]
    return wanted, carrying


async def test_trace_screen_lists_every_hop_in_time_order(target):
    wanted, carrying = await failed_payment(target)
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        screen = TraceScreen(lambda: app.conn, correlation_id=wanted, since="beginning")
        app.push_screen(screen)
        await settle(pilot, lambda: screen.searches == 1, "the trace")
        table = screen.query_one("#trace-hops", DataTable)
        assert table.row_count == len(carrying) >= 2
        topics = [table.get_row_at(i)[2].plain for i in range(table.row_count)]
        expected = sorted(carrying, key=lambda e: (e.timestamp, e.topic, e.partition, e.offset))
        assert topics == [e.topic for e in expected]
        assert "PaymentFailed" in [table.get_row_at(i)[4].plain for i in range(table.row_count)]
        assert table.get_row_at(1)[1].plain.startswith("+")
        status = rendered(screen.query_one("#trace-status", Static))
        assert f"{len(carrying)} event(s) carry {wanted}" in status
        # Enter on a hop opens its detail; escape comes back to the trace.
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        assert app.screen.event == table_event(screen, 0)
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen, "back to the trace")


def table_event(screen: TraceScreen, row: int):
    assert screen.result is not None
    return screen.result.hops[row].event


async def test_typing_an_id_searches_and_bad_input_says_why(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        screen = TraceScreen(lambda: app.conn)
        app.push_screen(screen)
        await settle(pilot, lambda: isinstance(app.focused, Input), "the id field")
        status = screen.query_one("#trace-status", Static)
        assert "Type a correlation id" in rendered(status)
        screen.query_one("#trace-since", Input).value = "yesterday"
        await enter_text(pilot, "no-such-id")
        await settle(pilot, lambda: "--since 'yesterday'" in rendered(status), "the --since error")
        screen.query_one("#trace-since", Input).value = "beginning"
        await enter_text(pilot, "\x1b[31mno-such-id")
        await settle(pilot, lambda: screen.searches == 1, "the trace")
        shown = rendered(status)
        assert "0 event(s) carry \\x1b[31mno-such-id" in shown and "\x1b" not in shown
        assert screen.query_one("#trace-hops", DataTable).row_count == 0


async def test_T_traces_the_selected_events_correlation_id(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "payments", counts["payments"])
        await pilot.press("up")
        await settle(pilot, lambda: app.main.stream.event_list.selected is not None, "a selected event")
        wanted = DEFAULT_RULES.correlation_id(app.main.stream.event_list.selected)
        assert wanted
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TraceScreen) and app.screen.searches == 1, "the trace")
        screen = app.screen
        assert screen.query_one("#trace-id", Input).value == wanted
        assert screen.result is not None and screen.result.correlation_id == wanted
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, TraceScreen), "back to the events")
        titles = [title for title, _, _ in app.palette_entries()]
        assert "Trace (T)" in titles
