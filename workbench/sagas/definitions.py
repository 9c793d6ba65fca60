"""Saga definitions: the profile file's ``[sagas.NAME]`` tables, validated, with their templates.

A saga lives on a few topics; its events are tied together by a correlation id. Its steps, in
order, are *compensatable* (undone by publishing a compensating event), one *pivot* (the point of
no return) and *retriable* steps after it (they must eventually succeed: retried, never undone)::

    [sagas.order]
    topics = ["orders", "payments", "inventory", "shipping"]
    stuck_after = "15m"                     # RUNNING with no new event for this long: STUCK
    correlation = ["header:correlation_id"] # optional: rules replacing the [correlation] table

    [[sagas.order.steps]]
    name = "payment"
    kind = "compensatable"                  # compensatable | pivot | retriable
    done_when = 'type == "PaymentProcessed"'
    failed_when = 'type == "PaymentFailed"'
    compensated_when = 'type == "PaymentRefunded"'   # default: type == compensation.type
    [sagas.order.steps.compensation]
    topic = "payments"
    type = "PaymentRefunded"
    key = "{order.key}"
    headers = { reason = "saga compensation" }
    payload = { paymentId = "{payment.value.paymentId}", amount = "{payment.value.amount}" }
    confirmed_when = 'type == "RefundSettled"'       # optional: the event that confirms it took effect

Matchers are filter expressions (:mod:`workbench.events.filters`, the language of ``--filter``).
Templates are filled *only* from the saga's correlation id and the events observed for its steps:
``{correlation_id}``, ``{saga}``, ``{STEP.FIELD[.member|[N]]...}`` with FIELD one of
:data:`~workbench.sagas.templates.EVENT_FIELDS`; ``{{`` and ``}}`` are literal braces. A template that is one placeholder
alone keeps the JSON type of what it refers to (a number stays a number in the payload). A
template may refer to its own step and the steps before it, never to a later one (it may not
have happened). Every error names the file, the saga, the step and the field.

This module holds the definitions and their validation; the templates are
:mod:`workbench.sagas.templates`, and where the definitions come from (the profile file, else the
built-in saga) is :mod:`workbench.sagas.settings`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.broker import Event
from workbench.errors import ConfigError, UsageError
from workbench.events.correlation import DEFAULT_RULES
from workbench.positions import parse_duration
from workbench.sagas.templates import RESERVED, Template, TemplateError, json_text, parse_template

StepKind = Literal["compensatable", "pivot", "retriable"]
KINDS: tuple[StepKind, ...] = ("compensatable", "pivot", "retriable")
DEFAULT_STUCK_AFTER = "15m"

_SAGA_KEYS = {"topics", "steps", "stuck_after", "correlation", "description"}
_STEP_KEYS = {"name", "kind", "done_when", "failed_when", "compensated_when", "compensation", "description"}
_COMPENSATION_KEYS = {"topic", "type", "key", "headers", "payload", "confirmed_when", "source"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Matcher:
    """A compiled filter expression used as a step matcher."""

    text: str
    matches: Callable[[Event], bool] = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()  # the names the expression uses (see filters.NAMES)

    def __call__(self, event: Event) -> bool:
        return self.matches(event)


@dataclass(frozen=True)
class Compensation:
    topic: str
    type: str
    source: str
    key: Template | None
    headers: tuple[tuple[str, Template], ...]
    payload: Any  # JSON-like tree whose strings are Templates
    confirmed_when: Matcher | None


@dataclass(frozen=True)
class StepDef:
    name: str
    kind: StepKind
    done_when: Matcher
    failed_when: Matcher | None = None
    compensated_when: Matcher | None = None
    compensation: Compensation | None = None
    description: str = ""


@dataclass(frozen=True)
class SagaDef:
    name: str
    topics: tuple[str, ...]
    steps: tuple[StepDef, ...]
    stuck_after_ms: int
    source: str  # the profile file, or "built-in"
    correlation: tuple[str, ...] | None = None  # rules replacing the [correlation] table
    description: str = ""

    @property
    def pivot(self) -> StepDef:
        return next(s for s in self.steps if s.kind == "pivot")

    def step(self, name: str) -> StepDef:
        return next(s for s in self.steps if s.name == name)

    def correlator(self, default: Callable[[Event], str | None] | None = None) -> Callable[[Event], str | None]:
        """How this saga finds an event's correlation id: its own rules, else ``default``."""
        if self.correlation is not None:
            from workbench.events import correlation

            rules = correlation.CorrelationRules(
                correlation=correlation.parse_rules(list(self.correlation), f"{self.source}: saga {self.name!r}")
            )
            return rules.correlation_id
        return default or _default_correlator()


