"""What keeps the app responsive while events stream in, asserted as behaviour (no timings here:
those are in tests/benchmarks/test_tui_*.py): no screen layout per batch or per key, the first
frame before any broker call, heavy modules imported only when their screen opens."""

from __future__ import annotations

import subprocess
import sys

from workbench.broker import OutgoingEvent

from .conftest import SIZE, make_app, open_events, publish, rendered, settle


def count_layouts(app) -> list[int]:
    """A counter of the screen's layouts from now on (Textual publishes a signal after each)."""
    layouts = [0]

    def counted(_screen) -> None:
        layouts[0] += 1

    app.screen.screen_layout_refresh_signal.subscribe(app.screen, counted)
    return layouts


async def test_new_events_and_leaving_the_bottom_do_not_lay_the_screen_out_again(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        stream, events = app.stream, app.stream.event_list
        layouts = count_layouts(app)
        notified = stream.pump.notifications
        await publish(target, "orders", [OutgoingEvent(value=b'{"n":%d}' % i, key=b"k") for i in range(30)])
        await settle(pilot, lambda: len(stream.buffer) == counts["orders"] + 30
                     and events.virtual_size.height == len(stream.buffer), "the new events in the list")
        assert stream.pump.notifications > notified  # the list did grow through the pump's updates
        assert events.following and '{"n":29}' in events.visible_text()[-1]
        await pilot.press("up", "up")  # leave the bottom: the "N new" line changes its text only
        await publish(target, "orders", [OutgoingEvent(value=b"more", key=b"k") for _ in range(3)])
        indicator = app.query_one("#new-indicator")
        await settle(pilot, lambda: "3 new events" in rendered(indicator), "the N new line")
        await pilot.press("G")
        await settle(pilot, lambda: "following" in rendered(indicator), "following again")
        assert layouts[0] == 0, f"{layouts[0]} layouts of the whole screen"


async def test_the_first_frame_comes_before_the_connection(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        # run_test returns once the app is ready (composed, before its first paint): no worker
        # has started to load the adapter or connect yet, and the status line says so
        assert not [w for w in app.workers if w.group == "connect"]
        assert app.conn is None and app.connection_state == "connecting"
        assert "connecting" in rendered(app.query_one("#status"))
        await settle(pilot, lambda: app.conn is not None and app.topics, "the connection after the first frame")


def test_importing_the_app_leaves_the_screens_and_dialogs_for_later():
    code = ("import sys, workbench.tui.app as app\n"
            "print(sorted(m for m in sys.modules if m.startswith('workbench.tui.screens.')))\n"
            "print('adapters.local' in sys.modules, 'textual.widgets._text_area' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "False False"], out
