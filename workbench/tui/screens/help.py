"""The help screen: every key, by where it applies, with the keys in force and the ids that the
``[keys]`` table of the profile file rebinds them by.

It renders what :func:`workbench.tui.bindings.help_sections` reads from the bindings themselves
(the app's, each screen's, dialog's and widget's BINDINGS), so what it lists is what the keys do."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: (heading, rows of (keys, what they do, binding ids)), as bindings.help_sections makes them.
Sections = Sequence[tuple[str, Sequence[tuple[str, str, str]]]]


def keys_table(sections: Sections) -> Group:
    """Each section's heading on a line of its own, so the key column is as wide as the widest
    key (not as the longest heading); the same width in every section, so they line up."""
    width = max(cell_len(key) for _, rows in sections for key, _, _ in rows)
    ids = max(cell_len(name) for _, rows in sections for _, _, names in rows for name in names.split(", "))
    parts: list[RenderableType] = [Text("The last column: the id to change a key by in [keys] of the profile file.")]
    parts.append(Text(""))
    for section, rows in sections:
        parts.append(Text(section, style="bold underline"))
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column(ratio=1)
        table.add_column(style="dim", no_wrap=True, width=ids)
        for key, what, name in rows:
            table.add_row(Text(key), Text(what), Text("\n".join(name.split(", "))))
        parts += [table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 120; max-width: 96%; height: 80%; padding: 1 2; border: thick $accent; background: $surface; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close", id="help.close", tooltip="close the help")]

    def __init__(self, sections: Sections) -> None:
        super().__init__()
        self.sections = sections

    def compose(self):
        with VerticalScroll(id="help"):
            yield Static(Text("Event Workbench — keys", style="bold"))
            yield Static(keys_table(self.sections))
