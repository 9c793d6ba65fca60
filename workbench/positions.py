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
    if word.isdigit():
        return Position.at_offset(int(word))
    if word.startswith("-") and word[1:].isdigit():
        n = int(word[1:])
        if n == 0:
            raise UsageError("--from -0 selects nothing", hint="use -N with N >= 1, or 'end'")
        return Position.last(n)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--from {text!r} is not a position", hint=f"expected {POSITION_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Position.at_time(int(moment.timestamp() * 1000))

