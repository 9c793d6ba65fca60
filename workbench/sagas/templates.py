"""Compensation templates: ``{STEP.FIELD...}`` placeholders, filled only from what was observed.

A template is parsed once, when the saga definition is read (:func:`parse_template`), and filled
when a compensation is planned (:meth:`Template.render` with a :class:`TemplateContext`: the
correlation id, the saga's name and the event that completed each step). The event fields a
template (and the saga view) sees are :func:`event_field`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.broker import Event
from workbench.events import codecs

EVENT_FIELDS = ("key", "value", "headers", "type", "id", "topic", "partition", "offset", "timestamp")
MAX_TEMPLATE = 2000  # characters of one template
RESERVED = {"correlation_id", "saga"}  # placeholders that are not steps
_PATH_STEP = re.compile(r"\.([^.\[\]{}]+)|\[(\d+)\]")


class TemplateError(ValueError):
    """A template that cannot be parsed, or a placeholder the observed events cannot fill."""


@dataclass(frozen=True, slots=True)
class Ref:
    """One placeholder: ``root`` is ``correlation_id``, ``saga`` or a step name."""

    root: str
    path: tuple[str | int, ...] = ()  # the event field, then members and indexes

    def __str__(self) -> str:
        text = self.root
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return "{" + text + "}"


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(p for p in self.parts if isinstance(p, Ref))

    def render(self, context: TemplateContext) -> Any:
        """The filled text; a template that is a single placeholder keeps the referred value's type."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Ref):
            return context.resolve(self.parts[0])
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = context.resolve(part)
                out.append(value if isinstance(value, str) else json_text(value))
        return "".join(out)


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_template(text: str) -> Template:
    """Split ``text`` into literals and placeholders; raises :class:`TemplateError`."""
    if not isinstance(text, str):
        raise TemplateError(f"a template must be text, got {type(text).__name__}")
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"the template is too long ({len(text)} characters, at most {MAX_TEMPLATE})")
    parts: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i + 1 : i + 2] == ch:
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise TemplateError(f"unmatched '}}' at column {i + 1} (write '}}}}' for a literal brace)")
        if ch == "{":
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"unclosed '{{' at column {i + 1} (write '{{{{' for a literal brace)")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_ref(text[i + 1 : end], i + 1))
            i = end + 1
            continue
        literal.append(ch)
        i += 1
    if literal or not parts:
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def _parse_ref(inner: str, column: int) -> Ref:
    inner = inner.strip()
    root_match = re.match(r"[A-Za-z_][A-Za-z0-9_-]*", inner)
    if not root_match:
        raise TemplateError(
            f"placeholder at column {column} needs a name, e.g. {{correlation_id}} or {{STEP.value.id}}"
        )
    root, rest = root_match.group(0), inner[root_match.end() :]
    path: list[str | int] = []
    pos = 0
    while pos < len(rest):
        match = _PATH_STEP.match(rest, pos)
        if not match:
            raise TemplateError(
                f"placeholder {{{inner}}} at column {column}: cannot read {rest[pos:]!r} (use .member or [index])"
            )
        path.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if root in RESERVED:
        if path:
            raise TemplateError(f"placeholder {{{inner}}}: {{{root}}} has no members")
    elif not path or path[0] not in EVENT_FIELDS:
        raise TemplateError(
            f"placeholder {{{inner}}} at column {column}: after the step name comes an event "
            f"field, one of {', '.join(EVENT_FIELDS)}"
        )
    return Ref(root, tuple(path))


@dataclass
class TemplateContext:
    """What a template may use: the correlation id, the saga name, and each step's observed event."""

    correlation_id: str
    saga: str
    events: Mapping[str, Event]  # step name -> the event that completed it

    def resolve(self, ref: Ref) -> Any:
        if ref.root == "correlation_id":
            return self.correlation_id
        if ref.root == "saga":
            return self.saga
        event = self.events.get(ref.root)
        if event is None:
            raise TemplateError(f"{ref}: step {ref.root!r} has no observed event")
        value: Any = event_field(event, str(ref.path[0]))
        for part in ref.path[1:]:
            value = _member(value, part)
            if value is _MISSING:
                break
        if value is _MISSING or value is None:
            raise TemplateError(
                f"{ref}: the event of step {ref.root!r} at {event.topic}/{event.partition}/"
                f"{event.offset} has no such field"
            )
        return value


_MISSING = object()


def _member(container: Any, part: str | int) -> Any:
    if isinstance(container, dict) and isinstance(part, str):
        return container.get(part, _MISSING)
    if isinstance(container, list) and isinstance(part, int):
        return container[part] if part < len(container) else _MISSING
    return _MISSING


def event_field(event: Event, name: str) -> Any:
    """One of :data:`EVENT_FIELDS` of an event, as templates and the saga view see it."""
    if name == "key":
        key = codecs.decoded_key(event)
        if key.schema is not None and key.kind == "json":
            return key.value
        return None if event.key is None else event.key.decode("utf-8", "replace")
    if name == "value":
        decoded = codecs.decoded_value(event)
        return decoded.value if decoded.kind in ("json", "text") else None
    if name == "headers":
        return {k: bytes(v).decode("utf-8", "replace") for k, v in event.headers}
    if name in ("type", "id"):
        return event_attributes(event).get(name)
    return getattr(event, name)


def event_attributes(event: Event) -> dict[str, str]:
    """The event's CloudEvents attributes (``type``, ``id`` ...), ``{}`` when it is not one."""
    payload = None
    schema_decoded = event.metadata.get("decoded_value") if event.metadata else None
    if schema_decoded is not None:
        payload = schema_decoded.value if schema_decoded.kind == "json" else None
    elif (
        event.value
        and event.value.lstrip()[:1] == b"{"
        and not any(k.lower().startswith(("ce_", "ce-")) for k, _ in event.headers)
    ):
        decoded = codecs.decode(event.value)
        payload = decoded.value if decoded.kind == "json" else None
    return codecs.cloudevent_attributes(event.headers, payload)
