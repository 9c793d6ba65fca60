"""Key names, and the ``[keys]`` table of the profile file that rebinds any key binding by its id.

The bindings themselves live with the screens, dialogs and widgets that own them (their BINDINGS,
each with an id such as ``lag.refresh``); :mod:`workbench.tui.bindings` collects them. This module
is the part that needs no Textual: how a key is written in the file and shown to people, and
:func:`keymap`, which validates the raw table (``config.Config.keys``) against the binding ids and
returns what Textual's ``App.set_keymap`` takes. Every error names the file and the field, because
it is read at start-up, before anything is on screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

#: Keys no binding of the workbench may take: Textual's own.
RESERVED: Mapping[str, str] = {
    "ctrl+p": "the command palette",
    "ctrl+q": "quitting (Textual's own key)",
    "tab": "moving the focus",
    "shift+tab": "moving the focus",
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


def _keys_of(value: Any, field: str, default: str) -> str:
    """One ``[keys]`` value as Textual key names (several keys: comma-separated)."""
    if not isinstance(value, str):
        raise ConfigError(f'{field}: must be a string (a key such as "p" or "ctrl+k"), got {type(value).__name__}')
    if not value.strip():
        raise ConfigError(f"{field}: empty key", hint=f"remove the line to keep {_shown(default)!r}")
    found: list[str] = []
    for part in value.split(",") if "," in value.strip()[1:] else [value]:  # "," alone: the comma key
        key = normalize(part.strip())
        if key is None:
            raise ConfigError(
                f"{field}: {part.strip()!r} is not a key",
                hint='a character ("p", "L", "?"), a name ("f5", "delete") or modifiers with one ("ctrl+k", "alt+x"); '
                'several keys: "k,up"',
            )
        if key in RESERVED:
            raise ConfigError(f"{field}: {part.strip()!r} is reserved for {RESERVED[key]}", hint="choose another key")
        found.append(key)
    return ",".join(dict.fromkeys(found))


def _flat(raw: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The table's fields by their full ids: ``lag.refresh = "f5"`` unquoted is a table in TOML."""
    found: list[tuple[str, Any]] = []
    for name, value in raw.items():
        if isinstance(value, Mapping):
            found += _flat(value, f"{prefix}{name}.")
        else:
            found.append((f"{prefix}{name}", value))
    return found


def _shown(keys: str) -> str:
    return ", ".join(display(k.strip()) for k in keys.split(","))


def keymap(
    raw: Mapping[str, Any],
    source: Path | str | None,
    defaults: Mapping[str, str],
    scopes: Sequence[Collection[str]],
) -> dict[str, str]:
    """Validate a ``[keys]`` table (binding id = "key"; ``"lag.refresh" = "f5"``, or unquoted, which TOML
    reads as a table): the overrides as ``{id: Textual keys}``.

    ``defaults``: every binding id and its default keys (comma-separated, as Textual writes them);
    ``scopes``: the ids whose bindings are in force at the same time (a screen, its widgets and the
    app's). A key changed here may not land on a key another binding of one of its scopes has.
    Raises ConfigError naming the file and the field."""
    where = f"{source or 'profile file'}: [keys]"
    chosen: dict[str, str] = {}
    for name, value in _flat(raw):
        field = f"{where} field {name!r}"
        if name not in defaults:
            raise ConfigError(
                f"{field}: no key binding has the id {name!r}",
                hint=f"the binding ids (the help screen, ?, shows each key's): {', '.join(sorted(defaults))}",
            )
        chosen[name] = _keys_of(value, field, defaults[name])
    bound = {name: {k.strip() for k in (chosen.get(name) or keys).split(",")} for name, keys in defaults.items()}
    for name in chosen:
        for scope in scopes:
            if name not in scope:
                continue
            for other in scope:
                shared = bound[name] & bound[other] if other != name else set()
                if shared:
                    first, second = sorted((name, other))
                    raise ConfigError(
                        f"{where} field {name!r}: key {display(min(shared))!r} is bound twice ({first} and {second})",
                        hint="give each binding its own key where both apply (change or add the other one's line)",
                    )
    return chosen
