"""The help screen: every key, by where it applies, with the keys the profile file configured."""

from __future__ import annotations

from collections.abc import Mapping

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.tui import keys

Section = tuple[str, tuple[tuple[str, str], ...]]

#: Keys of the views and dialogs (fixed); the app's own actions come from keys.ACTIONS.
VIEW_KEYS: tuple[Section, ...] = (
    ("Topic list", (
        ("type", "filter the topics (in the box above the list)"),
        ("up/down, enter", "choose a topic: its partitions and groups"),
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
        ("r", "refresh now (it also refreshes by itself; the interval is in the title)"),
        ("s", "sort by lag or by name"),
        ("escape", "back"),
    )),
    ("Publish dialog", (
        ("tab / shift+tab", "topic, key, copies, template, headers, value, buttons"),
        ("ctrl+t", "next template (empty JSON object, CloudEvent with a fresh id and time)"),
        ("ctrl+s", "publish (a confirmation first on a production profile)"),
        ("escape", "close"),
    )),
    ("Dialogs", (
        ("enter / escape", "accept / cancel"),
        ("y / n", "answer a confirmation"),
    )),
)


def sections(bound: Mapping[str, str]) -> tuple[Section, ...]:
    """Everything the help screen lists; ``bound``: action -> key in force (keys.effective)."""
    everywhere = tuple((keys.display(bound[a.name]), a.help[:1].lower() + a.help[1:]) for a in keys.ACTIONS)
    extra = (("ctrl+p", "command palette: every action by name"), ("ctrl+c", "quit"),
             ("tab / shift+tab", "move between the topic list, filters and views"))
    return (("Everywhere (change them in [keys] of the profile file)", everywhere + extra), *VIEW_KEYS)


def keys_table(bound: Mapping[str, str] | None = None) -> Group:
    """Each section's heading on a line of its own, so the key column is as wide as the widest
    key (not as the longest heading); the same width in every section, so they line up."""
    chosen = sections(bound or keys.effective({}))
    width = max(cell_len(key) for _, rows in chosen for key, _ in rows)
    parts: list[RenderableType] = []
    for section, rows in chosen:
        parts.append(Text(section, style="bold underline"))
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column()
        for key, what in rows:
            table.add_row(Text(key), Text(what))
        parts += [table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, bound: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.bound = dict(bound or keys.effective({}))

    def compose(self):
        with VerticalScroll(id="help"):
            yield Static(Text("Event Workbench — keys", style="bold"))
            yield Static(keys_table(self.bound))
