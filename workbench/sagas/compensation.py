"""Saga compensations: observe a saga on the broker, plan its compensations, execute, confirm, audit.

The plan is built only from observed events: the completed compensatable steps not compensated
yet, newest first. It is refused past a completed pivot (and for a saga still RUNNING) unless
``override``. Each compensating event carries the correlation id, a causation id (the failure
event's id) and a deterministic idempotency key, ``uuid5(saga/correlation id/step)``, used as
its CloudEvents id: before publishing, an event with that id already on the destination means
"already published", so executing twice publishes nothing new. Execution re-reads the saga first
and refuses when its fingerprint (the positions of its events) changed since the plan.
Afterwards it watches, for a bounded time, for the confirming events (``confirmed_when``, else the
step's ``compensated_when`` read back). Every execution attempt, refused or failed ones too, is
appended to the audit log (:mod:`workbench.sagas.audit`), shown by ``workbench saga history``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from workbench.broker import (
    BrokerError,
    Connection,
    Event,
    NotFound,
    OutgoingEvent,
    Position,
    Unsupported,
)
from workbench.errors import CompensationRefused, ExitCode, WorkbenchError
from workbench.events.envelope import format_timestamp
from workbench.sagas.audit import AuditLog, who
from workbench.sagas.definitions import (
    SagaDef,
    Template,
    TemplateContext,
    TemplateError,
)
from workbench.sagas.instances import Collector, SagaInstance

IDEMPOTENCY_NAMESPACE = uuid.UUID("5f0e6c1a-8d2b-5c4e-9a7f-3b1d2e4c6a80")
POLL_SECONDS = 0.5  # between confirmation scans
SCAN_MARGIN_MS = 60_000  # scans for earlier copies start this long before the saga (coarse broker clocks)

Correlate = Callable[[Event], str | None]
Progress = Callable[[int], None]


def idempotency_key(saga: str, correlation_id: str, step: str) -> str:
    """The compensating event's id: the same saga, correlation id and step always give the same one."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{saga}/{correlation_id}/{step}"))


# --------------------------------------------------------------------------- observing


async def observe(
    conn: Connection,
    definition: SagaDef,
    correlate: Correlate,
    *,
    now: int,
    since_ms: int | None = None,
    only: str | None = None,
    on_scanned: Progress | None = None,
) -> list[SagaInstance]:
    """Read the saga's topics (bounded: up to their ends now; from ``since_ms`` when given)."""
    collector = Collector(definition, correlate, only=only)
    start = Position.beginning() if since_ms is None else Position.at_time(since_ms)
    for topic in definition.topics:
        await _scan(conn, topic, start, collector.add, on_scanned, definition)
    return collector.instances(now)


