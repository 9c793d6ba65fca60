"""Correlation and causation ids of events, by configurable rules tried in order.

A rule is one short string, the same in the profile file and in code::

    header:NAME        a header (case-insensitive; its last occurrence)
    property:NAME      a broker property in Event.metadata (RabbitMQ: the AMQP correlation_id)
    ce:ATTRIBUTE       a CloudEvents attribute, binary or structured (ce:subject, ce:correlationid)
    traceparent        the trace id of a valid W3C traceparent (CloudEvents extension, then header)
    json:$.PATH        a member of the JSON value ($.correlationId, $.data.orderId, $.items[0].id)
    data:$.PATH        the same inside the CloudEvent's data: the ``data`` member of a structured
                       CloudEvent, else the value itself

The profile file's ``[correlation]`` table replaces the default order::

    [correlation]
    rules = ["header:correlation_id", "ce:subject", "json:$.data.orderId"]
    causation = ["header:causation_id", "json:$.causationId"]

The first rule giving a non-empty id wins; numbers count (as their text), empty strings, booleans,
objects and arrays do not. Extraction is pure and never raises on any bytes.

The default correlation rules (:data:`DEFAULT_RULES`), first match wins:

1. a header ``correlation_id``, ``correlationId`` or ``x-correlation-id`` (case-insensitive; the
   last occurrence of the first name present, in that order), then the AMQP ``correlation_id``
   property (``Event.metadata``);
2. the CloudEvents extension attribute ``correlationid`` (binary or structured mode);
3. the trace id of a valid W3C ``traceparent`` (CloudEvents extension, then plain header);
4. a member ``correlationId`` / ``correlation_id`` of the JSON value, then of the ``data`` of a
   structured CloudEvent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.broker import Event
from workbench.errors import ConfigError
from workbench.events import codecs

__all__ = [
    "DEFAULT_CAUSATION",
    "DEFAULT_CORRELATION",
    "DEFAULT_RULES",
    "CorrelationRules",
    "Ids",
    "Rule",
    "parse_rule",
    "parse_rules",
    "rules_from_config",
]

#: The rule kinds and the shape of each (shown in errors).
KINDS = {
    "header": "header:NAME",
    "property": "property:NAME",
    "ce": "ce:ATTRIBUTE",
    "traceparent": "traceparent",
    "json": "json:$.PATH",
    "data": "data:$.PATH",
}

# `$` then steps: .name, ['name'] / ["name"], [index]
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(?:'([^']*)'|"([^"]*)"|(\d+))\]""")
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z:-]+\Z")  # an HTTP-ish token, plus ':' (cloudEvents:x)


@dataclass(frozen=True, slots=True)
class Rule:
    """One way to find an id. ``path`` is the parsed JSON path (member names and indexes)."""

    kind: str
    name: str = ""
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        return self.kind if self.kind == "traceparent" else f"{self.kind}:{self.name}"

    def extract(self, view: _View) -> str | None:
        if self.kind == "header":
            return view.header(self.name)
        if self.kind == "property":
            return codecs.id_text(view.event.metadata.get(self.name)) if view.event.metadata else None
        if self.kind == "ce":
            return codecs.id_text(view.attributes().get(self.name))
        if self.kind == "traceparent":
            for candidate in (view.attributes().get("traceparent"), view.traceparent_header()):
                ids = codecs.parse_traceparent(candidate)
                if ids is not None:
                    return ids[0]
            return None
        root = view.payload() if self.kind == "json" else view.data()
        return codecs.id_text(_walk(root, self.path))


def parse_rule(spec: Any, where: str = "rule") -> Rule:
    """A rule from its text; :class:`ConfigError` naming ``where`` when it is not one."""
    expected = ", ".join(KINDS.values())
    if not isinstance(spec, str):
        raise ConfigError(
            f'{where} must be a string like "header:correlation_id", got {type(spec).__name__}',
            hint=f"rule kinds: {expected}",
        )
    kind, colon, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind not in KINDS:
        raise ConfigError(f"{where} = {spec!r}: unknown rule kind {kind!r}", hint=f"rule kinds: {expected}")
    if kind == "traceparent":
        if colon and arg:
            raise ConfigError(f"{where} = {spec!r}: traceparent takes no argument", hint='write just "traceparent"')
        return Rule("traceparent")
    if not arg:
        raise ConfigError(f"{where} = {spec!r}: missing the part after ':'", hint=f"e.g. {KINDS[kind]}")
    if kind in ("json", "data"):
        return Rule(kind, arg, _parse_path(arg, f"{where} = {spec!r}"))
    if not _NAME.match(arg):
        raise ConfigError(f"{where} = {spec!r}: {arg!r} is not a valid name")
    # Headers and CloudEvents attributes are matched case-insensitively; broker properties are not.
    return Rule(kind, arg if kind == "property" else arg.lower())


def _parse_path(text: str, where: str) -> tuple[str | int, ...]:
    if not text.startswith("$"):
        raise ConfigError(f"{where}: a JSON path starts with '$'", hint="e.g. $.correlationId or $.data.orderId")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            raise ConfigError(
                f"{where}: bad JSON path at column {pos + 1}: {text[pos:]!r}",
                hint="steps are .name, ['name'] or [index], e.g. $.data.items[0].id",
            )
        name, single, double, index = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(name if name is not None else (single if single is not None else double))
        pos = match.end()
    if not steps:
        raise ConfigError(f"{where}: the JSON path '$' names the whole value", hint="e.g. $.correlationId")
    return tuple(steps)


def parse_rules(specs: Any, where: str) -> tuple[Rule, ...]:
    """A non-empty list of rule strings, each error naming ``where[index]``."""
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where} must be a non-empty list of rules", hint=f"rule kinds: {', '.join(KINDS.values())}")
    return tuple(parse_rule(spec, f"{where}[{i}]") for i, spec in enumerate(specs))


