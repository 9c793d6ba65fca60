"""`lag explain GROUP`: why a group is behind, partition by partition, worst first.

For each of the worst partitions: who owns it (the member's client id and host), the verdict and
the rule that fired with the numbers it used (over a short window of samples taken here), lag in
events and in time, the time to drain at the rates seen in that window (the broker's own rates for a
RabbitMQ queue), and the event the group is stuck at: the one at the committed offset (Kafka, the
local log) or the head of the queue (RabbitMQ, peeked: taken and requeued, marked redelivered).
That event is the likely poison message. Where the profile names the group's dead-letter topic or
queue (``[profiles.NAME.dead_letters] GROUP = "orders.DLT"``), the last events there are searched
for the stuck event's key and correlation id.

Lag in time here is measured, not estimated: now minus the stuck event's timestamp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from workbench.broker import BrokerError, Connection, Event, GroupLag, GroupMember, PartitionLag, Position
from workbench.events.correlation import DEFAULT_RULES, CorrelationRules
from workbench.lag import Assessment, LagTracker, consumers_of
from workbench.lag_watch import GroupView, view

#: Events read from the end of a dead-letter topic (or peeked from a queue) to look the stuck one up.
DEAD_LETTER_SCAN = 10_000


@dataclass(frozen=True)
class DeadLetterCheck:
    """Whether the stuck event's key or correlation id is among the dead letters searched."""

    source: str
    scanned: int
    key_found: bool | None  # None: the stuck event has no key
    correlation_id: str | None
    correlation_found: bool | None  # None: no correlation id on the stuck event
    error: str | None = None  # the dead-letter source could not be read

    @property
    def found(self) -> bool:
        return bool(self.key_found or self.correlation_found)


@dataclass(frozen=True)
class PartitionExplanation:
    partition: PartitionLag
    assessment: Assessment | None
    owner: GroupMember | None
    drain_s: float | None  # inf: never drains at these rates; None: rates unknown
    event: Event | None  # the event the group is stuck at
    event_note: str  # why there is no event, or how it was read
    event_age_ms: int | None  # now minus the stuck event's timestamp: lag in time, measured
    dead_letters: DeadLetterCheck | None = None


@dataclass(frozen=True)
class Explanation:
    view: GroupView
    samples: int
    window_s: float
    partitions: list[PartitionExplanation] = field(default_factory=list)
    dead_letter_source: str | None = None

    @property
    def group(self) -> GroupLag:
        return self.view.group


Sleep = Callable[[float], Awaitable[None]]


async def explain(
    conn: Connection,
    group_id: str,
    *,
    samples: int = 4,
    interval: float = 2.0,
    top: int = 5,
    dead_letters: str | None = None,
    can_peek: bool = False,
    rules: CorrelationRules = DEFAULT_RULES,
    scan: int = DEAD_LETTER_SCAN,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> Explanation:
    """Sample the group ``samples`` times ``interval`` s apart, judge it, and explain its ``top``
    worst partitions that are behind. A group that is a queue (the broker counts its consumers:
    RabbitMQ) has no offsets to read from: its head is peeked where ``can_peek`` (and its dead
    letters, a queue too, likewise); any other group's partitions are read at the committed offset."""
    tracker = LagTracker(window=samples, clock=clock)
    started = clock()
    found: list[GroupLag] = []
    for n in range(samples):
        if n:
            await sleep(interval)
        found = await conn.lag([group_id])
        tracker.observe(found)
    judged = view(found[0], tracker)
    positions = consumers_of(judged.group) is None  # a queue counts its consumers; a log has offsets
    owners = {tp: m for m in judged.group.members for tp in m.assignment}
    behind = [(p, a) for p, a in judged.worst_partitions() if (p.lag or 0) > 0 or p.lost_to_retention][:top]
    out = []
    for p, a in behind:
        event, note = await _stuck_event(conn, p, positions=positions, can_peek=can_peek)
        age = None if event is None or event.timestamp is None else max(int(clock() * 1000) - event.timestamp, 0)
        check = None
        if dead_letters is not None and event is not None:
            check = await check_dead_letters(conn, dead_letters, event, rules, positions=positions, scan=scan)
        drain = (judged.partition_drain or {}).get((p.topic, p.partition))
        out.append(PartitionExplanation(p, a, owners.get((p.topic, p.partition)), drain, event, note, age, check))
    return Explanation(judged, samples, clock() - started, out, dead_letters)


async def _stuck_event(
    conn: Connection, p: PartitionLag, *, positions: bool, can_peek: bool
) -> tuple[Event | None, str]:
    """The event at the committed offset (or the queue's head), and how it was found."""
    if p.committed is None:
        return None, "never committed: the group starts where its reset policy says"
    if p.lost_to_retention:
        return None, f"committed offset {p.committed:,} was deleted by retention (log starts at {p.start:,})"
    try:
        if not positions:
            if not can_peek:
                return None, "the head of the queue is not peeked (the broker cannot, or the profile is read-only)"
            events = await conn.peek(p.topic, 1)
            return (
                (events[0], "head of the queue (peeked: requeued, marked redelivered)")
                if events
                else (
                    None,
                    "the queue is empty now",
                )
            )
        reader = conn.read(p.topic, Position.at_offset(p.committed), partitions=[p.partition], batch_size=1)
        async with aclosing(reader) as batches:  # type: ignore[type-var]
            async for batch in batches:
                for e in batch:
                    if e.partition == p.partition and e.offset >= p.committed:
                        note = "at the committed offset" if e.offset == p.committed else "first event after it"
                        return e, note
        return None, "no event there any more (compacted or deleted)"
    except BrokerError as exc:
        return None, f"could not read it: {exc}"


async def check_dead_letters(
    conn: Connection,
    source: str,
    event: Event,
    rules: CorrelationRules,
    *,
    positions: bool,
    scan: int = DEAD_LETTER_SCAN,
) -> DeadLetterCheck:
    """Search the last ``scan`` dead letters for the event's key and correlation id."""
    correlation = rules.correlation_id(event)
    scanned = 0
    key_found = False if event.key is not None else None
    corr_found = False if correlation is not None else None
    try:
        if positions:
            reader = conn.read(source, Position.last(scan))
            async with aclosing(reader) as batches:  # type: ignore[type-var]
                async for batch in batches:
                    scanned += len(batch)
                    key_found, corr_found = _look(batch, event, correlation, rules, key_found, corr_found)
                    if (key_found or key_found is None) and (corr_found or corr_found is None):
                        break
        else:
            batch = await conn.peek(source, scan)
            scanned = len(batch)
            key_found, corr_found = _look(batch, event, correlation, rules, key_found, corr_found)
    except BrokerError as exc:
        return DeadLetterCheck(source, scanned, None, correlation, None, error=str(exc))
    return DeadLetterCheck(source, scanned, key_found, correlation, corr_found)


def _look(
    batch: list[Event],
    event: Event,
    correlation: str | None,
    rules: CorrelationRules,
    key_found: bool | None,
    corr_found: bool | None,
) -> tuple[bool | None, bool | None]:
    for dead in batch:
        if key_found is False and dead.key == event.key:
            key_found = True
        if corr_found is False and rules.correlation_id(dead) == correlation:
            corr_found = True
    return key_found, corr_found
