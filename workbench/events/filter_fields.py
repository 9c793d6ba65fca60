"""What the names of a ``--filter`` expression stand for in one event, and data-only member access.

Each name is computed on first use (the value is decoded only when the expression needs it), and
``a.b``/``a[b]`` only ever look up JSON data: a missing member is None, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.broker import Event
from workbench.events.codecs import Decoded, cloudevent_attributes, decoded_value
from workbench.events.correlation import DEFAULT_RULES
from workbench.events.envelope import format_timestamp

__all__ = ["GETTERS", "NAMES", "NEEDS_VALUE", "Scope", "member"]

#: The names a filter can use (constants included).
NAMES = (
    "key",
    "value",
    "raw",
    "headers",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "time",
    "type",
    "correlation_id",
    "true",
    "false",
    "null",
)
#: The names whose evaluation decodes the value.
NEEDS_VALUE = frozenset({"value", "type", "correlation_id"})


class Scope:
    """The names of one event, computed on first use (JSON is decoded only if needed)."""

    __slots__ = ("_cache", "_decoded", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._cache: dict[str, Any] = {}
        self._decoded: Decoded | None = None

    def decoded(self) -> Decoded:
        if self._decoded is None:
            self._decoded = decoded_value(self.event)
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        result = GETTERS[name](self)
        self._cache[name] = result
        return result


def _get_value(scope: Scope) -> Any:
    decoded = scope.decoded()
    return decoded.value if decoded.kind in ("json", "text") else None


def _get_headers(scope: Scope) -> dict[str, str]:
    return {name: bytes(value).decode("utf-8", "replace") for name, value in scope.event.headers}


def _get_type(scope: Scope) -> str | None:
    decoded = scope.decoded()
    payload = decoded.value if decoded.kind == "json" else None
    return cloudevent_attributes(scope.event.headers, payload).get("type")


def _get_time(scope: Scope) -> str | None:
    formatted = format_timestamp(scope.event.timestamp)
    return formatted if isinstance(formatted, str) else None


def _get_key(scope: Scope) -> Any:
    """The key as text, or what its schema decoded."""
    found = scope.event.metadata.get("decoded_key") if scope.event.metadata else None
    if found is not None and found.kind == "json":
        return found.value
    return _text(scope.event.key)


def _text(data: bytes | None) -> str | None:
    return None if data is None else bytes(data).decode("utf-8", "replace")


GETTERS: dict[str, Callable[[Scope], Any]] = {
    "key": _get_key,
    "value": _get_value,
    "raw": lambda s: _text(s.event.value),
    "headers": _get_headers,
    "topic": lambda s: s.event.topic,
    "partition": lambda s: s.event.partition,
    "offset": lambda s: s.event.offset,
    "timestamp": lambda s: s.event.timestamp,
    "time": _get_time,
    "type": _get_type,
    "correlation_id": lambda s: DEFAULT_RULES.correlation_id(s.event, s.decoded()),
    "true": lambda s: True,
    "false": lambda s: False,
    "null": lambda s: None,
}
assert set(GETTERS) == set(NAMES)


def member(container: Any, key: Any) -> Any:
    """``container[key]``, or None when it is missing or the container is not a container."""
    if type(container) is dict:
        try:
            return container.get(key)
        except TypeError:  # unhashable key
            return None
    if isinstance(container, (list, str, tuple)):
        if isinstance(key, bool) or not isinstance(key, (int, slice)):
            return None
        try:
            return container[key]
        except (IndexError, ValueError, TypeError):
            return None
    return None