def _default_correlator() -> Callable[[Event], str | None]:
    return lambda event: DEFAULT_RULES.correlation_id(event)


def parse_sagas(tables: Mapping[str, Any], source: str) -> dict[str, SagaDef]:
    """Every ``[sagas.NAME]`` table, validated; raises ConfigError naming file, saga, step and field.

    A non-table entry of ``[sagas]`` is a setting (``audit_log``), not a saga.
    """
    return {name: parse_saga(name, body, source) for name, body in tables.items() if name not in SETTINGS}


SETTINGS = {"audit_log"}  # keys of [sagas] that are settings, not sagas


def parse_saga(name: str, body: Any, source: str) -> SagaDef:
    where = f"{source}: saga {name!r}"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} must be a table ([sagas.{name}])")
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a saga name is letters, digits, '_' and '-'")
    _known_keys(body, _SAGA_KEYS, where)
    topics = body.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) and t for t in topics):
        raise ConfigError(
            f"{where}, field 'topics': a non-empty list of topic names is required",
            hint='e.g. topics = ["orders", "payments"]',
        )
    stuck_text = body.get("stuck_after", DEFAULT_STUCK_AFTER)
    try:
        stuck_after = parse_duration(stuck_text if isinstance(stuck_text, str) else repr(stuck_text))
    except UsageError as exc:
        raise ConfigError(f"{where}, field 'stuck_after': {exc}", hint=exc.hint) from None
    correlation = body.get("correlation")
    if correlation is not None:
        if not isinstance(correlation, list) or not correlation or not all(isinstance(r, str) for r in correlation):
            raise ConfigError(
                f"{where}, field 'correlation': a non-empty list of rules is required",
                hint='e.g. correlation = ["header:correlation_id", "json:$.orderId"]',
            )
        correlation = tuple(correlation)
    description = _optional_text(body, "description", where)
    raw_steps = body.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f"{where}, field 'steps': at least one step is required ([[sagas.{name}.steps]])")
    steps: list[StepDef] = []
    for index, raw in enumerate(raw_steps):
        steps.append(_parse_step(index, raw, where, [s.name for s in steps]))
    _check_order(steps, where)
    saga = SagaDef(name, tuple(topics), tuple(steps), stuck_after, source, correlation, description)
    if correlation is not None:
        try:
            saga.correlator()
        except ImportError:  # pragma: no cover - the correlation module ships with the workbench
            raise ConfigError(f"{where}, field 'correlation': correlation rules are not available") from None
    return saga


def _known_keys(body: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in body:
        if key not in known:
            raise ConfigError(f"{where}: unknown field {key!r}", hint=f"expected: {', '.join(sorted(known))}")


def _optional_text(body: Mapping[str, Any], key: str, where: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}, field {key!r}: must be text, got {type(value).__name__}")
    return value


def _parse_step(index: int, raw: Any, saga_where: str, earlier: Sequence[str]) -> StepDef:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{saga_where}, step {index + 1}: must be a table ([[sagas.NAME.steps]])")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{saga_where}, step {index + 1}, field 'name': a name of letters, digits, '_' and '-' is required"
        )
    where = f"{saga_where}, step {name!r}"
    if name in RESERVED:
        raise ConfigError(f"{where}, field 'name': {name!r} is reserved for templates")
    if name in earlier:
        raise ConfigError(f"{where}, field 'name': a step of that name comes earlier")
    _known_keys(raw, _STEP_KEYS, where)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}, field 'kind': {kind!r} is not one of {', '.join(KINDS)}")
    done_when = _matcher(raw, "done_when", where, required=True)
    assert done_when is not None
    failed_when = _matcher(raw, "failed_when", where)
    compensated_when = _matcher(raw, "compensated_when", where)
    compensation = None
    if kind == "compensatable":
        if "compensation" not in raw:
            raise ConfigError(
                f"{where}, field 'compensation': a compensatable step needs a compensation table",
                hint='[sagas.NAME.steps.compensation] with topic, type, payload (or make it kind = "retriable")',
            )
        compensation = _parse_compensation(raw["compensation"], where, [*earlier, name])
        if compensated_when is None:
            compensated_when = _compile(f"type == {json_text(compensation.type)}", f"{where}, field 'compensated_when'")
    else:
        for key in ("compensation", "compensated_when"):
            if key in raw:
                raise ConfigError(f"{where}, field {key!r}: only a compensatable step is undone ({name!r} is {kind})")
    return StepDef(
        name, kind, done_when, failed_when, compensated_when, compensation, _optional_text(raw, "description", where)
    )


