"""SVG snapshots of the main screens on the demo data (fixed seed, fixed "now", frozen clock, 120x36).

Review a changed snapshot before accepting it: `pytest tests/tui --snapshot-update`, then look at
the SVG files under tests/tui/__snapshots__/.
"""

from __future__ import annotations

from textual.widgets import TextArea

from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.publish import PublishDialog

from .conftest import NOW_MS, SIZE, make_app, open_events, open_topic, settle


def test_main_screen_following_orders(target, counts, snap_compare):
    app = make_app(target)

    async def run_before(pilot):
        await open_events(pilot, "orders", counts["orders"])
        await settle(pilot, lambda: app.main.stream.pump.state == "running", "the follow read")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_detail_pane_of_an_event(target, counts, snap_compare):
    app = make_app(target)

    async def run_before(pilot):
        await open_events(pilot, "orders", counts["orders"])
        await pilot.press("up", "up", "enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_lag_view(target, counts, snap_compare):
    app = make_app(target, lag_interval=3600)  # one refresh only: the trend and verdicts stay fixed

    async def run_before(pilot):
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_publish_dialog_with_the_cloudevent_template(target, snap_compare):
    ids = iter(range(1, 100))
    app = make_app(target, now=lambda: NOW_MS / 1000, make_id=lambda: f"00000000-0000-4000-8000-{next(ids):012d}")

    async def run_before(pilot):
        await open_topic(pilot, "orders")
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the publish dialog")
        await pilot.press("ctrl+t")
        await settle(pilot, lambda: "ce_id" in app.screen.query_one("#publish-headers").text, "the template")
        for area in app.screen.query(TextArea):  # a blinking cursor would be on or off by chance
            area.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