async def _scan(
    conn: Connection,
    topic: str,
    start: Position,
    sink: Callable[[list[Event]], None],
    on_scanned: Progress | None,
    definition: SagaDef | None = None,
) -> None:
    try:
        async with aclosing(conn.read(topic, start, batch_size=2000)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                sink(batch)
                if on_scanned:
                    on_scanned(len(batch))
    except NotFound as exc:
        if definition is None:
            raise
        raise _missing(definition, topic, exc) from exc


async def expected_events(conn: Connection, definitions: Iterable[SagaDef]) -> int:
    """How many events a full scan of the sagas' topics reads (for progress bars); a missing topic
    raises NotFound naming the saga."""
    total, seen = 0, set()
    for definition in definitions:
        for topic in definition.topics:
            if topic in seen:
                continue
            seen.add(topic)
            try:
                total += (await conn.describe_topic(topic)).count
            except NotFound as exc:
                raise _missing(definition, topic, exc) from exc
    return total


def _missing(definition: SagaDef, topic: str, exc: NotFound) -> NotFound:
    return NotFound(
        f"saga {definition.name!r} ({definition.source}) lives on topic {topic!r}: {exc}",
        hint="create the topic, or fix the saga's topics (`workbench demo` seeds the demo's)",
    )


async def find_instance(
    conn: Connection,
    definitions: Sequence[SagaDef],
    correlate_for: Callable[[SagaDef], Correlate],
    correlation_id: str,
    *,
    now: int,
    since_ms: int | None = None,
    on_scanned: Progress | None = None,
) -> tuple[SagaDef, SagaInstance]:
    """The instance of ``correlation_id`` in the first saga that has it; NotFound-like error otherwise."""
    for definition in definitions:
        found = await observe(
            conn,
            definition,
            correlate_for(definition),
            now=now,
            since_ms=since_ms,
            only=correlation_id,
            on_scanned=on_scanned,
        )
        if found:
            return definition, found[0]
    names = ", ".join(d.name for d in definitions)
    raise SagaNotFound(
        f"no saga instance with correlation id {correlation_id!r} (sagas: {names})",
        hint="`workbench saga list` shows the instances; --since may exclude older ones",
    )


class SagaNotFound(WorkbenchError):
    exit_code = ExitCode.NOT_FOUND


# --------------------------------------------------------------------------- planning (pure)


@dataclass(frozen=True)
class PlannedEvent:
    """One compensating event, exactly as it would be published."""

    step: str
    topic: str
    event_id: str  # the idempotency key
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes
    confirm: str  # the matcher that confirms it took effect
    confirm_by: str  # "confirmed_when" or "compensated_when"

    def outgoing(self) -> OutgoingEvent:
        return OutgoingEvent(value=self.value, key=self.key, headers=self.headers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "topic": self.topic,
            "id": self.event_id,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "headers": [[k, v.decode("utf-8", "replace")] for k, v in self.headers],
            "payload": json.loads(self.value),
            "confirm": {"by": self.confirm_by, "when": self.confirm},
        }


@dataclass(frozen=True)
class Plan:
    saga: str
    correlation_id: str
    state: str
    fingerprint: str
    causation_id: str
    events: tuple[PlannedEvent, ...]  # newest step first
    already: tuple[str, ...] = ()  # steps compensated before (skipped)
    notes: tuple[str, ...] = ()
    override: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "saga": self.saga,
            "correlation_id": self.correlation_id,
            "state": self.state,
            "fingerprint": self.fingerprint,
            "causation_id": self.causation_id,
            "override": self.override,
            "already_compensated": list(self.already),
            "notes": list(self.notes),
            "events": [e.as_dict() for e in self.events],
        }


def plan(definition: SagaDef, instance: SagaInstance, *, override: bool = False, now_ms: int | None = None) -> Plan:
    """The compensations of one instance; CompensationRefused when unsafe (unless ``override``)."""
    where = f"saga {definition.name!r} {instance.correlation_id!r}"
    notes: list[str] = []
    if instance.past_pivot:
        pivot = instance.step(definition.pivot.name)
        assert pivot.done is not None
        if not override:
            raise CompensationRefused(
                f"{where} is past its pivot: step {pivot.name!r} completed at {pivot.done.position}; from there "
                f"the saga only goes forward (retry its failed step instead)",
                hint="--override compensates the steps before the pivot anyway",
            )
        notes.append(f"override: past the pivot {pivot.name!r}, which has no compensation")
    if instance.state == "RUNNING" and not override:
        raise CompensationRefused(
            f"{where} is still RUNNING: it may yet complete",
            hint="wait until it is FAILED or STUCK, or pass --override",
        )
    if instance.state == "COMPLETED" and not override:
        raise CompensationRefused(
            f"{where} COMPLETED: there is nothing to compensate", hint="--override compensates a completed saga"
        )
    cause = instance.failure or (instance.events[-1] if instance.events else None)
    causation = cause.reference if cause is not None else instance.correlation_id
    context = TemplateContext(
        instance.correlation_id, definition.name, {s.name: s.done.event for s in instance.steps if s.done is not None}
    )
    stamp = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    events = []
    for status in instance.pending_compensations():
        step = definition.step(status.name)
        assert step.compensation is not None and step.compensated_when is not None
        events.append(
            _planned(definition, step.name, step.compensation, step.compensated_when.text, context, causation, stamp)
        )
    already = tuple(s.name for s in instance.steps if s.compensated is not None)
    if not events:
        notes.append(
            "nothing to compensate: every completed compensatable step is compensated already"
            if already
            else "nothing to compensate: no compensatable step completed"
        )
    return Plan(
        definition.name,
        instance.correlation_id,
        instance.state,
        instance.fingerprint,
        causation,
        tuple(events),
        already,
        tuple(notes),
        override,
    )


