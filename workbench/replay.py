"""Replay: re-publish events (e.g. from a dead-letter topic or a capture file) as they first were.

Keys, values and headers are kept; the dead-letter metadata brokers and frameworks add is
stripped (Kafka Connect ``__connect.errors.*``, Spring ``kafka_dlt-*``, RabbitMQ ``x-death`` and
``x-first-death-*`` / ``x-last-death-*``), and two headers say where the event came from and when
it was replayed. Partitions and timestamps are left to the destination broker. Pure: the CLI
decides whether to publish (dry run by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from workbench.broker import Event, OutgoingEvent
from workbench.envelope import format_timestamp

__all__ = ["REPLAYED_AT", "REPLAYED_FROM", "Replayed", "is_dead_letter_header", "replayed"]

REPLAYED_FROM = "workbench-replayed-from"  # topic/partition/offset of the original
REPLAYED_AT = "workbench-replayed-at"  # ISO-8601 UTC time of the replay

_DEAD_LETTER_PREFIXES = ("__connect.errors.", "kafka_dlt-", "x-first-death-", "x-last-death-")
_DEAD_LETTER_NAMES = frozenset({"x-death"})
_OWN = frozenset({REPLAYED_FROM, REPLAYED_AT})


def is_dead_letter_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _DEAD_LETTER_NAMES or lowered.startswith(_DEAD_LETTER_PREFIXES)


@dataclass(frozen=True)
class Replayed:
    """An event to re-publish, where it came from, and which headers were taken off."""

    origin: str  # topic/partition/offset
    event: OutgoingEvent
    stripped: tuple[str, ...]


def replayed(event: Event, now_ms: int | None = None) -> Replayed:
    """The event to publish again. Replay headers of an earlier replay are replaced, not piled up."""
    origin = f"{event.topic}/{event.partition}/{event.offset}"
    kept: list[tuple[str, bytes]] = []
    stripped: list[str] = []
    for name, value in event.headers:
        if is_dead_letter_header(name):
            stripped.append(name)
        elif name.lower() not in _OWN:
            kept.append((name, value))
    moment = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    kept.append((REPLAYED_FROM, origin.encode()))
    kept.append((REPLAYED_AT, str(format_timestamp(moment)).encode()))
    return Replayed(origin, OutgoingEvent(value=event.value, key=event.key, headers=tuple(kept)), tuple(stripped))
