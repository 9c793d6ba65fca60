"""The help screen: every key, by where it applies, with the keys the profile file configured.

Built from the bindings themselves (the app's actions from keys.ACTIONS, each view's from its
BINDINGS, said by their tooltips), so what it lists is what the keys do."""

from __future__ import annotations

from collections.abc import Mapping

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.tui import keys

Section = tuple[str, tuple[tuple[str, str], ...]]


def _views() -> tuple[tuple[str, tuple[type[DOMNode], ...]], ...]:
    """Where the views' own keys apply, and the widgets and screens whose bindings they are
    (imported when the help opens: the app imports screens when first opened)."""
    from workbench.tui.screens.confirm import ConfirmDialog
    from workbench.tui.screens.detail import DetailScreen
    from workbench.tui.screens.lag import LagScreen
    from workbench.tui.screens.position import PositionDialog
    from workbench.tui.screens.profiles import ProfilePicker
    from workbench.tui.screens.publish import PublishDialog
    from workbench.tui.screens.sagas import SagaScreen
    from workbench.tui.screens.save import SaveDialog
    from workbench.tui.widgets.event_list import EventList
    from workbench.tui.widgets.stream_view import StreamView
    from workbench.tui.widgets.topic_list import TopicList

    return (
        ("Topic list", (TopicList,)),
        ("Events", (StreamView, EventList)),
        ("Event detail", (DetailScreen,)),
        ("Lag view", (LagScreen,)),
        ("Saga view", (SagaScreen,)),
        ("Publish dialog", (PublishDialog,)),
        ("Dialogs", (ConfirmDialog, PositionDialog, SaveDialog, ProfilePicker)),
    )


def _key(binding: Binding, bound: Mapping[str, str]) -> str:
    """The binding's keys as people write them; a key the profile file changed (by the binding's id)."""
    key = bound.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(keys.display(k.strip()) for k in key.split(","))


def binding_rows(
    owners: tuple[type[DOMNode], ...], bound: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """One row per thing the bindings of ``owners`` do: bindings saying the same are one row."""
    rows: dict[str, list[str]] = {}
    for owner in owners:
        for item in owner.BINDINGS:
            binding = item if isinstance(item, Binding) else Binding(*item)
            what = binding.tooltip or binding.description[:1].lower() + binding.description[1:]
            shown = _key(binding, bound or {})
            if shown not in rows.setdefault(what, []):
                rows[what].append(shown)
    return tuple((", ".join(found), what) for what, found in rows.items())


def sections(bound: Mapping[str, str]) -> tuple[Section, ...]:
    """Everything the help screen lists; ``bound``: action -> key in force (keys.effective)."""
    everywhere = tuple((keys.display(bound[a.name]), a.help[:1].lower() + a.help[1:]) for a in keys.ACTIONS)
    extra = (
        ("ctrl+p", "command palette: every action by name"),
        ("ctrl+c", "quit"),
        ("tab / shift+tab", "move between the topic list, filters and views"),
    )
    views = tuple((title, binding_rows(owners, bound)) for title, owners in _views())
    return (("Everywhere (change them in [keys] of the profile file)", everywhere + extra), *views)


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
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 90; height: 80%; padding: 1 2; border: thick $accent; background: $surface; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close", id="help.close")]

    def __init__(self, bound: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.bound = dict(bound or keys.effective({}))

    def compose(self):
        with VerticalScroll(id="help"):
            yield Static(Text("Event Workbench — keys", style="bold"))
            yield Static(keys_table(self.bound))
