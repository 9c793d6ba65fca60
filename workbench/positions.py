"""Parse the `--from` position strings users type into a :class:`~workbench.broker.Position`.

Also the help for `offsets reset --to` (parsed by :func:`workbench.offsets_reset.parse_reset_to`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from workbench.broker import Position
from workbench.errors import UsageError

POSITION_HELP = (
    "beginning | end | OFFSET (absolute, e.g. 1200) | -N (the last N events of each partition) "
    "| ISO-8601 time (e.g. 2026-11-27T08:00:00Z; without a zone it is UTC)"
)
RESET_TO_HELP = (
    "earliest | latest | OFFSET (absolute, e.g. 1200) | ISO-8601 time (e.g. 2026-11-27T08:00:00Z; "
    "without a zone it is UTC: the first offset at or after it) | shift:+N / shift:-N (from the committed offset)"
)

MAX_OFFSET = 2**63 - 1  # Kafka's offsets are signed 64-bit

_ALIASES = {
    "beginning": Position.beginning(),
    "earliest": Position.beginning(),
    "start": Position.beginning(),
    "end": Position.end(),
    "latest": Position.end(),
}


def parse_position(text: str) -> Position:
    """``beginning``, ``end``, ``1200``, ``-50`` or an ISO-8601 time; UsageError otherwise."""
    word = text.strip().lower()
    if word in _ALIASES:
        return _ALIASES[word]
    if _is_number(word):
        return Position.at_offset(_bounded(word, text))
    if word.startswith("-") and _is_number(word[1:]):
        n = _bounded(word[1:], text)
        if n == 0:
            raise UsageError("--from -0 selects nothing", hint="use -N with N >= 1, or 'end'")
        return Position.last(n)
    ms = _iso_ms(text)
    if ms is None:
        raise UsageError(f"--from {_shown(text)} is not a position", hint=f"expected {POSITION_HELP}")
    return Position.at_time(ms)


UNTIL_HELP = (
    "now (the end when the read begins) | OFFSET (the last offset read, e.g. 1500) "
    "| ISO-8601 time (the last events stamped at or before it; without a zone it is UTC)"
)
_NOW = {"now", "end", "latest"}


def parse_until(text: str) -> Position:
    """Where a bounded window ends: ``now`` (Position.end), an inclusive offset, or an ISO-8601 time
    (inclusive); UsageError otherwise."""
    word = text.strip().lower()
    if word in _NOW:
        return Position.end()
    if _is_number(word):
        if len(word) > 19 or int(word) > MAX_OFFSET:
            raise UsageError(f"--until {_shown(text)} is out of range", hint=f"offsets go up to {MAX_OFFSET}")
        return Position.at_offset(int(word))
    ms = _iso_ms(text)
    if ms is None:
        raise UsageError(f"--until {_shown(text)} is not an end", hint=f"expected {UNTIL_HELP}")
    return Position.at_time(ms)


def check_window(start: Position, until: Position) -> None:
    """A window that ends before it starts selects nothing: say so instead of reading nothing."""
    if start.kind == until.kind and start.kind in ("offset", "timestamp") and until.value < start.value:
        raise UsageError(f"--until {until} is before --from {start}", hint="the window would be empty")


def _iso_ms(text: str) -> int | None:
    """Milliseconds of an ISO-8601 time (UTC without a zone), None when it is not one we can show."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
        datetime.fromtimestamp(ms / 1000, UTC)  # shown back in UTC: must stay within years 1-9999
        return ms
    except (ValueError, OverflowError):
        return None


def _shown(text: str) -> str:
    """The user's text in a message: quoted, and cut when it is long."""
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _is_number(word: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``²`` and other scripts' digits."""
    return word.isascii() and word.isdigit()


def _bounded(digits: str, text: str) -> int:
    """An offset or count that fits a broker's 64-bit offsets."""
    if len(digits) > 19 or int(digits) > MAX_OFFSET:
        raise UsageError(f"--from {_shown(text)} is out of range", hint=f"offsets go up to {MAX_OFFSET}")
    return int(digits)


# --------------------------------------------------------------------------- durations and --since

DEFAULT_SINCE = "24h"
SINCE_HELP = "a duration back from now (30s, 15m, 24h, 7d), an ISO-8601 time (UTC without a zone), or 'beginning'"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\Z")
_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(text: str, what: str = "duration") -> int:
    """``"15m"`` -> milliseconds. Units ms, s, m, h, d, w (no unit: seconds); UsageError otherwise."""
    match = _DURATION.match(str(text).strip().lower())
    if not match:
        raise UsageError(f"{what} {_shown(text)} is not a duration", hint="e.g. 90s, 15m, 2h, 1d")
    if len(match.group(1)) > 15:  # a float would overflow, or lose the digits
        raise UsageError(f"{what} {_shown(text)} is too long", hint="e.g. 90s, 15m, 2h, 1d")
    ms = int(float(match.group(1)) * _UNITS[match.group(2) or "s"])
    if ms <= 0:
        raise UsageError(f"{what} {text!r} must be more than zero")
    return ms


def parse_since(text: str, now_ms: int | None = None) -> Position:
    """Where a bounded scan starts: ``24h`` back from now, an ISO time, or ``beginning``."""
    word = text.strip().lower()
    if word in ("beginning", "all", "earliest"):
        return Position.beginning()
    if _DURATION.match(word):
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return Position.at_time(max(now_ms - parse_duration(word, "--since"), 0))
    ms = _iso_ms(text)
    if ms is None:
        raise UsageError(f"--since {_shown(text)} is not a duration or a time", hint=f"expected {SINCE_HELP}")
    return Position.at_time(ms)
