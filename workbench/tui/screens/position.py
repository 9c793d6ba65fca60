"""The "read from a position" dialog: one line, parsed like the CLI's ``--from``, errors inline."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from workbench.broker import Position
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.positions import parse_position

EXAMPLES = "-200 (last 200 per partition) · beginning · end · 1200 (offset) · 2026-01-31T08:00:00Z"


class PositionDialog(ModalScreen[Position | None]):
    DEFAULT_CSS = """
    PositionDialog { align: center middle; }
    #position-dialog { width: 80; height: auto; padding: 1 2; border: thick $accent; background: $surface; }
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
            yield Static(id="position-error")
            yield Static(Text(EXAMPLES + "\nenter reads and follows · escape cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#position-error").display = False
        self.query_one(Input).focus()

    def on_input_changed(self) -> None:
        self.query_one("#position-error").display = False

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        try:
            position = parse_position(message.value)
        except UsageError as exc:
            error = self.query_one("#position-error", Static)
            text = Text("✗ " + codecs.safe_text(str(exc)), style="bold")
            if exc.hint:
                text.append("\n" + codecs.safe_text(exc.hint), style="")
            error.update(text)
            error.display = True
            return
        self.dismiss(position)

    def action_cancel(self) -> None:
        self.dismiss(None)
