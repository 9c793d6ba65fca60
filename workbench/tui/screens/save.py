"""Save events to a JSONL file: one envelope per line (workbench/envelope.py), as `tail -o jsonl` writes
them, so the file can be published again with `workbench publish TOPIC --file FILE`. Events redacted
by the [mask] rules are saved as shown, with their marker header: publish refuses such a file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from workbench.broker import Event
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.events.envelope import dumps_event


def write_jsonl(path: Path, events: Sequence[Event]) -> int:
    """Write ``events`` to a new file at ``path`` (never over an existing one); how many were written."""
    if path.exists():
        raise UsageError(f"{path} already exists", hint="choose another name (nothing is overwritten)")
    if not path.parent.is_dir():
        raise UsageError(f"directory {str(path.parent)!r} does not exist", hint="create it, or choose another path")
    try:
        with path.open("x", encoding="utf-8", newline="\n") as out:
            for event in events:
                out.write(dumps_event(event) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return len(events)


class SaveDialog(ModalScreen[Path | None]):
    """Asks for the file name; the app writes the file (in a thread) once the name is accepted."""

    DEFAULT_CSS = """
    SaveDialog { align: center middle; }
    #save-dialog {
        width: 80; height: auto; max-height: 80%; padding: 1 2; border: thick $accent; background: $surface;
    }
    #save-error { height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="save.cancel", tooltip="cancel a dialog")]

    def __init__(self, count: int, default: str, what: str, redacted: str | None = None) -> None:
        """``redacted``: how the events are redacted (masking.summary), None when they are not."""
        super().__init__()
        self.count = count
        self.default = default
        self.what = what
        self.redacted = redacted

    def compose(self):
        with Vertical(id="save-dialog"):
            title = Text(f"Save {self.count:,} event{'s' * (self.count != 1)} ", style="bold")
            title.append(codecs.safe_text(self.what), style="bold")
            title.append(" to a JSONL file", style="bold")
            yield Static(title)
            yield Input(self.default, placeholder="file name", id="save-path")
            yield Static(id="save-error")
            if self.redacted:  # a redacted copy: the file says so (its marker header), publish refuses it
                about = f"one envelope per line, {self.redacted} (publish --file refuses a redacted copy)"
            else:
                about = "one envelope per line (workbench publish --file reads it back)"
            yield Static(Text(f"{about}\nenter saves · escape cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#save-error").display = False
        self.query_one(Input).focus()

    def on_input_changed(self) -> None:
        self.query_one("#save-error").display = False

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        text = message.value.strip()
        error = self.query_one("#save-error", Static)
        path = Path(os.path.expanduser(text)) if text else None
        problem = None
        if path is None:
            problem = "type a file name"
        elif path.exists():
            problem = f"{text} already exists: choose another name (nothing is overwritten)"
        elif not path.parent.is_dir():
            problem = f"directory {str(path.parent)!r} does not exist"
        if problem:
            error.update(Text("✗ " + codecs.safe_text(problem), style="bold red"))
            error.display = True
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
