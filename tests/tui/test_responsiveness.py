"""What keeps the app responsive while events stream in, asserted as behaviour (no timings here:
those are in tests/benchmarks/test_tui_*.py): no screen layout per batch or per key, the first
frame before any broker call, heavy modules imported only when their screen opens."""

from __future__ import annotations

import subprocess
import sys

from workbench.broker import Connection, OutgoingEvent, Unreachable

from .conftest import SIZE, Passthrough, make_app, open_events, publish, rendered, settle


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
        stream, events = app.main.stream, app.main.stream.event_list
        layouts = count_layouts(app)
        notified = stream.pump.notifications
        await publish(target, "orders", [OutgoingEvent(value=b'{"n":%d}' % i, key=b"k") for i in range(30)])
        await settle(
            pilot,
            lambda: len(stream.buffer) == counts["orders"] + 30 and events.virtual_size.height == len(stream.buffer),
            "the new events in the list",
        )
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
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection after the first frame")


def test_importing_the_app_leaves_the_screens_and_dialogs_for_later():
    """Only the main screen (the app's default screen) comes with the app."""
    code = (
        "import sys, workbench.tui.app as app\n"
        "print(sorted(m for m in sys.modules if m.startswith('workbench.tui.screens.')))\n"
        "print('workbench_local' in sys.modules, 'textual.widgets._text_area' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['workbench.tui.screens.main']", "False False"], out


class Relay(Passthrough):
    """The app's real connection, with a hand on the ``on_outage`` callback its reads are given
    (a broker outage is the adapter's to detect; here the test says when one starts and ends)."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.on_outage = None
        self.reads = 0

    def read(self, topic, start, *, on_outage=None, **kwargs):
        self.reads += 1
        self.on_outage = on_outage
        return self.inner.read(topic, start, **kwargs)


async def test_a_broker_outage_the_read_rides_out_says_reconnecting_and_resumes_the_same_read(target, counts):
    orders = counts["orders"]
    app = make_app(target, health_interval=0.05)  # the periodic check runs often: it must hold back
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        relay = app.conn = Relay(app.conn)
        await open_events(pilot, "orders", orders)
        pump, status = app.main.stream.pump, app.query_one("#status")
        relay.on_outage(Unreachable("localhost:9092: connection refused"))
        await settle(pilot, lambda: "reconnecting (the read goes on where it was)" in rendered(status), "reconnecting")
        assert "connection refused" in rendered(status)
        assert "reconnecting" in rendered(app.query_one("#stream-title"))
        note = list(app._notifications)[-1]
        assert note.title == "Lost the broker" and "goes on where it was" in note.message
        app.broker_lost(Unreachable("a lag refresh failed too"))  # does not start over
        assert app.connection_state == "connected" and app.conn is relay and app.main.stream.pump is pump
        relay.on_outage(None)
        await publish(target, "orders", [OutgoingEvent(value=b'{"after":%d}' % i, key=b"k") for i in range(5)])
        await settle(pilot, lambda: len(app.main.stream.buffer) == orders + 5, "the events after the outage")
        assert app.main.stream.pump is pump and pump.active and relay.reads == 1  # the same read, no restart
        assert (
            app.main.stream.buffer.received == orders + 5 and app.main.stream.buffer.dropped == 0
        )  # no gap, no repeat
        assert "● connected" in rendered(status)
        assert list(app._notifications)[-1].title == "Reconnected"
        assert not [w for w in app.workers if w.group == "connect"]


async def test_the_garbage_collector_is_tuned_while_the_app_runs_and_given_back_after(target):
    import gc

    from workbench.tui.app import GC_THRESHOLDS

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS  # else this test would prove nothing
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection after the first frame")
        # what exists after the first frame (widgets, styles) is left out of full collections
        assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
