"""Saga instances reconstructed from observed events: pure (no broker, no clock of its own).

Events of a saga's topics are grouped by correlation id; each event is matched against every
step's ``done_when`` / ``failed_when`` / ``compensated_when``; the first match of each (step, role)
in time order counts. The state of an instance follows from its steps:

- FAILED: a step failed and nothing has been compensated yet;
- COMPENSATING: some compensation was observed, some completed compensatable step is not undone;
- COMPENSATED: compensations observed and every completed compensatable step undone;
- COMPLETED: the last step is done;
- STUCK: none of the above and no event for longer than the saga's ``stuck_after`` (at ``now``);
- RUNNING: otherwise.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from workbench.broker import Event
from workbench.sagas.definitions import Matcher, SagaDef, StepDef
from workbench.sagas.templates import event_attributes

State = Literal["RUNNING", "COMPLETED", "FAILED", "COMPENSATING", "COMPENSATED", "STUCK"]
STATES: tuple[State, ...] = ("RUNNING", "COMPLETED", "FAILED", "COMPENSATING", "COMPENSATED", "STUCK")
# How CLI tables and the TUI show them (Rich styles), one place for both.
STATE_STYLES = {
    "FAILED": "bold red",
    "STUCK": "red",
    "COMPENSATING": "yellow",
    "COMPENSATED": "yellow",
    "COMPLETED": "green",
}
STEP_MARKS = {"done": "✓", "failed": "✗", "compensated": "↺", "pending": "·"}
Role = Literal["done", "failed", "compensated"]
ROLES: tuple[Role, ...] = ("done", "failed", "compensated")
#: A matcher using only these names answers the same for every event of one (type, topic): its
#: answer is computed once per pair, on a stand-in event (matching is most of a scan's time).
_BY_TYPE = frozenset({"type", "topic", "true", "false", "null"})


@dataclass(frozen=True, slots=True)
class Observed:
    """One event of a saga, with where it is (a link to it) and what it did for which step."""

    step: str
    role: Role
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    type: str | None
    event_id: str | None  # the CloudEvents id, when it has one
    event: Event = field(repr=False, compare=False)

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def reference(self) -> str:
        """The event's id, or its position when it has none (for causation ids)."""
        return self.event_id or self.position

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "role": self.role,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "type": self.type,
            "id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class StepStatus:
    name: str
    kind: str
    done: Observed | None = None
    failed: Observed | None = None
    compensated: Observed | None = None

    @property
    def status(self) -> str:
        """compensated, failed, done or pending (the strongest fact observed)."""
        if self.compensated:
            return "compensated"
        if self.failed:
            return "failed"
        return "done" if self.done else "pending"


@dataclass(frozen=True)
class SagaInstance:
    saga: str
    correlation_id: str
    state: State
    steps: tuple[StepStatus, ...]
    events: tuple[Observed, ...]  # in time order
    started: int | None  # ms of the first observed event
    last: int | None  # ms of the newest
    fingerprint: str  # of the observed positions: any new or vanished event changes it
    #: Read from a window (``--since``) that cuts its first step off: its state, start and the steps
    #: not seen are unknown, not what is shown (see :func:`starts_observed`).
    partial: bool = False

    @property
    def failure(self) -> Observed | None:
        """The first failure observed."""
        return next((e for e in self.events if e.role == "failed"), None)

    @property
    def past_pivot(self) -> bool:
        """The pivot step completed: from there the saga only goes forward."""
        return any(s.kind == "pivot" and s.done is not None for s in self.steps)

    def step(self, name: str) -> StepStatus:
        return next(s for s in self.steps if s.name == name)

    def pending_compensations(self) -> list[StepStatus]:
        """Completed compensatable steps not compensated yet, newest first."""
        todo = [s for s in self.steps if s.kind == "compensatable" and s.done is not None and s.compensated is None]
        order = {s.name: i for i, s in enumerate(self.steps)}
        return sorted(todo, key=lambda s: (s.done.timestamp or 0, order[s.name]), reverse=True)  # type: ignore[union-attr]


def fingerprint(saga: str, correlation_id: str, events: Iterable[Observed]) -> str:
    """A short digest of the positions of a saga's observed events."""
    digest = hashlib.sha256(f"{saga}\0{correlation_id}".encode())
    for position in sorted({(e.topic, e.partition, e.offset) for e in events}):
        topic, partition, offset = position
        digest.update(f"\0{topic}/{partition}/{offset}".encode())
    return digest.hexdigest()[:16]


