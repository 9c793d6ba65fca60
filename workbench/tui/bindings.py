"""Every key binding of the workbench and where it applies: what the help screen lists, what the
``[keys]`` table of the profile file may rebind, and which keys may not meet.

The bindings are the one source: the app, each screen, dialog and widget declares its own BINDINGS,
each with an id (``lag``, ``lag.refresh``). :func:`places` only says where each class's keys apply,
in the help screen's order; the screens are imported there, when the help opens or a ``[keys]``
table is checked (the app imports a screen when it is first opened, for a quick start).

Two bindings may share an id when one is the other shown in one more place (the main screen's ``?``,
the detail screen's copy and trace keys): then they have the same keys and one ``[keys]`` line
moves both (Textual's keymap rebinds by id).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from workbench.tui import keys

#: One help line: the keys as people write them, what they do, the binding ids ("" for Textual's own).
Row = tuple[str, str, str]
Section = tuple[str, tuple[Row, ...]]


@dataclass(frozen=True, slots=True)
class Place:
    """Where keys apply: ``owners``' bindings are listed under ``title``; ``under``: the classes whose
    bindings are in force there too (the app, the main screen). ``separate``: the owners are
    dialogs of their own, never open together."""

    title: str
    owners: tuple[type[DOMNode], ...]
    under: tuple[type[DOMNode], ...] = ()
    separate: bool = False


def places(app: type[DOMNode]) -> tuple[Place, ...]:
    """Where the keys of ``app`` (the app's class: this module does not import the app) and of its
    screens, dialogs and widgets apply."""
    from workbench.tui.screens.confirm import ConfirmDialog
    from workbench.tui.screens.detail import DetailScreen
    from workbench.tui.screens.dlq import DeadLetterScreen
    from workbench.tui.screens.help import HelpScreen
    from workbench.tui.screens.lag import LagScreen
    from workbench.tui.screens.main import MainScreen
    from workbench.tui.screens.position import PositionDialog
    from workbench.tui.screens.profiles import ProfilePicker
    from workbench.tui.screens.publish import PublishDialog
    from workbench.tui.screens.sagas import CompensateDialog, SagaScreen
    from workbench.tui.screens.save import SaveDialog
    from workbench.tui.screens.trace import TraceScreen
    from workbench.tui.widgets.event_list import EventList
    from workbench.tui.widgets.group_table import GroupTable
    from workbench.tui.widgets.stream_view import StreamView
    from workbench.tui.widgets.topic_list import TopicList

    main = (app, MainScreen)
    dialogs = (ConfirmDialog, PositionDialog, SaveDialog, ProfilePicker, CompensateDialog, HelpScreen)
    return (
        Place("Everywhere", (app,)),
        Place("Main screen", (MainScreen,), (app,)),
        Place("Topic list", (TopicList,), main),
        Place("Events", (StreamView, EventList), main),
        Place("Event detail", (DetailScreen,), (app,)),
        Place("Lag view", (LagScreen, GroupTable), (app,)),
        Place("Saga view", (SagaScreen,), (app,)),
        Place("Trace view", (TraceScreen,), (app,)),
        Place("Dead-letter view", (DeadLetterScreen,), (app,)),
        Place("Publish dialog", (PublishDialog,)),
        Place("Dialogs", dialogs, separate=True),
    )


def own(owner: type[DOMNode]) -> list[Binding]:
    """The bindings ``owner`` declares itself (not those it inherits from Textual's classes)."""
    return [b if isinstance(b, Binding) else Binding(*b) for b in vars(owner).get("BINDINGS", ())]


def every(chosen: Sequence[Place]) -> Iterator[tuple[Place, type[DOMNode], Binding]]:
    seen: set[type[DOMNode]] = set()
    for place in chosen:
        for owner in place.owners:
            if owner not in seen:
                seen.add(owner)
                for binding in own(owner):
                    yield place, owner, binding


def defaults(chosen: Sequence[Place]) -> dict[str, str]:
    """Every binding id and its default keys."""
    found: dict[str, str] = {}
    for _, owner, binding in every(chosen):
        if not binding.id:
            raise ValueError(f"{owner.__name__}: the binding of {binding.key!r} has no id")
        if found.setdefault(binding.id, binding.key) != binding.key:
            raise ValueError(f"{owner.__name__}: the binding {binding.id!r} has other keys than its namesake")
    return found


def scopes(chosen: Sequence[Place]) -> list[list[str]]:
    """The ids whose bindings are in force at the same time. The app's priority bindings (ctrl+c)
    are in force in dialogs too."""
    everywhere = [b.id for p in chosen[:1] for o in p.owners for b in own(o) if b.priority and b.id]
    found: list[list[str]] = []
    for place in chosen:
        groups = [(o,) for o in place.owners] if place.separate else [place.owners]
        for group in groups:
            ids = [b.id for owner in (*place.under, *group) for b in own(owner) if b.id]
            found.append(list(dict.fromkeys([*everywhere, *ids])))
    return found


def keymap(raw: Mapping[str, Any], source: Path | str | None, app: type[DOMNode]) -> dict[str, str]:
    """The ``[keys]`` table checked against every binding of ``app`` and its screens (keys.keymap):
    the overrides for ``App.set_keymap``; {} when there is none (no screen imported then)."""
    if not raw:
        return {}
    chosen = places(app)
    return keys.keymap(raw, source, defaults(chosen), scopes(chosen))


def key_of(binding: Binding, overrides: Mapping[str, str]) -> str:
    """The keys of ``binding`` in force (``overrides``: the checked ``[keys]`` table), as people write them."""
    key = overrides.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(keys.display(k.strip()) for k in key.split(","))


def _what(binding: Binding) -> str:
    return binding.tooltip or binding.description[:1].lower() + binding.description[1:]


def rows(owners: Sequence[type[DOMNode]], overrides: Mapping[str, str], skip: set[str] | None = None) -> list[Row]:
    """One row per thing the bindings of ``owners`` do (bindings saying the same are one row);
    ids in ``skip`` (listed already) are left out."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for owner in owners:
        for binding in own(owner):
            if skip is not None and binding.id in skip:
                continue
            shown, ids = found.setdefault(_what(binding), ([], []))
            for item, into in ((key_of(binding, overrides), shown), (binding.id or "", ids)):
                if item and item not in into:
                    into.append(item)
    return [(", ".join(shown), what, ", ".join(ids)) for what, (shown, ids) in found.items()]


def help_sections(app: type[DOMNode], overrides: Mapping[str, str], palette_key: str) -> tuple[Section, ...]:
    """What the help screen lists: every place's bindings, with the keys in force; a binding shown
    in one more place (the same id) is listed once, where it first applies. Textual's own keys
    (the command palette, moving the focus) come with the app's."""
    listed: set[str] = set()
    found: list[Section] = []
    for index, place in enumerate(places(app)):
        lines = rows(place.owners, overrides, listed)
        if index == 0:
            focus = " / ".join(key_of(b, {}) for b in Screen.BINDINGS if isinstance(b, Binding) and "focus" in b.action)
            lines += [
                (keys.display(palette_key), "command palette: every action by name", ""),
                (focus, "move between the topic list, filters and views", ""),
            ]
        listed |= {b.id for owner in place.owners for b in own(owner) if b.id}
        if lines:
            found.append((place.title, tuple(lines)))
    return tuple(found)
