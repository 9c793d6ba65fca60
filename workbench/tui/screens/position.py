"""The "read from a position" dialog: where to start, optionally where to end and which key,
parsed like the CLI's ``--from``, ``--until`` and ``--key``; errors inline."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from workbench.broker import Position
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.positions import check_window, parse_position, parse_until

EXAMPLES = "-200 (last 200 per partition) · beginning · end · 1200 (offset) · 2026-01-31T08:00:00Z"
UNTIL_PLACEHOLDER = "until (optional): now · an offset · a time: reads the window, then stops"
KEY_PLACEHOLDER = "key (optional): reads only the partitions the key can be in"


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """What the dialog asks for: a start, and for a bounded window an end; a key to search for."""

    start: Position
    until: Position | None = None
    key: str | None = None

    def __str__(self) -> str:
        return str(self.start)


class PositionDialog(ModalScreen[ReadWindow | None]):
    DEFAULT_CSS = """
    PositionDialog { align: center middle; }
    #position-dialog { width: 84; height: auto; padding: 1 2; border: thick $accent; background: $surface; }
    #position-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="position.cancel", tooltip="cancel a dialog")]

    def __init__(self, topic: str, initial: str = "-200") -> None:
        super().__init__()
        self.topic = topic
        self.initial = initial

    def compose(self):
        with Vertical(id="position-dialog"):
            title = Text("Read ", style="bold")
            title.append(codecs.safe_text(self.topic), "bold")
            title.append(" from…", "bold")
            yield Static(title)
            yield Input(value=self.initial, placeholder="a position", id="position-input")
            yield Input(placeholder=UNTIL_PLACEHOLDER, id="until-input")
            yield Input(placeholder=KEY_PLACEHOLDER, id="key-input")
            yield Static(id="position-error")
            yield Static(
                Text(
                    EXAMPLES + "\nenter reads (and follows, without an end) · tab to the next field · escape cancels",
                    style="dim",
                )
            )

    def on_mount(self) -> None:
        self.query_one("#position-error").display = False
        self.query_one("#position-input", Input).focus()

    def on_input_changed(self) -> None:
        self.query_one("#position-error").display = False

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        try:
            window = self.window()
        except UsageError as exc:
            error = self.query_one("#position-error", Static)
            text = Text("✗ " + codecs.safe_text(str(exc)), style="bold")
            if exc.hint:
                text.append("\n" + codecs.safe_text(exc.hint), style="")
            error.update(text)
            error.display = True
            return
        self.dismiss(window)

    def window(self) -> ReadWindow:
        """The three fields, parsed; UsageError for the first that is wrong."""
        start = parse_position(self.query_one("#position-input", Input).value)
        until_text = self.query_one("#until-input", Input).value.strip()
        until = parse_until(until_text) if until_text else None
        if until is not None:
            check_window(start, until)
        key = self.query_one("#key-input", Input).value
        return ReadWindow(start, until, key or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
