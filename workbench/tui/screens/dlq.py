"""The dead-letter view: the topic's dead letters grouped by cause, as `workbench dlq summary` shows them.

Opened from the topic view (``d``). The grouping is workbench.triage.dlq, the same as the CLI's,
run in a worker over the whole topic; ``r`` reads it again. Sending dead letters home is left to
`workbench replay TOPIC --to-origin`, whose dry run the status line names.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench.broker import Connection, Position
from workbench.events.envelope import format_timestamp
from workbench.events.text import safe
from workbench.triage.dlq import Summary, read_dead_letters


def _text(value: object, style: str = "") -> Text:
    return safe(value, style, limit=200)


def _time(ms: int | None) -> Text:
    return _text("-" if ms is None else format_timestamp(ms), "dim")


class DeadLetterScreen(Screen[None]):
    """One row per cause: count, convention, cause, origin, first and last time, an example."""

    DEFAULT_CSS = """
    #dlq { padding: 0 1; height: 1fr; }
    #dlq-status { height: auto; margin: 0 0 1 0; }
    #dlq-causes { height: auto; max-height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="dlq.back"),
        Binding("r", "refresh", "Refresh", id="dlq.refresh", tooltip="read the dead letters again"),
    ]

    def __init__(self, connection: Callable[[], Connection | None], topic: str) -> None:
        """``connection``: the app's current connection (None while it reconnects)."""
        super().__init__()
        self.connection = connection
        self.topic = topic
        self.summary: Summary | None = None
        self.reads = 0  # completed reads (tests wait for it)

    def compose(self):
        yield Header()
        with Vertical(id="dlq"):
            yield Static(id="dlq-status")
            yield DataTable(id="dlq-causes", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#dlq-causes", DataTable)
        table.add_columns("COUNT", "CONVENTION", "CAUSE", "ORIGIN", "FIRST", "LAST", "EXAMPLE", "MESSAGE")
        table.focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        conn = self.connection()
        if conn is None:
            self._status(Text("Not connected: press r on the main screen to reconnect.", style="red"))
            return
        self._status(_text(f"Reading the dead letters of {self.topic}…", "italic"))
        self.read(conn)

    @work(exclusive=True, group="dlq")
    async def read(self, conn: Connection) -> None:
        summary = Summary(self.topic)
        try:
            async for batch in read_dead_letters(conn, self.topic, Position.beginning()):
                summary.add(batch)
        except Exception as exc:  # noqa: BLE001 - shown on the screen, the app goes on
            self._status(_text(f"Could not read {self.topic}: {type(exc).__name__}: {exc}", "red"))
            self.reads += 1
            return
        self.show(summary)
        self.reads += 1

    def show(self, summary: Summary) -> None:
        self.summary = summary
        table = self.query_one("#dlq-causes", DataTable)
        table.clear()
        for cause in summary.ranked():
            table.add_row(
                _text(f"{cause.count:,}", "bold"),
                _text(cause.convention, "magenta"),
                _text(cause.cause, "red"),
                _text(cause.origin or "-", "cyan"),
                _time(cause.first),
                _time(cause.last),
                _text(cause.example, "green"),
                _text(cause.message or "-"),
            )
        status = Text()
        if summary.dead_letters:
            status.append(f"{summary.dead_letters:,} dead letter(s), {len(summary.causes)} cause(s)", style="bold")
            status.append_text(_text(f" in {self.topic}"))
            status.append_text(_text(f" · send them home: workbench replay {self.topic} --to-origin", "dim"))
        else:
            status.append_text(_text(f"No dead letters in {self.topic} ({summary.scanned:,} event(s) read).", "dim"))
        if summary.other:
            status.append(f"\n{summary.other:,} event(s) without dead-letter headers", style="yellow")
        self._status(status)

    def _status(self, text: Text) -> None:
        self.query_one("#dlq-status", Static).update(text)
