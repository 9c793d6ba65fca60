"""Hostile events in the workbench (Textual, driven by Pilot): the stream view, the detail pane and
a screenshot of each show them inert: visible escapes, literal markup, no control character."""

from __future__ import annotations

import html
import re

from tests.tui.conftest import make_app, make_target, open_events, publish, rendered, settle
from workbench.broker import OutgoingEvent
from workbench.tui.screens.detail import DetailScreen

from .hostile import CORPUS, MARKUP_SHOWN, assert_escapes_visible, assert_inert, hostile_events

_SVG_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.DOTALL)


def screenshot_text(app) -> str:
    """The text of every line of an SVG screenshot (what a person would read on the screen)."""
    svg = app.export_screenshot()
    return "\n".join(html.unescape(t).replace("\xa0", " ") for t in _SVG_TEXT.findall(svg))


async def seed_hostile(extra: list[OutgoingEvent] = ()) -> list[OutgoingEvent]:
    from workbench import service

    target = make_target()
    async with service.connect(target) as conn:
        await conn.create_topic("hostile", 1)
    events = hostile_events() + list(extra)
    await publish(target, "hostile", events)
    return events


async def test_stream_view_and_screenshot_show_hostile_events_inert(isolated_home):
    events = await seed_hostile()
    app = make_app(make_target())
    async with app.run_test(size=(240, 40)) as pilot:
        await open_events(pilot, "hostile", len(events))
        rows = "\n".join(app.main.stream.event_list.visible_text())
        assert_inert(rows)
        assert "\\x1b[31mRED\\x1b[0m" in rows and MARKUP_SHOWN in rows and "\\u202eevil" in rows
        assert "\\x1b]52;c;" in rows and "nul\\x00byte" in rows
        shot = screenshot_text(app)
        assert_inert(shot)
        assert MARKUP_SHOWN in shot and "\\x1b]8;;https://evil.example/" in shot


async def test_detail_pane_of_every_hostile_event_is_inert(isolated_home):
    events = await seed_hostile()
    app = make_app(make_target())
    async with app.run_test(size=(200, 60)) as pilot:
        await open_events(pilot, "hostile", len(events))
        app.main.stream.event_list.focus()
        await pilot.press("g")
        seen = []
        for _ in events:
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
            event = app.screen.event
            shown = rendered(app.screen.query_one("#detail"))
            assert_inert(shown)
            assert_inert(screenshot_text(app))
            seen.append((event.value, shown))
            await pilot.press("escape")
            await settle(pilot, lambda: not isinstance(app.screen, DetailScreen), "back to the events")
            await pilot.press("down")
        assert [value for value, _ in seen] == [e.value for e in events]
        everything = "\n".join(shown for _, shown in seen)
        assert_escapes_visible(everything.replace("\n", " "))
        # invalid UTF-8 is a hex dump, header names are escaped too
        assert "ff fe c3 28 ed a0 80 c0" in everything and "h-csi_colour\\x1b[7m" in everything


async def test_a_10_mb_value_and_10000_headers_are_shown_cut_and_inert(isolated_home):
    big = (CORPUS["csi_clear_screen"] + CORPUS["rich_markup"]) * (10 * 1024 * 1024 // 80)
    headers = tuple((f"h{i}", CORPUS["osc52_clipboard"]) for i in range(10_000))
    events = [OutgoingEvent(value=big, key=b"big"), OutgoingEvent(value=b"many", headers=headers)]
    from workbench import service

    async with service.connect(make_target()) as conn:
        await conn.create_topic("big", 1)
    await publish(make_target(), "big", events)
    app = make_app(make_target())
    async with app.run_test(size=(160, 50)) as pilot:
        await open_events(pilot, "big", 2)
        assert_inert("\n".join(app.main.stream.event_list.visible_text()))
        app.main.stream.event_list.focus()
        await pilot.press("g")
        for expected in events:
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
            assert app.screen.event.value == expected.value
            shown = rendered(app.screen.query_one("#detail"))
            assert_inert(shown)
            assert len(shown) < 2_000_000  # cut with a note, never the whole payload
            if expected.headers:
                assert "Headers (10,000)" in shown and "9,500 more headers not shown" in shown
            await pilot.press("escape")
            await settle(pilot, lambda: not isinstance(app.screen, DetailScreen), "back to the events")
            await pilot.press("down")