def _matcher(raw: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> Matcher | None:
    if key not in raw:
        if required:
            raise ConfigError(f"{where}, field {key!r}: required (a filter expression, e.g. 'type == \"OrderPlaced\"')")
        return None
    text = raw[key]
    if not isinstance(text, str):
        raise ConfigError(f"{where}, field {key!r}: must be a filter expression (text), got {type(text).__name__}")
    return _compile(text, f"{where}, field {key!r}")


def _compile(text: str, where: str) -> Matcher:
    from workbench.events.filters import FilterError, compile_filter

    try:
        compiled = compile_filter(text)
    except FilterError as exc:
        raise ConfigError(f"{where}: {exc}", hint="the language of --filter (see the README)") from None
    return Matcher(text, compiled.matches, compiled.names)


def _parse_compensation(raw: Any, step_where: str, visible: Sequence[str]) -> Compensation:
    def at(key: str) -> str:
        return f"{step_where}, field 'compensation.{key}'"

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{step_where}, field 'compensation': must be a table")
    _known_keys(raw, _COMPENSATION_KEYS, f"{step_where}, field 'compensation'")
    for name in ("topic", "type"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise ConfigError(f"{at(name)}: required text (the {'destination' if name == 'topic' else 'event type'})")
    source = raw.get("source", "/event-workbench/saga")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{at('source')}: must be text")
    key = _template(raw["key"], at("key"), visible) if "key" in raw else None
    headers_raw = raw.get("headers", {})
    if not isinstance(headers_raw, Mapping):
        raise ConfigError(f"{at('headers')}: must be a table of text values")
    headers = tuple((str(k), _template(v, at(f"headers.{k}"), visible)) for k, v in headers_raw.items())
    payload = _payload_tree(raw.get("payload", {}), step_where, "compensation.payload", visible)
    confirmed = None
    if "confirmed_when" in raw:
        if not isinstance(raw["confirmed_when"], str):
            raise ConfigError(f"{at('confirmed_when')}: must be a filter expression (text)")
        confirmed = _compile(raw["confirmed_when"], at("confirmed_when"))
    return Compensation(raw["topic"], raw["type"], source, key, headers, payload, confirmed)


def _payload_tree(value: Any, step_where: str, path: str, visible: Sequence[str]) -> Any:
    if isinstance(value, str):
        return _template(value, f"{step_where}, field '{path}'", visible)
    if isinstance(value, Mapping):
        return {str(k): _payload_tree(v, step_where, f"{path}.{k}", visible) for k, v in value.items()}
    if isinstance(value, list):
        return [_payload_tree(v, step_where, f"{path}[{i}]", visible) for i, v in enumerate(value)]
    if isinstance(value, bool | int | float) or value is None:
        return value
    raise ConfigError(f"{step_where}, field '{path}': {type(value).__name__} values cannot go into a JSON payload")


def _template(value: Any, where: str, visible: Sequence[str]) -> Template:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be text (a template), got {type(value).__name__}")
    try:
        template = parse_template(value)
    except TemplateError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for ref in template.refs:
        if ref.root not in RESERVED and ref.root not in visible:
            raise ConfigError(
                f"{where}: {ref} refers to no step at or before this one",
                hint=f"known here: correlation_id, saga, {', '.join(visible)}",
            )
    return template


def _check_order(steps: Sequence[StepDef], where: str) -> None:
    pivots = [s for s in steps if s.kind == "pivot"]
    if len(pivots) != 1:
        found = ", ".join(repr(p.name) for p in pivots) or "none"
        raise ConfigError(
            f"{where}, field 'steps': exactly one step must be kind = \"pivot\" (found {found})",
            hint="the pivot is the step after which the saga only goes forward",
        )
    at = steps.index(pivots[0])
    for i, step in enumerate(steps):
        if step.kind == "compensatable" and i > at:
            raise ConfigError(
                f"{where}, step {step.name!r}, field 'kind': a compensatable step must come before "
                f"the pivot {pivots[0].name!r}"
            )
        if step.kind == "retriable" and i < at:
            raise ConfigError(
                f"{where}, step {step.name!r}, field 'kind': a retriable step must come after "
                f"the pivot {pivots[0].name!r}"
            )