def state_of(steps: Sequence[StepStatus], last: int | None, now: int, stuck_after_ms: int) -> State:
    failed = any(s.failed for s in steps)
    compensations = any(s.compensated for s in steps)
    if compensations:
        pending = any(s.kind == "compensatable" and s.done and not s.compensated for s in steps)
        return "COMPENSATING" if pending else "COMPENSATED"
    if failed:
        return "FAILED"
    if steps and steps[-1].done:
        return "COMPLETED"
    if last is not None and now - last > stuck_after_ms:
        return "STUCK"
    return "RUNNING"


class Collector:
    """Feed it the events of a saga's topics (any order, batches), then ask for the instances.

    ``correlate`` gives an event's correlation id (None: not part of any saga). ``only``: keep
    just that correlation id (``saga show ID``), or those ids (a window widened for them), so a
    long scan holds little.
    """

    def __init__(
        self,
        definition: SagaDef,
        correlate: Callable[[Event], str | None],
        *,
        only: str | Collection[str] | None = None,
    ) -> None:
        self.definition = definition
        self.correlate = correlate
        self.only = frozenset((only,) if isinstance(only, str) else only) if only is not None else None
        self.scanned = 0  # events seen
        self.matched = 0  # events that matched a step
        self._by_id: dict[str, list[Observed]] = defaultdict(list)
        self._matchers = [
            (step, role, matcher)
            for step in definition.steps
            for role, matcher in _matchers_of(step)
            if matcher is not None
        ]
        self._by_type: dict[tuple[str | None, str], list[tuple[StepDef, Role]]] = {}

    def _hits(self, event: Event, type_: str | None) -> list[tuple[StepDef, Role]]:
        key = (type_, event.topic)
        cached = self._by_type.get(key)
        if cached is None:
            stand_in = Event(
                event.topic, 0, 0, None, None, None, () if type_ is None else (("ce_type", type_.encode()),)
            )
            cached = self._by_type[key] = [
                (step, role)
                for step, role, matcher in self._matchers
                if matcher.names <= _BY_TYPE and matcher(stand_in)
            ]
        rest = [
            (step, role) for step, role, matcher in self._matchers if not matcher.names <= _BY_TYPE and matcher(event)
        ]
        return cached + rest if rest else cached

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            self.scanned += 1
            corr = self.correlate(event)
            if corr is None or (self.only is not None and corr not in self.only):
                continue
            attributes = event_attributes(event)
            hits = self._hits(event, attributes.get("type"))
            if not hits:
                continue
            self.matched += 1
            for step, role in hits:
                self._by_id[corr].append(
                    Observed(
                        step.name,
                        role,
                        event.topic,
                        event.partition,
                        event.offset,
                        event.timestamp,
                        attributes.get("type"),
                        attributes.get("id"),
                        event,
                    )
                )

    def instances(self, now: int) -> list[SagaInstance]:
        """Every instance seen, oldest first."""
        found = [build(self.definition, corr, observed, now) for corr, observed in self._by_id.items()]
        return sorted(found, key=lambda i: (i.started or 0, i.correlation_id))


def _matchers_of(step: StepDef) -> list[tuple[Role, Matcher | None]]:
    return [("done", step.done_when), ("failed", step.failed_when), ("compensated", step.compensated_when)]


def build(definition: SagaDef, correlation_id: str, observed: Iterable[Observed], now: int) -> SagaInstance:
    """One instance from its observed events (pure)."""
    events = tuple(
        sorted(
            observed,
            key=lambda o: (
                o.timestamp if o.timestamp is not None else 0,
                o.topic,
                o.partition,
                o.offset,
                o.step,
                o.role,
            ),
        )
    )
    first: dict[tuple[str, Role], Observed] = {}
    for item in events:
        first.setdefault((item.step, item.role), item)
    steps = tuple(
        StepStatus(
            s.name,
            s.kind,
            first.get((s.name, "done")),
            first.get((s.name, "failed")),
            first.get((s.name, "compensated")),
        )
        for s in definition.steps
    )
    stamps = [e.timestamp for e in events if e.timestamp is not None]
    started, last = (min(stamps), max(stamps)) if stamps else (None, None)
    return SagaInstance(
        definition.name,
        correlation_id,
        state_of(steps, last, now, definition.stuck_after_ms),
        steps,
        events,
        started,
        last,
        fingerprint(definition.name, correlation_id, events),
    )


def starts_observed(definition: SagaDef, instance: SagaInstance) -> bool:
    """Whether the instance's first step was seen (done or failed): else a window cut its start off."""
    first = instance.step(definition.steps[0].name) if definition.steps else None
    return first is None or first.done is not None or first.failed is not None


def marked_partial(instance: SagaInstance) -> SagaInstance:
    return replace(instance, partial=True)


def count_by_state(instances: Iterable[SagaInstance]) -> Mapping[State, int]:
    counts = dict.fromkeys(STATES, 0)
    for instance in instances:
        counts[instance.state] += 1
    return counts