#: The default correlation rules (the order the module docstring documents).
DEFAULT_CORRELATION: tuple[Rule, ...] = tuple(
    parse_rule(spec)
    for spec in (
        "header:correlation_id",
        "header:correlationid",
        "header:x-correlation-id",
        "property:correlation_id",
        "ce:correlationid",
        "traceparent",
        "json:$.correlationId",
        "json:$.correlation_id",
        "data:$.correlationId",
        "data:$.correlation_id",
    )
)
#: The default causation rules: which event caused this one, where the producer says so.
DEFAULT_CAUSATION: tuple[Rule, ...] = tuple(
    parse_rule(spec)
    for spec in (
        "header:causation_id",
        "header:causationid",
        "header:x-causation-id",
        "ce:causationid",
        "json:$.causationId",
        "json:$.causation_id",
        "data:$.causationId",
        "data:$.causation_id",
    )
)


@dataclass(frozen=True, slots=True)
class Ids:
    """What the rules found in one event."""

    correlation: str | None
    causation: str | None


@dataclass(frozen=True)
class CorrelationRules:
    """Ordered rules for the correlation id and for the causation id."""

    correlation: tuple[Rule, ...] = DEFAULT_CORRELATION
    causation: tuple[Rule, ...] = DEFAULT_CAUSATION

    def correlation_id(self, event: Event, decoded_value: codecs.Decoded | None = None) -> str | None:
        """The first id a correlation rule finds, or None.

        ``decoded_value`` is the value decoded with ``codecs.decode`` (``auto``) when the caller has
        it; otherwise the value is decoded here only if a rule needs it and it looks like JSON.
        """
        return _first(self.correlation, _View(event, decoded_value))

    def causation_id(self, event: Event, decoded_value: codecs.Decoded | None = None) -> str | None:
        return _first(self.causation, _View(event, decoded_value))

    def ids(self, event: Event, decoded_value: codecs.Decoded | None = None) -> Ids:
        """Both ids, decoding the value at most once."""
        view = _View(event, decoded_value)
        return Ids(_first(self.correlation, view), _first(self.causation, view))

    def describe(self) -> dict[str, list[str]]:
        return {"correlation": [str(r) for r in self.correlation], "causation": [str(r) for r in self.causation]}


DEFAULT_RULES = CorrelationRules()

_TABLE_KEYS = {"rules": "correlation", "causation": "causation"}


def rules_from_table(table: Mapping[str, Any] | None, path: Path | str | None) -> CorrelationRules:
    """Rules from a ``[correlation]`` table (``rules``, ``causation``; each replaces its default)."""
    if not table:
        return DEFAULT_RULES
    source = f"{path}: " if path else ""
    for key in table:
        if key not in _TABLE_KEYS:
            raise ConfigError(f"{source}[correlation]: unknown field {key!r}", hint="expected: rules, causation")
    fields = {
        attr: parse_rules(table[key], f"{source}[correlation] {key}")
        for key, attr in _TABLE_KEYS.items()
        if key in table
    }
    return CorrelationRules(**fields)


def rules_from_config(config: Any) -> CorrelationRules:
    """The rules of a loaded :class:`workbench.config.Config` (its ``[correlation]`` table)."""
    return rules_from_table(getattr(config, "correlation", None), getattr(config, "path", None))


# --------------------------------------------------------------------------- extraction


def _first(rules: Sequence[Rule], view: _View) -> str | None:
    for rule in rules:
        found = rule.extract(view)
        if found:
            return found
    return None


class _View:
    """What the rules look at in one event, each part computed at most once and only when asked."""

    __slots__ = ("_attributes", "_decoded", "_headers", "_payload_done", "_traceparent", "event")

    def __init__(self, event: Event, decoded: codecs.Decoded | None) -> None:
        self.event = event
        self._decoded = decoded
        self._headers: dict[str, bytes | str] | None = None
        self._attributes: dict[str, str] | None = None
        self._traceparent: str | None = None
        self._payload_done = decoded is not None

    def header(self, name: str) -> str | None:
        if self._headers is None:
            self._headers = {n.lower(): v for n, v in self.event.headers} if self.event.headers else {}
        value = self._headers.get(name)
        return None if value is None else (codecs._header_text(value) or None)

    def payload(self) -> Any:
        """The value parsed as JSON (None when it is not a JSON object or array)."""
        if not self._payload_done:
            self._payload_done = True
            schema_decoded = self.event.metadata.get("decoded_value") if self.event.metadata else None
            value = self.event.value
            if schema_decoded is not None:
                self._decoded = schema_decoded
            elif value and value.lstrip(b" \t\r\n")[:1] in (b"{", b"["):
                self._decoded = codecs.decode(value)
        decoded = self._decoded
        return decoded.value if decoded is not None and decoded.kind == "json" else None

    def data(self) -> Any:
        """The data of a structured CloudEvent, else the value itself."""
        payload = self.payload()
        if isinstance(payload, dict) and "specversion" in payload and isinstance(payload.get("data"), dict):
            return payload["data"]
        return payload

    def attributes(self) -> dict[str, str]:
        if self._attributes is None:
            attributes, self._traceparent = codecs._binary_attributes(self.event.headers)
            if not attributes:
                attributes = codecs._structured_attributes(self.payload())
            self._attributes = attributes
        return self._attributes

    def traceparent_header(self) -> str | None:
        self.attributes()
        return self._traceparent


def _walk(root: Any, path: Iterable[str | int]) -> Any:
    node = root
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
            node = node[step]
        elif isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return node
