"""Checks on a compensation's destination: is an event with this id there already?

Compensating events carry their idempotency key as their CloudEvents id (binary mode), so reading
the destination back tells "already published" from "not yet" before anything is published; the
scan starts a margin before the saga, as broker clocks are coarse.
"""

from __future__ import annotations

from workbench.broker import Connection, Event, Position
from workbench.sagas.observing import scan

__all__ = ["SCAN_MARGIN_MS", "find_event_id", "has_event_id"]

SCAN_MARGIN_MS = 60_000  # scans for earlier copies start this long before the saga (coarse broker clocks)


_ID_HEADERS = ("ce_id", "ce-id", "cloudevents:id", "cloudevents_id")  # binary mode, as each broker spells it


def has_event_id(event: Event, event_id: str) -> bool:
    """Whether the event's CloudEvents id header is ``event_id`` (our compensations are binary mode)."""
    wanted = event_id.encode()
    return any(k.lower() in _ID_HEADERS and bytes(v) == wanted for k, v in event.headers)


async def find_event_id(conn: Connection, topic: str, event_id: str, *, since_ms: int | None) -> str | None:
    """The position of an event whose CloudEvents id is ``event_id`` on ``topic``, if any (bounded scan)."""
    found: list[str] = []

    def sink(batch: list[Event]) -> None:
        for event in batch:
            if not found and has_event_id(event, event_id):
                found.append(f"{event.topic}/{event.partition}/{event.offset}")

    start = Position.beginning() if since_ms is None or since_ms <= 0 else Position.at_time(since_ms)
    await scan(conn, topic, start, sink, None)
    return found[0] if found else None
