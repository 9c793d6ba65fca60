"""Replay: re-publish events (e.g. from a dead-letter topic or a capture file) as they first were.

Keys, values and headers are kept; the dead-letter metadata brokers and frameworks add is
stripped (Kafka Connect ``__connect.errors.*``, Spring ``kafka_dlt-*``, RabbitMQ ``x-death`` and
``x-first-death-*`` / ``x-last-death-*``), and two headers say where the event came from and when
it was replayed. Partitions and timestamps are left to the destination broker.

In two steps, like the offsets reset and saga compensations: :func:`plan_replay` reads the
events to replay (nothing is published; a dry run shows the plan), :func:`execute_replay`
publishes a plan and returns one result per event. The caller decides whether to execute and
checks that the destination profile may be written.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.broker import Event, OutgoingEvent
from workbench.errors import UsageError
from workbench.events.envelope import format_timestamp
from workbench.events.redaction import refuse_redacted

if TYPE_CHECKING:
    from workbench.broker import Connection, Position
    from workbench.config import Target
    from workbench.publishing import Batch, PublishReport

__all__ = [
    "REPLAYED_AT",
    "REPLAYED_FROM",
    "ReplayPlan",
    "ReplaySource",
    "Replayed",
    "execute_replay",
    "is_dead_letter_header",
    "plan_replay",
    "replay_as_read",
    "replay_source",
    "replayed",
    "strip_headers",
]

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


def strip_headers(
    headers: Sequence[tuple[str, bytes]], own: frozenset[str] = _OWN
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The headers kept and the dead-letter header names taken off; ``own`` (lowercase names of
    the workbench's earlier replay or redrive headers) are dropped too, so they never pile up."""
    kept: list[tuple[str, bytes]] = []
    stripped: list[str] = []
    for name, value in headers:
        if is_dead_letter_header(name):
            stripped.append(name)
        elif name.lower() not in own:
            kept.append((name, value))
    return kept, stripped


def replayed(event: Event, now_ms: int | None = None) -> Replayed:
    """The event to publish again. Replay headers of an earlier replay are replaced, not piled up."""
    origin = f"{event.topic}/{event.partition}/{event.offset}"
    refuse_redacted([event], lambda _: origin)
    kept, stripped = strip_headers(event.headers)
    moment = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    kept.append((REPLAYED_FROM, origin.encode()))
    kept.append((REPLAYED_AT, str(format_timestamp(moment)).encode()))
    return Replayed(origin, OutgoingEvent(value=event.value, key=event.key, headers=tuple(kept)), tuple(stripped))


# --------------------------------------------------------------------------- plan and execute


@dataclass(frozen=True)
class ReplaySource:
    """Where the events to replay are read: a topic of the profile, or a capture file."""

    name: str  # as given: the topic, or the capture file's path
    target: Target  # what to connect to for reading
    from_file: bool
    topics: tuple[str, ...] = ()  # of a capture file (none: all of its topics)


def replay_source(source: str, topics: Sequence[str] | None, target: Target) -> ReplaySource:
    """SOURCE read as a capture file (FILE.db) or a topic of ``target``; UsageError when it is neither."""
    from workbench.triage.capture import is_capture_file, local_target

    from_file = is_capture_file(source)
    if not from_file and "/" in source:  # a path: topic names have no "/"
        raise UsageError(f"no capture file {source!r}", hint="give an existing FILE.db, or a topic of the profile")
    if from_file:
        return ReplaySource(source, local_target(Path(source).expanduser(), name=source), True, tuple(topics or ()))
    if topics:
        raise UsageError("--topic selects topics of a capture file", hint="the SOURCE topic is the one replayed")
    return ReplaySource(source, target, False)


@dataclass(frozen=True)
class ReplayPlan:
    """The events a replay would publish to ``to``, in the order they were read."""

    source: str
    to: str
    items: tuple[Replayed, ...]


async def plan_replay(
    conn: Connection,
    source: ReplaySource,
    to: str,
    position: Position,
    *,
    limit: int | None = None,
    match: Callable[[Event], bool] | None = None,
) -> ReplayPlan:
    """Read the events to replay from ``source`` (on ``conn``, its connection): at most ``limit``,
    from ``position``, those ``match`` accepts. Publishes nothing."""
    from workbench import service

    found: list[Replayed] = []
    names = source.topics or (
        [t.name for t in await conn.list_topics() if not t.internal] if source.from_file else [source.name]
    )
    for name in names:
        remaining = None if limit is None else limit - len(found)
        if remaining == 0:
            break
        async for batch in service.tail(conn, name, position, limit=remaining, match=match):
            found.extend(replayed(e) for e in batch)
    return ReplayPlan(source.name, to, tuple(found))


async def execute_replay(
    conn: Connection,
    plan: ReplayPlan,
    *,
    on_progress: Callable[[PublishReport], None] | None = None,
    started: float | None = None,
) -> PublishReport:
    """Publish a plan on ``conn`` (the destination's connection) with the publish engine: one result
    per event, failures named by the original's topic/partition/offset."""
    from workbench import publishing

    return await publishing.send(
        conn, plan.to, _batches(plan.items), total=len(plan.items), on_progress=on_progress, started=started
    )


async def replay_as_read(
    source_conn: Connection,
    source: ReplaySource,
    conn: Connection,
    to: str,
    position: Position,
    *,
    limit: int | None = None,
    match: Callable[[Event], bool] | None = None,
    on_progress: Callable[[PublishReport], None] | None = None,
    started: float | None = None,
) -> PublishReport:
    """:func:`plan_replay` and :func:`execute_replay` in one go, for a replay too large to hold: each
    batch read from ``source`` (on ``source_conn``) is published on ``conn`` before the next is read
    (the read keeps one batch ahead), so memory stays the same whatever the number of events."""
    from workbench import publishing, service

    async def batches() -> AsyncIterator[Batch]:
        found = 0
        names = source.topics or (
            [t.name for t in await source_conn.list_topics() if not t.internal] if source.from_file else [source.name]
        )
        for name in names:
            remaining = None if limit is None else limit - found
            if remaining == 0:
                return
            async with aclosing(service.tail(source_conn, name, position, limit=remaining, match=match)) as read:
                async for events in read:
                    found += len(events)
                    yield _batch([replayed(e) for e in events])

    return await publishing.send(conn, to, batches(), on_progress=on_progress, started=started)


def _batches(items: Sequence[Replayed], size: int = 5000) -> Iterator[Batch]:
    for first in range(0, len(items), size):
        yield _batch(items[first : first + size])


def _batch(items: Sequence[Replayed]) -> Batch:
    from workbench.publishing import Batch

    return Batch([r.event for r in items], lambda i: items[i].origin)
