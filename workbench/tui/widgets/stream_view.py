"""The event stream view: a filter box, the column header, the event list and the "N new" line.

It owns a :class:`~workbench.stream.RingBuffer` and at most one :class:`~workbench.stream.Pump`;
the pump tells it (coalesced) when there is something new, and it syncs the list.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from workbench import config
from workbench.broker import BrokerError, Connection, Position
from workbench.errors import WorkbenchError
from workbench.events import codecs
from workbench.events.filters import FilterError, compile_filter, expand_named
from workbench.partitioning import KeySearch, plan_key_search
from workbench.pump import DEFAULT_CAPACITY, Pump, RingBuffer
from workbench.scan import ScanReport
from workbench.tui import masking, rows
from workbench.tui.widgets.event_list import EventList
from workbench.tui.widgets.line import Line

FILTER_PLACEHOLDER = '/ filter: type == "PaymentFailed" and value.amount > 100  (enter applies)'
NAMED_PLACEHOLDER = "/ filter: an expression, or a named one: {names}  (→ completes, enter applies)"


class StreamView(Vertical):
    DEFAULT_CSS = """
    StreamView { height: 1fr; }
    #stream-title { height: 1; padding: 0 1; }
    #event-filter.-invalid { border: tall $error; }
    #filter-error { color: $error; padding: 0 1; height: auto; }
    #columns { height: 1; color: $text-muted; }
    #event-list { height: 1fr; }
    #new-indicator { height: 1; padding: 0 1; }
    #new-indicator.-new { background: $warning 30%; text-style: bold; }
    """
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause/resume", id="events.toggle_pause", tooltip="pause / resume reading"),
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            key_display="/",
            id="events.filter",
            tooltip="filter (same expressions as `workbench tail --filter`); enter applies",
        ),
        Binding(
            "escape",
            "focus_list",
            "To the list",
            show=False,
            id="events.to_list",
            tooltip="back to the list from the filter box",
        ),
    ]

    class Updated(Message):
        """The pump has appended events or changed state (at most every ~100 ms)."""

    class Outage(Message):
        """The read lost the broker and the adapter keeps retrying (``error``), or it reads again
        (``error`` None): the same read goes on, with no gap."""

        def __init__(self, error: BrokerError | None, topic: str) -> None:
            super().__init__()
            self.error = error
            self.topic = topic

    class Failed(Message):
        """The read ended with an error (shown once by the app)."""

        def __init__(self, error: BaseException, topic: str) -> None:
            super().__init__()
            self.error = error
            self.topic = topic

    def __init__(
        self, *, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.buffer = RingBuffer(capacity, clock=clock)
        self.pump: Pump | None = None
        self.conn: Connection | None = None
        self.topic: str | None = None
        self.position: Position | None = None
        self.filter_text: str | None = None
        self.until: Position | None = None  # a bounded window's end (then the read stops there)
        self.key: str | None = None  # only this key's events, from the partitions it can be in
        self.search: KeySearch | None = None
        self.report: ScanReport | None = None  # a bounded read's account (see workbench.scan)
        self._outage: BrokerError | None = None  # the outage last told to the app

    def compose(self):
        yield Line(id="stream-title")
        yield Input(placeholder=FILTER_PLACEHOLDER, id="event-filter")
        yield Static(id="filter-error")
        yield Line(id="columns")
        yield EventList(self.buffer, id="event-list")
        yield Line(id="new-indicator")

    def on_mount(self) -> None:
        self.query_one("#filter-error").display = False
        self._offer_named_filters()
        self._refresh_labels()

    # ------------------------------------------------------------------ named filters

    def named_filters(self) -> dict[str, str]:
        """The profile file's named filters for the app's profile (none when the file is unreadable:
        the app reports the file's problems where it loads it)."""
        target = getattr(self.app, "target", None)
        if target is None:
            return {}
        try:
            return {name: f.expression for name, f in config.named_filters(target.profile).items()}
        except WorkbenchError:
            return {}

    def _offer_named_filters(self) -> None:
        """The filter box completes ``@name`` and lists the names in its placeholder."""
        names = [f"@{name}" for name in sorted(self.named_filters())]
        box = self.query_one("#event-filter", Input)
        box.suggester = SuggestFromList(names, case_sensitive=True) if names else None
        if names:
            shown = " ".join(names)
            box.placeholder = NAMED_PLACEHOLDER.format(names=shown if len(shown) <= 60 else shown[:59] + "…")

    @property
    def event_list(self) -> EventList:
        return self.query_one(EventList)

    # ------------------------------------------------------------------ reading

    async def start(
        self,
        conn: Connection,
        topic: str,
        position: Position,
        *,
        until: Position | None = None,
        key: str | None = None,
    ) -> None:
        """Read ``topic`` from ``position`` and follow, with the current filter; with ``until``, read
        the window and stop (its ``scanned`` account in the title); with ``key``, only that key's
        events, from the partitions it can be in (:mod:`workbench.partitioning`). The filter that
        is applied carries to another topic (the title says so); text typed but refused does not,
        nor does its error."""
        if topic != self.topic:
            self.query_one("#event-filter", Input).value = self.filter_text or ""
            self._show_filter_error(None)
        self.conn, self.topic, self.position = conn, topic, position
        self.until, self.key = until, key
        await self._restart()

    def _compiled(self, text: str):
        return compile_filter(expand_named(text, self.named_filters()))

    async def _restart(self) -> None:
        await self.stop()
        assert self.conn is not None and self.topic is not None and self.position is not None
        match = self._compiled(self.filter_text).matches if self.filter_text else None
        self._outage = None
        self.buffer.clear()
        self.event_list.reset()
        partitions: list[int] | None = None
        self.search = self.report = None
        if self.key is not None or self.until is not None:
            info = await self.conn.describe_topic(self.topic)
            if self.key is not None:
                self.search = plan_key_search(self.key.encode(), max(len(info.partitions), 1))
                partitions = list(self.search.partitions)
                match = self.search.matches(match)
            if self.until is not None:
                explained = self.search.explain() if self.search else None
                self.report = ScanReport.plan(info, self.position, partitions, self.until, explained)
        self.pump = Pump(
            self.buffer,
            self.conn,
            self.topic,
            self.position,
            follow=self.until is None,
            match=match,
            partitions=partitions,
            until=self.until,
            report=self.report,
            notify=lambda: self.post_message(self.Updated()),
        ).start()
        self._refresh_labels()

    async def stop(self) -> None:
        if self.pump is not None:
            pump, self.pump = self.pump, None
            await pump.stop()

    async def close(self) -> None:
        """Stop reading and forget the events (another topic was chosen)."""
        await self.stop()
        self.topic = self.position = None
        self.buffer.clear()
        self.event_list.reset()
        self._refresh_labels()

    def on_stream_view_updated(self, message: Updated) -> None:
        # not stopped: the app updates the status line on the same message
        self.event_list.sync()
        self._refresh_labels()
        pump = self.pump
        if pump is not None and pump.outage is not self._outage:
            self._outage = pump.outage
            self.post_message(self.Outage(pump.outage, pump.topic))
        if pump is not None and pump.state == "failed" and pump.error is not None:
            error, pump.error = pump.error, None
            self.post_message(self.Failed(error, pump.topic))

    def on_event_list_moved(self, message: EventList.Moved) -> None:
        message.stop()
        self._refresh_labels()

    # ------------------------------------------------------------------ labels

    def state_text(self) -> str:
        pump = self.pump
        if pump is None:
            return "not reading"
        if pump.outage is not None:
            return "reconnecting (the read goes on where it was)"
        if pump.state == "paused":
            return f"paused ({pump.held} waiting)" if pump.held else "paused"
        return {
            "running": "following",
            "done": "end of the read",
            "failed": "stopped by an error",
            "stopped": "stopped",
            "idle": "starting",
        }[pump.state]

    def _refresh_labels(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        if self.topic is None:
            title.append("Select a topic, then e (events) or o (from a position).", "dim")
        else:
            title.append(codecs.safe_text(self.topic), "bold")
            title.append(f"  from {self.position}")
            if self.until is not None:
                title.append(f" until {'now' if self.until.kind == 'end' else self.until}")
            if self.report is not None and self.pump is not None and not self.pump.active:
                title.append("  ·  " + self.scan_summary())  # the end of the read, and what it covered
            else:
                title.append(f"  ·  {self.state_text()}")
            if self.search is not None:
                title.append("  ·  " + codecs.safe_text(self.search.explain()))
            redacted = masking.summary(self.conn)  # what is shown here is masked: say so where it is seen
            if redacted:
                title.append(f"  ·  {redacted}", "italic")
            if self.filter_text:
                title.append("  ·  filter: ")
                title.append(codecs.preview(self.filter_text.encode(), 60), "italic")
        self.query_one("#stream-title", Line).show(title)
        events = self.event_list
        self.query_one("#columns", Line).show(rows.header_row(events.scrollable_content_region.width))
        # Always one line, whatever it says: showing and hiding it would lay the screen out again
        # each time the user leaves or rejoins the bottom while events stream in.
        indicator = self.query_one("#new-indicator", Line)
        indicator.show(self._where_text(events))
        indicator.set_class(events.new_count > 0, "-new")  # colours only: no layout

    def _where_text(self, events: EventList) -> Text:
        new = events.new_count
        if new:
            return Text(f"▼ {new:,} new event{'s' if new != 1 else ''}  ·  G / end to follow", no_wrap=True)
        if self.topic is None or not len(self.buffer):
            return Text("", no_wrap=True)
        if events.following:
            return Text("▼ following the newest events  ·  up / g to browse", style="dim", no_wrap=True)
        return Text("▲ browsing  ·  G / end to follow", style="dim", no_wrap=True)

    def on_resize(self) -> None:
        self._refresh_labels()

    # ------------------------------------------------------------------ keys

    def action_toggle_pause(self) -> None:
        if self.pump is not None and self.pump.active:
            self.pump.toggle()
            self._refresh_labels()

    def scan_summary(self) -> str:
        """The bounded read's account in short: scanned, matched, and whether every window was read."""
        report = self.report
        if report is None:
            return ""
        verdict = "complete" if report.done else f"{report.stopped or 'stopped'}: not complete"
        return f"scanned {report.scanned:,} in {len(report.partitions)} of {report.partition_count} partitions, " + (
            f"{report.matched:,} matched, {verdict}"
        )

    def action_focus_filter(self) -> None:
        self._offer_named_filters()
        self.query_one("#event-filter", Input).focus()

    def action_focus_list(self) -> None:
        self.event_list.focus()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "event-filter":
            message.stop()
            self._show_filter_error(None)

    async def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id != "event-filter":
            return
        message.stop()
        text = message.value if message.value.strip() else None  # as typed: error columns match
        if text is not None:
            try:
                self._compiled(text)
            except FilterError as exc:
                self._show_filter_error(exc)
                return
        self.filter_text = text
        self._show_filter_error(None)
        if self.topic is not None:
            await self._restart()
        self.event_list.focus()

    def _show_filter_error(self, exc: FilterError | None) -> None:
        box = self.query_one("#filter-error", Static)
        field = self.query_one("#event-filter", Input)
        box.display = exc is not None
        field.set_class(exc is not None, "-invalid")
        if exc is not None:
            message = Text("✗ ", style="bold")
            message.append(codecs.safe_text(f"column {exc.column}: {exc.reason}"))
            message.append("  (the previous filter stays applied)", style="dim")
            box.update(message)
