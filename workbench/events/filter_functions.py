"""The functions a ``--filter`` expression can call (the language: :mod:`workbench.events.filters`).

Given None (a missing field) they return None, and the predicates False, so data that lacks a
member makes an event not match instead of raising.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

__all__ = ["ARITY", "FUNCTIONS", "cached_regex"]

_REGEX_CACHE = 256


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def _len(value: Any) -> int | None:
    return None if value is None else len(value)


def _lower(value: Any) -> str | None:
    text = _text_or_none(value)
    return None if text is None else text.lower()


def _upper(value: Any) -> str | None:
    text = _text_or_none(value)
    return None if text is None else text.upper()


def _contains(container: Any, item: Any) -> bool:
    if container is None or item is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def _affixes(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return str(value)


def _startswith(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and prefix is not None and text.startswith(_affixes(prefix))


def _endswith(text: Any, suffix: Any) -> bool:
    return isinstance(text, str) and suffix is not None and text.endswith(_affixes(suffix))


@functools.lru_cache(maxsize=_REGEX_CACHE)
def cached_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(text: Any, pattern: Any) -> bool:
    if text is None or pattern is None:
        return False
    text = _text_or_none(text) if not isinstance(text, str) else text
    return cached_regex(str(pattern)).search(text) is not None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


#: The functions a filter can call.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "lower": _lower,
    "upper": _upper,
    "contains": _contains,
    "startswith": _startswith,
    "endswith": _endswith,
    "matches": _matches,
    "int": _int,
    "float": _float,
    "str": _str,
}
ARITY = {"contains": 2, "startswith": 2, "endswith": 2, "matches": 2}
