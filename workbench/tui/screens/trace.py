"""The trace view: type a correlation id (or start from the selected event's) and see its hops.

The scan is workbench.trace.scan, the same as `workbench trace`, run in a worker: the screen
stays responsive and a new search cancels the one before. Enter on a hop opens its detail.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from workbench.broker import Connection
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.events.correlation import DEFAULT_RULES, CorrelationRules
from workbench.events.envelope import format_timestamp
from workbench.events.text import safe
from workbench.positions import DEFAULT_SINCE, parse_since
from workbench.triage.trace import Trace, format_gap, scan
from workbench.tui.screens.detail import DetailScreen


def _text(value: object, style: str = "") -> Text:
    return safe(value, style, limit=200)


class TraceScreen(Screen[None]):
    """The inputs at the top, the status under them, the hops right below (not at the bottom)."""

    DEFAULT_CSS = """
    #trace { padding: 0 1; height: 1fr; }
    #trace-inputs { height: auto; }
    #trace-id { width: 2fr; }
    #trace-since { width: 1fr; }
    #trace-status { height: auto; margin: 0 0 1 0; }
    #trace-hops { height: auto; max-height: 1fr; }
    #trace-skipped { height: auto; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="trace.back")]

    def __init__(
        self,
        connection: Callable[[], Connection | None],
        *,
        correlation_id: str | None = None,
        rules: CorrelationRules = DEFAULT_RULES,
        profile: str = "",
        since: str = DEFAULT_SINCE,
    ) -> None:
        """``connection``: the app's current connection (None while it reconnects)."""
        super().__init__()
        self.connection = connection
        self.initial = correlation_id or ""
        self.rules = rules
        self.profile = profile
        self.since = since
        self.result: Trace | None = None
        self.searches = 0  # completed searches (tests wait for it)
        self.scanned = 0  # events read by the running search
        self.total: int | None = None  # events in the topics at its start (the ends are known then)
        self._searching: Text | None = None
        self.from_beginning = True

    def compose(self):
        yield Header()
        with Vertical(id="trace"):
            with Horizontal(id="trace-inputs"):
                yield Input(self.initial, placeholder="correlation id", id="trace-id")
                yield Input(self.since, placeholder="since: 24h, 15m, 7d, beginning, ISO time", id="trace-since")
            yield Static(id="trace-status")
            yield DataTable(id="trace-hops", cursor_type="row", zebra_stripes=True)
            yield Static(id="trace-skipped")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.25, self._progress, name="trace progress")
        table = self.query_one("#trace-hops", DataTable)
        table.add_columns("TIME", "GAP", "TOPIC", "P/OFFSET", "TYPE", "SOURCE", "KEY")
        if self.initial:
            self.search()
            table.focus()
        else:
            self.query_one("#trace-id", Input).focus()
            self._status(Text("Type a correlation id and press enter.", style="dim"))

    @on(Input.Submitted)
    def search(self) -> None:
        wanted = self.query_one("#trace-id", Input).value.strip()
        since = self.query_one("#trace-since", Input).value.strip() or DEFAULT_SINCE
        if not wanted:
            self._status(Text("Type a correlation id first.", style="yellow"))
            return
        try:
            start = parse_since(since)
        except UsageError as exc:
            self._status(Text(codecs.safe_text(str(exc)), style="red"))
            return
        conn = self.connection()
        if conn is None:
            self._status(Text("Not connected: press r on the main screen to reconnect.", style="red"))
            return
        self._searching = _text(f"Searching {wanted} since {start}…", "italic")
        self.scanned, self.total = 0, None
        self._status(self._searching)
        self.run_search(conn, wanted, start)

    def _progress(self) -> None:
        """Events scanned of the total, while a search runs (the topics' ends are known at start)."""
        if self._searching is None:
            return
        text = self._searching.copy()
        if self.total is not None:
            share = f" ({min(self.scanned / self.total, 1):.0%})" if self.total else ""
            bound = "" if self.from_beginning else "at most "
            text.append(f"  {self.scanned:,} of {bound}{self.total:,} events scanned{share}", style="")
        self._status(text)

    @work(exclusive=True, group="trace")
    async def run_search(self, conn: Connection, wanted: str, start) -> None:
        self.from_beginning = start.kind == "beginning"

        def scanned(n: int) -> None:
            self.scanned += n

        try:
            infos = await conn.list_topics()
            self.total = sum(t.count for t in infos if not t.internal)
            self._progress()
            result = await scan(conn, wanted, start, profile=self.profile, rules=self.rules, on_scanned=scanned)
        except Exception as exc:  # noqa: BLE001 - shown on the screen, the app goes on
            self._searching = None
            self._status(_text(f"Trace failed: {type(exc).__name__}: {exc}", "red"))
            self.searches += 1
            return
        self._searching = None
        self.show(result)
        self.searches += 1

    def show(self, result: Trace) -> None:
        self.result = result
        table = self.query_one("#trace-hops", DataTable)
        table.clear()
        for hop in result.hops:
            e = hop.event
            table.add_row(
                _text(format_timestamp(e.timestamp) or "-", "dim"),
                _text(format_gap(hop.gap_ms), "cyan"),
                _text(e.topic),
                _text(f"{e.partition}/{e.offset}", "cyan"),
                _text(hop.type or "-", "magenta"),
                _text(hop.source or "-"),
                _text("-" if e.key is None else codecs.preview(e.key, 30), "green"),
            )
        summary = Text(f"{len(result.hops)} event(s)", style="bold")
        summary.append_text(_text(f" carry {result.correlation_id}"))
        summary.append(f" · {result.scanned:,} scanned in {result.topics} topic(s)", style="dim")
        self._status(summary)
        skipped = Text()
        for s in result.skipped:
            skipped.append_text(_text(f"skipped {s.topic}: {s.reason}\n", "yellow"))
        self.query_one("#trace-skipped", Static).update(skipped)

    @on(DataTable.RowSelected, "#trace-hops")
    def open_hop(self, message: DataTable.RowSelected) -> None:
        if self.result is not None and 0 <= message.cursor_row < len(self.result.hops):
            self.app.push_screen(DetailScreen(self.result.hops[message.cursor_row].event))

    def _status(self, text: Text) -> None:
        self.query_one("#trace-status", Static).update(text)
