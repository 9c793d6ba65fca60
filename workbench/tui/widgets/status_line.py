"""The status line: the connection (connected, slow, reconnecting, not connected) and the open read
(its state, events/s, buffered, dropped, matched)."""

from __future__ import annotations

from rich.text import Text

from workbench.events import codecs
from workbench.tui.failures import describe_error
from workbench.tui.inflight import InFlight
from workbench.tui.supervisor import State, Supervisor
from workbench.tui.widgets.line import Line
from workbench.tui.widgets.stream_view import StreamView


def status_text(sup: Supervisor, stream: StreamView, draining: InFlight | None = None) -> Text:
    """``draining``: the old connection a reconnect waits for (its requests in flight are counted)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    pump = stream.pump
    if sup.state == State.CONNECTED and pump is not None and pump.outage is not None:
        text.append("⟳ reconnecting (the read goes on where it was)", "bold yellow")
        text.append(": " + codecs.safe_text(describe_error(pump.outage)[0][:200]), "yellow")
    elif sup.state == State.CONNECTED:
        text.append("● connected", "green")
        slow = sup.slow_shown()
        if slow is not None:
            text.append(f" · the broker is slow ({codecs.safe_text(slow)} timed out; it still answers)", "yellow")
    elif sup.state == State.CONNECTING:
        text.append("○ connecting…", "yellow")
    elif sup.state == State.RECONNECTING:
        text.append(f"⟳ reconnecting (attempt {sup.attempt}", "bold yellow")
        retry_in = sup.retry_in()
        if retry_in is not None:
            text.append(f", next in {retry_in:.0f} s", "bold yellow")
        text.append("; r retries now)", "bold yellow")
        if draining is not None:
            text.append(f" waiting for {draining.count} request(s) in flight to end", "yellow")
        if sup.last_error is not None:
            text.append(": " + codecs.safe_text(describe_error(sup.last_error)[0][:200]), "yellow")
        return text
    else:
        text.append("✗ not connected (r retries)", "red")
    buffer = stream.buffer
    if stream.topic is not None:
        text.append("  │  ")
        text.append(codecs.safe_text(stream.topic), "bold")
        text.append(f": {stream.state_text()}")
        text.append(f"  │  {buffer.rate():,.0f} events/s  │  buffered {len(buffer):,}/{buffer.capacity:,}")
        text.append("  │  dropped ")
        text.append(f"{buffer.dropped:,}", "bold red" if buffer.dropped else "")
        if pump is not None and pump.broker_dropped:
            text.append(f" (+ at least {pump.broker_dropped:,} by the broker)", "bold red")
        if stream.filter_text and pump is not None:
            text.append(f"  │  matched {buffer.received:,} of {pump.scanned:,}")
    return text


class StatusLine(Line):
    """One line under the main area; the app refreshes it every second and on every change."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def show_status(self, sup: Supervisor, stream: StreamView, draining: InFlight | None = None) -> None:
        self.show(status_text(sup, stream, draining))
