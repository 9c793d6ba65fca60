"""Redrive: send dead letters back where their headers say they came from.

Each dead letter (:mod:`workbench.triage.dlq`) goes back to its origin: the original topic
(Spring Kafka, Kafka Connect), or for RabbitMQ the exchange it was first published to with its
routing key (the queue itself when it came through the default exchange). The dead-letter headers
are stripped as ``replay`` strips them, and ``workbench-redriven-from`` names the dead letter
(DLQ/partition/offset, or the queue and message id of a peeked one).

In steps, like saga compensations: :func:`plan_redrive` reads the dead letters (publishes
nothing: a dry run shows the plan); :func:`execute` first checks *every* destination for copies
redriven before (a scan for ``workbench-redriven-from``; a destination the broker cannot read
back, such as a RabbitMQ exchange, is checked in the audit log's earlier redrives instead), then
publishes what is not there yet, at ``rate`` events per second when given. :func:`execute_and_record`
appends one record to the audit log whatever happens (the log is given by the caller: the saga
audit log, kept by ``workbench.sagas.audit``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, Unpack

from workbench.broker import BrokerError, Connection, Event, OutgoingEvent, Position, Unsupported
from workbench.events.envelope import format_timestamp
from workbench.triage.dlq import DeadLetter, Window, dead_letter, event_ref, read_dead_letters
from workbench.triage.replay import REPLAYED_AT, REPLAYED_FROM, strip_headers

__all__ = [
    "KIND",
    "REDRIVEN_FROM",
    "Audit",
    "Destination",
    "Redrive",
    "RedrivePlan",
    "Run",
    "destination_of",
    "execute",
    "execute_and_record",
    "plan_redrive",
    "redrive_record",
    "redriven",
]

REDRIVEN_FROM = "workbench-redriven-from"
KIND = "redrive"  # the audit records' kind
SCAN_MARGIN_MS = 60_000  # the check for earlier copies starts this long before the oldest dead letter
PUBLISH_CHUNK = 500
_OWN = frozenset({REDRIVEN_FROM, REPLAYED_FROM, REPLAYED_AT})


class Audit(Protocol):
    """The append-only audit log (``workbench.sagas.audit.AuditLog``)."""

    def append(self, record: Mapping[str, Any]) -> None: ...

    def records(self, correlation_id: str | None = None, *, kind: str | None = ...) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Destination:
    """A topic, a queue, or a RabbitMQ exchange with the routing key to publish with."""

    topic: str
    routing_key: str | None = None

    @property
    def label(self) -> str:
        return self.topic if self.routing_key is None else f"{self.topic} (routing key {self.routing_key})"


def destination_of(letter: DeadLetter) -> Destination | None:
    """Where the dead letter came from, or None when its headers do not say."""
    if letter.convention == "rabbitmq":
        if letter.exchange:
            return Destination(letter.exchange, letter.routing_key or "")
        return Destination(letter.origin) if letter.origin else None  # the default exchange: the queue
    return Destination(letter.origin) if letter.origin else None


@dataclass(frozen=True, slots=True)
class Redrive:
    """One dead letter and what would be sent home (``event`` is None when its origin is unknown)."""

    ref: str  # the dead letter (see dlq.event_ref), the value of workbench-redriven-from
    cause: str
    destination: Destination | None
    event: OutgoingEvent | None
    stripped: tuple[str, ...]
    died_at: int | None


def redriven(event: Event) -> Redrive | None:
    """The event to send home, or None when ``event`` carries no dead-letter headers."""
    letter = dead_letter(event)
    if letter is None:
        return None
    ref = event_ref(event)
    destination = destination_of(letter)
    kept, stripped = strip_headers(event.headers, _OWN)
    kept.append((REDRIVEN_FROM, ref.encode()))
    key = event.key
    if destination is not None and destination.routing_key is not None:
        key = destination.routing_key.encode()  # to an exchange, the key is the routing key
    outgoing = None if destination is None else OutgoingEvent(value=event.value, key=key, headers=tuple(kept))
    return Redrive(ref, letter.cause, destination, outgoing, tuple(stripped), letter.died_at or event.timestamp)


@dataclass(frozen=True)
class RedrivePlan:
    source: str
    items: tuple[Redrive, ...]  # in the order read; those without a destination are not sent
    scanned: int = 0
    not_dead_letters: int = 0

    @property
    def sendable(self) -> list[Redrive]:
        return [r for r in self.items if r.destination is not None]

    @property
    def homeless(self) -> list[Redrive]:
        return [r for r in self.items if r.destination is None]

    def by_destination(self) -> dict[str, int]:
        return dict(Counter(r.destination.label for r in self.sendable if r.destination is not None))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scanned": self.scanned,
            "dead_letters": len(self.items),
            "not_dead_letters": self.not_dead_letters,
            "destinations": self.by_destination(),
            "no_origin": [r.ref for r in self.homeless],
        }


async def plan_redrive(
    conn: Connection,
    source: str,
    start: Position,
    *,
    limit: int | None = None,
    **window: Unpack[Window],
) -> RedrivePlan:
    """Read the dead letters of ``source`` (``match`` chooses among them; ``limit`` counts dead
    letters, not events read). Publishes nothing."""
    items: list[Redrive] = []
    scanned = others = 0

    def counted(n: int) -> None:
        nonlocal scanned
        scanned += n

    reader = read_dead_letters(conn, source, start, on_scanned=counted, **window)
    async with aclosing(reader) as batches:
        async for batch in batches:
            for event in batch:
                item = redriven(event)
                if item is None:
                    others += 1
                else:
                    items.append(item)
                    if limit is not None and len(items) >= limit:
                        break
            if limit is not None and len(items) >= limit:
                break
    return RedrivePlan(source, tuple(items), scanned, others)


# --------------------------------------------------------------------------- execute


@dataclass
class Result:
    ref: str
    destination: str
    status: str = "not sent"  # published | already redriven | failed | not sent
    position: str | None = None  # where it landed (or the earlier copy)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.ref,
            "destination": self.destination,
            "status": self.status,
            "position": self.position,
            "error": self.error,
        }


@dataclass
class Run:
    plan: RedrivePlan
    results: list[Result] = field(default_factory=list)
    checked: dict[str, str] = field(default_factory=dict)  # destination -> "destination" | "audit log"
    outcome: str = "refused"  # done | failed | refused
    error: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "error": self.error,
            "published": self.count("published"),
            "already_redriven": self.count("already redriven"),
            "failed": self.count("failed"),
            "checked": dict(self.checked),
            "results": [r.as_dict() for r in self.results],
        }


async def earlier_copies(conn: Connection, destination: Destination, since_ms: int | None) -> dict[str, str] | None:
    """``workbench-redriven-from`` values already on the destination -> their positions; None when
    the broker cannot read the destination back (a RabbitMQ exchange or classic queue)."""
    found: dict[str, str] = {}
    start = Position.beginning() if since_ms is None or since_ms <= 0 else Position.at_time(since_ms)
    wanted = REDRIVEN_FROM.encode()
    try:
        async with aclosing(conn.read(destination.topic, start, batch_size=2000)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                for event in batch:
                    for name, value in event.headers:
                        if name.encode() == wanted:
                            found.setdefault(bytes(value).decode("utf-8", "replace"), _where(event))
    except Unsupported:
        return None
    return found


def _where(event: Event) -> str:
    return f"{event.topic}/{event.partition}/{event.offset}"


def audited_copies(audit: Audit | None, destination: Destination) -> dict[str, str]:
    """Dead letters an earlier redrive published to ``destination``, as the audit log records them."""
    if audit is None:
        return {}
    found: dict[str, str] = {}
    for record in audit.records(kind=KIND):
        for result in record.get("results") or ():
            if result.get("status") == "published" and result.get("destination") == destination.label:
                found.setdefault(str(result.get("id")), f"audit log {record.get('at')}")
    return found


async def execute(
    conn: Connection,
    plan: RedrivePlan,
    *,
    audit: Audit | None = None,
    rate: float | None = None,
    run: Run | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Run:
    """Check every destination, then publish what is not there yet (in the order read, per
    destination). ``run`` (when given) is filled in as it goes, so a caller can record what
    happened even when this raises."""
    run = run or Run(plan)
    items = plan.sendable
    run.results = [Result(r.ref, r.destination.label) for r in items if r.destination is not None]
    destinations = list(dict.fromkeys(r.destination for r in items if r.destination is not None))
    times = [r.died_at for r in items if r.died_at is not None]
    since = min(times) - SCAN_MARGIN_MS if times and len(times) == len(items) else None
    before: dict[Destination, dict[str, str]] = {}
    for destination in destinations:  # every destination is checked before anything is published
        copies = await earlier_copies(conn, destination, since)
        if copies is None:
            run.checked[destination.label] = "audit log"
            copies = audited_copies(audit, destination)
        else:
            run.checked[destination.label] = "destination"
        before[destination] = copies
    pending: dict[Destination, list[tuple[Redrive, Result]]] = {}
    for item, result in zip(items, run.results, strict=True):
        assert item.destination is not None
        earlier = before[item.destination].get(item.ref)
        if earlier is not None:
            result.status, result.position = "already redriven", earlier
        else:
            pending.setdefault(item.destination, []).append((item, result))
    pace = _Pace(rate, clock)
    for destination, chosen in pending.items():
        for first in range(0, len(chosen), pace.chunk):
            part = chosen[first : first + pace.chunk]
            await pace.wait(len(part))
            try:
                outcomes = await conn.publish(destination.topic, [item.event for item, _ in part if item.event])
            except BrokerError as exc:
                for _, result in part:
                    result.status, result.error = "failed", str(exc)
                run.outcome, run.error = "failed", f"{destination.label}: {exc}"
                return run
            for (_, result), outcome in zip(part, outcomes, strict=True):
                if outcome.ok:
                    result.status = "published"
                    result.position = (
                        destination.topic
                        + ("" if outcome.partition is None else f"/{outcome.partition}")
                        + ("" if outcome.offset is None else f"/{outcome.offset}")
                    )
                else:
                    result.status, result.error = "failed", str(outcome.error)
            failed = [r for _, r in part if r.status == "failed"]
            if failed:
                run.outcome, run.error = "failed", f"{destination.label}: {failed[0].error}"
                return run
    run.outcome = "done"
    return run


class _Pace:
    """At most ``rate`` events a second: chunks of about a tenth of a second's worth."""

    def __init__(self, rate: float | None, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.chunk = PUBLISH_CHUNK if not rate else max(1, min(PUBLISH_CHUNK, int(rate / 10)))
        self.sent = 0
        self.started: float | None = None

    async def wait(self, n: int) -> None:
        if not self.rate:
            return
        if self.started is None:
            self.started = self.clock()
        due = self.started + self.sent / self.rate
        delay = due - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        self.sent += n


def redrive_record(
    run: Run, *, context: Mapping[str, Any], filter_text: str | None, at_ms: int | None = None
) -> dict[str, Any]:
    """One audit record: who/profile/broker/reason (``context``), the plan per destination, the results."""
    at = at_ms if at_ms is not None else time.time_ns() // 1_000_000
    return {
        "kind": KIND,
        "at": str(format_timestamp(at)),
        **context,
        "source": run.plan.source,
        "filter": filter_text,
        "plan": run.plan.by_destination(),
        **run.as_dict(),
    }


async def execute_and_record(
    conn: Connection,
    plan: RedrivePlan,
    audit: Audit,
    *,
    context: Mapping[str, Any],
    filter_text: str | None = None,
    rate: float | None = None,
) -> Run:
    """:func:`execute`, with one audit record whatever happens (failed, interrupted)."""
    run = Run(plan)
    try:
        await execute(conn, plan, audit=audit, rate=rate, run=run)
    except BaseException as exc:
        run.outcome = "failed"
        run.error = str(exc) or type(exc).__name__
        raise
    finally:
        audit.append(redrive_record(run, context=context, filter_text=filter_text))
    return run
