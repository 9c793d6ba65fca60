"""Parse the `--from` position strings users type into a :class:`~workbench.broker.Position`.

Also the help for `offsets reset --to` (parsed by :func:`workbench.offsets.parse_reset_to`).
"""

from __future__ import annotations

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
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
        datetime.fromtimestamp(ms / 1000, UTC)  # shown back in UTC: must stay within years 1-9999
        return Position.at_time(ms)
    except (ValueError, OverflowError):
        raise UsageError(f"--from {_shown(text)} is not a position", hint=f"expected {POSITION_HELP}") from None


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

