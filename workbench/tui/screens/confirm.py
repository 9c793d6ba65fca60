"""A yes/no question before something that cannot be undone (e.g. publishing on a production profile)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmDialog(ModalScreen[bool]):
    """``y`` or enter confirms; ``n`` or escape declines. The question is plain Text (inert)."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    #confirm-dialog {
        width: 80; height: auto; max-height: 80%; padding: 1 2; border: thick $warning; background: $surface;
    }
    #confirm-question { margin: 1 0; }
    """
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", priority=True, id="confirm.yes", tooltip="yes (a confirmation)"),
        Binding("n,escape", "answer(False)", "No", priority=True, id="confirm.no", tooltip="no (a confirmation)"),
    ]

    def __init__(self, question: Text, *, title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self):
        with Vertical(id="confirm-dialog"):
            yield Static(Text(self.title_text, style="bold reverse"))
            yield Static(self.question, id="confirm-question")
            yield Static(Text("y / enter: yes  ·  n / escape: no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
