"""Planning a saga's compensations (pure): which events would be published, exactly as published.

The plan is built only from observed events: the completed compensatable steps not compensated
yet, newest first. It is refused past a completed pivot (and for a saga still RUNNING or
COMPLETED) unless ``override``. Each compensating event carries the correlation id, a causation
id (the failure event's id) and a deterministic idempotency key, ``uuid5(saga/correlation
id/step)``, used as its CloudEvents id, so executing twice publishes nothing new.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from workbench.broker import Event, OutgoingEvent
from workbench.errors import CompensationRefused
from workbench.events.envelope import format_timestamp
from workbench.events.redaction import REDACTED_HEADER, Redactor
from workbench.sagas.definitions import SagaDef
from workbench.sagas.instances import SagaInstance
from workbench.sagas.templates import Template, TemplateContext, TemplateError

__all__ = ["IDEMPOTENCY_NAMESPACE", "Plan", "PlannedEvent", "idempotency_key", "plan"]

IDEMPOTENCY_NAMESPACE = uuid.UUID("5f0e6c1a-8d2b-5c4e-9a7f-3b1d2e4c6a80")


def idempotency_key(saga: str, correlation_id: str, step: str) -> str:
    """The compensating event's id: the same saga, correlation id and step always give the same one."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{saga}/{correlation_id}/{step}"))


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

    def redacted(self, redactor: Redactor) -> PlannedEvent:
        """This event as a person sees it (a dry run): key, headers and payload masked by the [mask]
        rules; what is published stays the original."""
        shown = redactor.redact(Event(self.topic, 0, 0, None, self.key, self.value, self.headers))
        headers = tuple(h for h in shown.headers if h[0] != REDACTED_HEADER)
        return replace(self, key=shown.key, headers=headers, value=shown.value or b"null")

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

    def redacted(self, redactor: Redactor | None) -> Plan:
        """The plan as a dry run shows it (see :meth:`PlannedEvent.redacted`); itself without rules."""
        if redactor is None:
            return self
        return replace(self, events=tuple(e.redacted(redactor) for e in self.events))

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
