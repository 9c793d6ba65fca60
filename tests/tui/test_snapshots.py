"""SVG snapshots of the main screens on the demo data (fixed seed, fixed "now", frozen clock, 120x36).

Review a changed snapshot before accepting it: `pytest tests/tui --snapshot-update`, then look at
the SVG files under tests/tui/__snapshots__/.
"""

from __future__ import annotations

from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.lag import LagScreen

from .conftest import SIZE, make_app, open_events, settle


def test_main_screen_following_orders(target, snap_compare):
    app = make_app(target)

    async def run_before(pilot):
        await open_events(pilot, "orders", 117)
        await settle(pilot, lambda: app.stream.pump.state == "running", "the follow read")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_detail_pane_of_an_event(target, snap_compare):
    app = make_app(target)

    async def run_before(pilot):
        await open_events(pilot, "orders", 117)
        await pilot.press("up", "up", "enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_lag_view(target, snap_compare):
    app = make_app(target)

    async def run_before(pilot):
        await settle(pilot, lambda: app.conn is not None and app.topics, "the connection")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
