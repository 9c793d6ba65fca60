"""The help screen: every key, by where it applies."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Everywhere", (
        ("?", "this help"),
        ("q, ctrl+c", "quit"),
        ("l", "consumer lag view"),
        ("r", "reload the topic list (and reconnect after an error)"),
        ("tab / shift+tab", "move between the topic list, filters and views"),
        ("ctrl+p", "command palette"),
    )),
    ("Topic list", (
        ("type", "filter the topics (in the box above the list)"),
        ("up/down, enter", "choose a topic: its partitions and groups"),
        ("e", "events of the topic: the last 200 per partition, then follow"),
        ("o", "events from a position: beginning, end, an offset, -N, a time"),
    )),
    ("Events", (
        ("space", "pause / resume reading"),
        ("/", "filter (same expressions as `workbench tail --filter`); enter applies"),
        ("up/down, pgup/pgdn", "move the cursor (stops following)"),
        ("g, home / G, end", "top / bottom (bottom follows new events again)"),
        ("enter", "details of the event: value, headers, metadata"),
        ("escape", "back to the list from the filter box"),
    )),
    ("Lag view", (
        ("up/down", "choose a group: its partitions below"),
        ("r", "refresh now (it also refreshes by itself)"),
        ("s", "sort by lag or by name"),
        ("escape", "back"),
    )),
)


def keys_table() -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for section, keys in KEYS:
        table.add_row(Text(section, style="bold underline"), Text(""))
        for key, what in keys:
            table.add_row(Text(key), Text(what))
        table.add_row(Text(""), Text(""))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def compose(self):
        with VerticalScroll(id="help"):
            yield Static(Text("Event Workbench — keys", style="bold"))
            yield Static(keys_table())
