"""Finding the event in the TUI: the position dialog's end and key (a bounded window over the
key's partitions, with the scan's account in the title), and named filters in the filter box."""

from __future__ import annotations

from textual.widgets import Input

from workbench import service
from workbench.broker import Event, Position
from workbench.partitioning import plan_key_search
from workbench.tui.screens.position import PositionDialog

from .conftest import SIZE, make_app, open_topic, rendered, settle


async def all_events(target, topic: str) -> list[Event]:
    async with service.connect(target) as conn:
        return [e async for batch in service.tail(conn, topic, Position.beginning()) for e in batch]


async def fill_dialog(pilot, start: str, until: str = "", key: str = "") -> None:
    app = pilot.app
    await pilot.press("o")
    await settle(pilot, lambda: isinstance(app.screen, PositionDialog), "the position dialog")
    app.screen.query_one("#until-input", Input).value = until
    app.screen.query_one("#key-input", Input).value = key
    field = app.screen.query_one("#position-input", Input)
    field.value = start
    field.focus()
    await pilot.press("enter")


async def test_a_key_in_a_window_reads_its_partitions_and_tells_the_scan(target):
    events = await all_events(target, "payments")
    key = next(e.key for e in events if e.key)
    wanted = [(e.partition, e.offset) for e in events if e.key == key]
    count = len({e.partition for e in events}) or 1
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "payments")
        await fill_dialog(pilot, "beginning", until="now", key=key.decode())
        stream = app.main.stream
        await settle(pilot, lambda: stream.pump is not None and stream.pump.state == "done", "the bounded read")
        assert sorted((e.partition, e.offset) for e in stream.buffer) == sorted(wanted)
        assert stream.report is not None and stream.report.done
        assert set(stream.report.partitions) == set(plan_key_search(key, count).partitions)
        title = rendered(stream.query_one("#stream-title"))
        assert "until now" in title and "scanned" in title


async def test_a_window_ends_at_an_offset_and_a_bad_end_is_said_inline(target):
    events = await all_events(target, "payments")
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "payments")
        await fill_dialog(pilot, "5", until="3")
        error = app.screen.query_one("#position-error")
        await settle(pilot, lambda: error.display, "the inline error")
        assert "is before --from" in rendered(error)
        await pilot.press("escape")
        await fill_dialog(pilot, "beginning", until="2")
        stream = app.main.stream
        await settle(pilot, lambda: stream.pump is not None and stream.pump.state == "done", "the bounded read")
        assert sorted((e.partition, e.offset) for e in stream.buffer) == sorted(
            (e.partition, e.offset) for e in events if e.offset <= 2
        )


async def test_the_filter_box_offers_and_applies_named_filters(target, isolated_home):
    (isolated_home / "workbench.toml").write_text("[filters]\nbig = 'offset >= 3'\n", encoding="utf-8")
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "payments")
        await fill_dialog(pilot, "beginning")
        await pilot.press("slash")
        box = app.main.stream.query_one("#event-filter", Input)
        await settle(pilot, lambda: box.has_focus, "the filter box")
        assert "@big" in box.placeholder
        assert box.suggester is not None and await box.suggester.get_suggestion("@b") == "@big"
        box.value = "@big"
        await pilot.press("enter")
        stream = app.main.stream
        await settle(pilot, lambda: stream.filter_text == "@big" and len(stream.buffer) > 0, "the named filter")
        assert all(e.offset >= 3 for e in stream.buffer)
