"""The app's actions, their default keys, and the ``[keys]`` table of the profile file that changes them.

One table (:data:`ACTIONS`) feeds the app's bindings, the command palette and the help screen, so a
key configured in the file shows the same everywhere. :func:`keymap` validates the raw table
(``config.Config.keys``) and returns what Textual's ``App.set_keymap`` takes; every error names the
file and the field, because it is read at start-up, before anything is on screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Action:
    """An app-level action: its ``[keys]`` field (also the binding id), default key, footer label,
    and the sentence the palette and the help screen show."""

    name: str
    key: str
    label: str
    help: str
    show: bool = True  # in the footer


ACTIONS: tuple[Action, ...] = (
    Action("help", "question_mark", "Help", "Show every key"),
    Action("find_topic", "f", "Find topic", "Filter the topic list by typing"),
    Action("events", "e", "Events", "Events of the chosen topic: the last 200 per partition, then follow"),
    Action("events_from", "o", "From…", "Events of the chosen topic from a position (beginning, offset, time…)"),
    Action("lag", "l", "Lag", "Consumer lag of every group: verdicts, sparklines, drill-down"),
    Action("publish", "p", "Publish", "Publish events to a topic (templates, headers, N copies)"),
    Action("save_events", "s", "Save", "Save the events in the list (as filtered) to a JSONL file", show=False),
    Action("copy_value", "c", "Copy value", "Copy the selected event's value to the clipboard", show=False),
    Action("copy_envelope", "C", "Copy envelope", "Copy the selected event as a JSON envelope", show=False),
    Action("reload", "r", "Reload", "Reload the topic list (reconnects after an error)"),
    Action("switch_profile", "P", "Profile", "Switch to another profile of the profile file", show=False),
    Action(
        "sagas", "S", "Sagas", "Saga instances by state (failed, stuck…); compensate one after a dry run", show=False
    ),
    Action(
        "trace",
        "T",
        "Trace",
        "Every event carrying a correlation id (the selected event's), across topics, in time order",
        show=False,
    ),
    Action("toggle_theme", "t", "Theme", "Toggle the light and the dark theme", show=False),
    Action("quit", "q", "Quit", "Quit the workbench"),
)
BY_NAME: Mapping[str, Action] = {a.name: a for a in ACTIONS}

#: Keys the app or its views use for themselves: a ``[keys]`` entry may not take them.
RESERVED: Mapping[str, str] = {
    "ctrl+c": "quit",
    "ctrl+p": "the command palette",
    "tab": "moving the focus",
    "shift+tab": "moving the focus",
    "escape": "back/cancel",
    "enter": "open/apply",
    "space": "pause/resume",
    "slash": "the event filter",
    "up": "moving the cursor",
    "down": "moving the cursor",
    "pageup": "paging",
    "pagedown": "paging",
    "home": "top",
    "end": "bottom",
    "g": "top of the events",
    "G": "bottom of the events",
}

_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super")
_NAMED = frozenset(
    {
        "tab",
        "enter",
        "escape",
        "space",
        "backspace",
        "delete",
        "insert",
        "home",
        "end",
        "pageup",
        "pagedown",
        "up",
        "down",
        "left",
        "right",
        *(f"f{n}" for n in range(1, 25)),
    }
)
_NAME = re.compile(r"[a-z][a-z_]*\Z")


def normalize(key: str) -> str | None:
    """A key as the file writes it (``?``, ``L``, ``ctrl+k``, ``f5``) as Textual names it
    (``question_mark``, ``L``, ``ctrl+k``, ``f5``); None when it names no key."""
    *mods, base = key.split("+") if len(key) > 1 else [key]
    if any(m not in _MODIFIERS for m in mods) or not base:
        return None
    if len(base) == 1:
        if not base.isprintable() or base.isspace():
            return None
        if not base.isalnum():
            base = unicodedata.name(base, "").lower().replace("-", "_").replace(" ", "_")
            base = {
                "solidus": "slash",
                "hyphen_minus": "minus",
                "plus_sign": "plus",
                "reverse_solidus": "backslash",
                "commercial_at": "at",
                "low_line": "underscore",
            }.get(base, base)
            if not base:
                return None
    elif base not in _NAMED and not _NAME.match(base):
        return None
    return "+".join([*mods, base])


def display(key: str) -> str:
    """How a Textual key name is written for people: ``question_mark`` -> ``?``."""
    *mods, base = key.split("+")
    if len(base) > 1 and base not in _NAMED:
        try:
            base = unicodedata.lookup(base.replace("_", " ").upper())
        except KeyError:
            base = {"slash": "/", "minus": "-", "plus": "+", "backslash": "\\", "at": "@", "underscore": "_"}.get(
                base, base
            )
    return "+".join([*mods, base])


def keymap(raw: Mapping[str, Any], source: Path | str | None) -> dict[str, str]:
    """Validate a ``[keys]`` table (action = "key") against :data:`ACTIONS`; the overrides as
    ``{action: Textual key}``. Raises ConfigError naming the file and the field."""
    where = f"{source or 'profile file'}: [keys]"
    known = ", ".join(sorted(BY_NAME))
    chosen: dict[str, str] = {}
    for name, value in raw.items():
        field = f"{where} field {name!r}"
        if name not in BY_NAME:
            raise ConfigError(f"{field}: unknown action", hint=f"known actions: {known}")
        if not isinstance(value, str):
            raise ConfigError(f'{field}: must be a string (a key such as "p" or "ctrl+k"), got {type(value).__name__}')
        if not value.strip():
            raise ConfigError(f"{field}: empty key", hint=f"remove the line to keep {display(BY_NAME[name].key)!r}")
        key = normalize(value.strip())
        if key is None:
            raise ConfigError(
                f"{field}: {value!r} is not a key",
                hint='a character ("p", "L", "?"), a name ("f5", "delete") or modifiers with one ("ctrl+k", "alt+x")',
            )
        if key in RESERVED:
            raise ConfigError(f"{field}: {value!r} is reserved for {RESERVED[key]}", hint="choose another key")
        chosen[name] = key
    bound: dict[str, str] = {}
    for action in ACTIONS:
        key = chosen.get(action.name, action.key)
        if key in bound:
            other = bound[key]
            which = action.name if action.name in chosen else other
            raise ConfigError(
                f"{where} field {which!r}: key {display(key)!r} is bound twice ({other} and {action.name})",
                hint="give each action its own key (change or add the other one's line)",
            )
        bound[key] = action.name
    return chosen


def effective(overrides: Mapping[str, str]) -> dict[str, str]:
    """The key of every action: the default unless the file changed it."""
    return {a.name: overrides.get(a.name, a.key) for a in ACTIONS}