def _planned(
    definition: SagaDef,
    step: str,
    compensation: Any,
    compensated_when: str,
    context: TemplateContext,
    causation: str,
    now_ms: int,
) -> PlannedEvent:
    event_id = idempotency_key(definition.name, context.correlation_id, step)

    def fill(template: Template, what: str) -> Any:
        try:
            return template.render(context)
        except TemplateError as exc:
            raise CompensationRefused(
                f"saga {definition.name!r}, step {step!r}, field 'compensation.{what}': cannot fill "
                f"{template.text!r}: {exc}",
                hint=f"check the saga definition ({definition.source})",
            ) from None

    def tree(value: Any, path: str) -> Any:
        if isinstance(value, Template):
            return fill(value, path)
        if isinstance(value, dict):
            return {k: tree(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    key = None if compensation.key is None else _text(fill(compensation.key, "key")).encode()
    iso = str(format_timestamp(now_ms))
    headers: list[tuple[str, str]] = [
        ("ce_specversion", "1.0"),
        ("ce_type", compensation.type),
        ("ce_source", compensation.source),
        ("ce_id", event_id),
        ("ce_time", iso),
        ("content-type", "application/json"),
        ("correlation_id", context.correlation_id),
        ("causation_id", causation),
        ("workbench_saga", definition.name),
        ("workbench_step", step),
    ]
    reserved = {name for name, _ in headers}
    for name, template in compensation.headers:
        if name.lower() in reserved:
            continue  # the saga's own ids are never overridden by a template
        headers.append((name, _text(fill(template, f"headers.{name}"))))
    value = json.dumps(tree(compensation.payload, "payload"), ensure_ascii=False, separators=(",", ":")).encode()
    confirm, by = (
        (compensation.confirmed_when.text, "confirmed_when")
        if compensation.confirmed_when
        else (compensated_when, "compensated_when")
    )
    return PlannedEvent(
        step, compensation.topic, event_id, key, tuple((k, v.encode()) for k, v in headers), value, confirm, by
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- executing


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
    await _scan(conn, topic, start, sink, None)
    return found[0] if found else None


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
    from workbench.sagas.definitions import Matcher

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
            await _scan(conn, topic, start, sink, None)
        if all(r.confirmed for _, r in items.values()) or time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))


# --------------------------------------------------------------------------- settings and audit records


@dataclass(frozen=True)
class SagaSettings:
    """What every saga verb (CLI or TUI) takes from the profile file: definitions, rules, audit log."""

    definitions: Mapping[str, SagaDef]
    rules: Any  # workbench.events.correlation.CorrelationRules
    audit: AuditLog

    @classmethod
    def load(cls, settings: Any) -> SagaSettings:
        """From a loaded :class:`workbench.config.Config`; ConfigError names what is wrong."""
        from workbench.events import correlation
        from workbench.sagas import definitions as sagas

        return cls(
            sagas.definitions(settings),
            correlation.rules_from_config(settings),
            AuditLog(sagas.audit_log_setting(settings)),
        )

    def correlate_for(self, definition: SagaDef) -> Correlate:
        return definition.correlator(self.rules.correlation_id)


def audit_record(
    execution: Execution, *, profile: str, broker: str, reason: str | None, at_ms: int | None = None
) -> dict[str, Any]:
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
        "plan": [e.as_dict() for e in plan_.events],
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
) -> Execution:
    """:func:`execute`, with one audit record whatever happens (refused, failed, interrupted)."""
    run = Execution(planned)
    try:
        await execute(conn, definition, planned, correlate, since_ms=since_ms, wait_s=wait_s, execution=run)
    except BaseException as exc:
        run.outcome = "refused" if isinstance(exc, CompensationRefused) else "failed"
        run.error = str(exc) or type(exc).__name__
        raise
    finally:
        audit.append(audit_record(run, profile=profile, broker=broker, reason=reason))
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


__all__ = [
    "Execution",
    "Plan",
    "PlannedEvent",
    "SagaNotFound",
    "StepResult",
    "execute",
    "execute_and_record",
    "find_instance",
    "idempotency_key",
    "observe",
    "plan",
]
