"""Executing a saga's compensation plan: re-check, publish, confirm, and keep an audit record.

Execution re-reads the saga first and refuses when its fingerprint (the positions of its events)
changed since the plan (:mod:`workbench.sagas.compensation_plan`). Every destination is checked
for an earlier copy before anything is published (:mod:`workbench.sagas.destinations`), so an
execution repeated publishes nothing new. Afterwards it watches, for a bounded time, for the
confirming events (``confirmed_when``, else the step's ``compensated_when`` read back). Every
execution attempt, refused or failed ones too, is appended to the audit log
(:mod:`workbench.sagas.audit`), shown by ``workbench saga history``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.broker import BrokerError, Connection, Event, Position, Unsupported
from workbench.errors import CompensationRefused, WorkbenchError
from workbench.events.envelope import format_timestamp
from workbench.events.redaction import Redactor
from workbench.sagas.audit import AuditLog, who
from workbench.sagas.compensation_plan import Plan, plan
from workbench.sagas.definitions import Matcher, SagaDef
from workbench.sagas.destinations import SCAN_MARGIN_MS, find_event_id, has_event_id
from workbench.sagas.observing import Correlate, expected_events, observe, scan
from workbench.sagas.settings import SagaSettings

__all__ = [
    "Execution",
    "StepResult",
    "audit_record",
    "confirm",
    "execute",
    "execute_and_record",
    "refused_record",
    # used from here by the TUI's saga screen (they live in compensation_plan, observing, settings)
    "Plan",
    "SagaSettings",
    "expected_events",
    "observe",
    "plan",
]

POLL_SECONDS = 0.5  # between confirmation scans


@dataclass
class StepResult:
    step: str
    topic: str
    event_id: str
    status: str = "not sent"  # published | already published | failed | not sent
    position: str | None = None  # where it landed (or the earlier copy)
    error: str | None = None
    confirmed: bool | None = None  # None: not watched
    confirmed_by: str | None = None  # position of the confirming event

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "topic": self.topic,
            "id": self.event_id,
            "status": self.status,
            "position": self.position,
            "error": self.error,
            "confirmed": self.confirmed,
            "confirmed_by": self.confirmed_by,
        }


@dataclass
class Execution:
    plan: Plan
    results: list[StepResult] = field(default_factory=list)
    outcome: str = "refused"  # done | unconfirmed | failed | refused
    error: str | None = None

    @property
    def published(self) -> int:
        return sum(1 for r in self.results if r.status == "published")

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "error": self.error,
            "published": self.published,
            "results": [r.as_dict() for r in self.results],
        }


async def execute(
    conn: Connection,
    definition: SagaDef,
    planned: Plan,
    correlate: Correlate,
    *,
    since_ms: int | None = None,
    wait_s: float = 10.0,
    now: Callable[[], int] | None = None,
    execution: Execution | None = None,
) -> Execution:
    """Re-check, publish each compensation (skipping those already published), watch for confirmations.

    ``execution`` (when given) is filled in as it goes, so a caller can record what happened even
    when this raises (refused, or a broker error half-way).
    """
    clock = now or (lambda: time.time_ns() // 1_000_000)
    run = execution or Execution(planned)
    run.results = [StepResult(e.step, e.topic, e.event_id) for e in planned.events]
    again = await observe(conn, definition, correlate, now=clock(), since_ms=since_ms, only=planned.correlation_id)
    current = again[0].fingerprint if again else None
    if current != planned.fingerprint:
        raise CompensationRefused(
            f"saga {planned.saga!r} {planned.correlation_id!r} changed since the plan (new or vanished events): "
            f"nothing was published",
            hint="look at it again (saga show) and plan again",
        )
    started = again[0].started or 0
    published_before = {}  # every destination checked before anything is published
    for item in planned.events:
        try:
            published_before[item.event_id] = await find_event_id(
                conn, item.topic, item.event_id, since_ms=started - SCAN_MARGIN_MS
            )
        except Unsupported as exc:
            raise CompensationRefused(
                f"step {item.step!r}: {item.topic!r} cannot be read back ({exc}), so whether its compensation "
                f"was published already cannot be checked: nothing was published",
                hint="compensate to a topic the workbench can read (on RabbitMQ: a stream, not an exchange)",
            ) from None
    for item, result in zip(planned.events, run.results, strict=True):
        earlier = published_before[item.event_id]
        if earlier is not None:
            result.status, result.position = "already published", earlier
            continue
        try:
            (outcome,) = await conn.publish(item.topic, [item.outgoing()])
        except BrokerError as exc:
            result.status, result.error = "failed", str(exc)
            run.outcome, run.error = "failed", f"step {item.step!r}: {exc}"
            return run
        if not outcome.ok:
            result.status, result.error = "failed", str(outcome.error)
            run.outcome, run.error = "failed", f"step {item.step!r}: {outcome.error}"
            return run  # later (older) steps are not compensated before this one
        result.status = "published"
        result.position = (
            item.topic
            if outcome.partition is None
            else (f"{item.topic}/{outcome.partition}" + ("" if outcome.offset is None else f"/{outcome.offset}"))
        )
    if planned.events and wait_s > 0:
        await confirm(
            conn, definition, planned, run.results, correlate, since_ms=started - SCAN_MARGIN_MS, wait_s=wait_s
        )
    watched = [r for r in run.results if r.confirmed is not None]
    run.outcome = "unconfirmed" if any(r.confirmed is False for r in watched) else "done"
    return run


async def confirm(
    conn: Connection,
    definition: SagaDef,
    planned: Plan,
    results: Sequence[StepResult],
    correlate: Correlate,
    *,
    since_ms: int,
    wait_s: float,
) -> None:
    """Watch the saga's topics and the destinations until every compensation is confirmed or ``wait_s`` ends.

    ``confirmed_when``: an event of this saga matching it, other than the compensation itself.
    Otherwise the step's ``compensated_when`` (e.g. the compensating event read back).
    """
    items = {r.step: (e, r) for e, r in zip(planned.events, results, strict=True) if r.status != "failed"}
    for _, result in items.values():
        result.confirmed = False
    topics = list(dict.fromkeys([*definition.topics, *(e.topic for e, _ in items.values())]))
    matchers: dict[str, Matcher] = {}
    for step_name in items:
        step = definition.step(step_name)
        assert step.compensation is not None and step.compensated_when is not None
        matchers[step_name] = step.compensation.confirmed_when or step.compensated_when
    deadline = time.monotonic() + wait_s
    start = Position.beginning() if since_ms <= 0 else Position.at_time(since_ms)
    while True:

        def sink(batch: list[Event]) -> None:
            for event in batch:
                if correlate(event) != planned.correlation_id:
                    continue
                for step_name, (item, result) in items.items():
                    if result.confirmed or not matchers[step_name](event):
                        continue
                    if item.confirm_by == "confirmed_when" and has_event_id(event, item.event_id):
                        continue
                    result.confirmed, result.confirmed_by = True, f"{event.topic}/{event.partition}/{event.offset}"

        for topic in topics:
            await scan(conn, topic, start, sink, None)
        if all(r.confirmed for _, r in items.values()) or time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))


def audit_record(
    execution: Execution,
    *,
    profile: str,
    broker: str,
    reason: str | None,
    at_ms: int | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """The audit log's record of an execution; the planned events' payloads redacted by the [mask]
    rules (``redactor``), since the log is a file people read (`saga history`)."""
    at = at_ms if at_ms is not None else time.time_ns() // 1_000_000
    plan_ = execution.plan
    return {
        "at": str(format_timestamp(at)),
        "who": who(),
        "profile": profile,
        "broker": broker,
        "saga": plan_.saga,
        "correlation_id": plan_.correlation_id,
        "reason": reason,
        "override": plan_.override,
        "state": plan_.state,
        "fingerprint": plan_.fingerprint,
        "plan": [e.as_dict() for e in plan_.redacted(redactor).events],
        **execution.as_dict(),
    }


async def execute_and_record(
    conn: Connection,
    definition: SagaDef,
    planned: Plan,
    correlate: Correlate,
    audit: AuditLog,
    *,
    profile: str,
    broker: str,
    reason: str | None,
    since_ms: int | None = None,
    wait_s: float = 10.0,
    redactor: Redactor | None = None,
) -> Execution:
    """:func:`execute`, with one audit record whatever happens (refused, failed, interrupted), its
    payloads redacted by ``redactor``."""
    run = Execution(planned)
    try:
        await execute(conn, definition, planned, correlate, since_ms=since_ms, wait_s=wait_s, execution=run)
    except BaseException as exc:
        run.outcome = "refused" if isinstance(exc, CompensationRefused) else "failed"
        run.error = str(exc) or type(exc).__name__
        raise
    finally:
        audit.append(audit_record(run, profile=profile, broker=broker, reason=reason, redactor=redactor))
    return run


def refused_record(
    planned_saga: str,
    correlation_id: str,
    error: WorkbenchError,
    *,
    profile: str,
    broker: str,
    reason: str | None,
    override: bool,
    state: str,
    fingerprint: str,
) -> dict[str, Any]:
    """An audit record for an execution refused before any plan existed (e.g. past the pivot)."""
    empty = Plan(planned_saga, correlation_id, state, fingerprint, "", (), override=override)
    run = Execution(empty, outcome="refused", error=str(error))
    return audit_record(run, profile=profile, broker=broker, reason=reason)
