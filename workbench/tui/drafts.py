"""What the publish dialog edits, as plain data: JSON checking, header lines, templates, the events.

No Textual here, so every rule is tested without an app. Ids and times of the templates come from
callables, so a test (or a snapshot) can fix them. With a schema registry, the topic's registered value
schema (``TOPIC-value``, latest) is a template too: its sample value to start from, and the schema the
value is checked against as it is typed and encoded with when it is published.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.broker import Headers, OutgoingEvent
from workbench.errors import UsageError
from workbench.events.envelope import format_timestamp
from workbench.events.envelope_input import parse_header

if TYPE_CHECKING:
    from workbench.events.schemas.encoder import SchemaEncoder
    from workbench.events.schemas.registry import Registry

MAX_COPIES = 10_000


@dataclass(frozen=True, slots=True)
class JsonCheck:
    """The verdict on the value editor's text: valid JSON, or where and why not."""

    ok: bool
    message: str
    line: int | None = None
    column: int | None = None


def check_json(text: str) -> JsonCheck:
    if not text.strip():
        return JsonCheck(False, "the value is empty: write JSON (e.g. {}) or choose a template")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonCheck(False, f"line {exc.lineno}, column {exc.colno}: {exc.msg}", exc.lineno, exc.colno)
    return JsonCheck(True, "valid JSON")


def check_value(text: str, schema: SchemaTemplate | None) -> JsonCheck:
    """:func:`check_json`, then (with a schema template) whether the value fits the schema."""
    checked = check_json(text)
    if not checked.ok or schema is None:
        return checked
    from workbench.events.schemas.formats import Mismatch

    try:
        schema.encoder.encode(text.encode("utf-8"))
    except Mismatch as exc:
        where = f"field {exc.field!r}: " if exc.field else ""
        return JsonCheck(False, f"{where}{exc} ({schema.encoder.describe()})")
    return JsonCheck(True, f"valid JSON, fits the {schema.encoder.describe()}")


def parse_headers(text: str) -> Headers:
    """``NAME=VALUE`` per line (blank lines and ``#`` comments skipped); values as UTF-8 bytes."""
    headers = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        headers.append(parse_header(line, f"headers, line {lineno}"))
    return tuple(headers)


def parse_copies(text: str) -> int:
    try:
        copies = int(text.strip())
    except ValueError:
        raise UsageError(f"copies: {text.strip()[:20]!r} is not a whole number", hint=f"1 to {MAX_COPIES:,}") from None
    if not 1 <= copies <= MAX_COPIES:
        raise UsageError(f"copies: {copies:,} is out of range", hint=f"1 to {MAX_COPIES:,}")
    return copies


def build(
    topic: str, key: str, headers: str, value: str, copies: str, schema: SchemaTemplate | None = None
) -> list[tuple[str, OutgoingEvent]]:
    """The events to publish, as ``(origin, event)`` for :func:`workbench.service.publish`;
    UsageError naming the field when something is wrong. With ``schema``, the value is encoded with it."""
    if not topic.strip():
        raise UsageError("topic: empty", hint="type the topic (exchange, queue or stream) to publish to")
    if schema is not None and schema.topic != topic.strip():
        raise UsageError(
            f"value: the schema template is {schema.encoder.registered.subject}, not topic {topic.strip()!r}'s",
            hint="choose the schema template again (ctrl+t), or another template",
        )
    checked = check_value(value, schema)
    if not checked.ok:
        raise UsageError(f"value: {checked.message}")
    data = value.encode("utf-8")
    event = OutgoingEvent(
        value=schema.encoder.encode(data) if schema else data,
        key=key.encode("utf-8") if key else None,
        headers=parse_headers(headers),
    )
    return [(f"copy {n}", event) for n in range(1, parse_copies(copies) + 1)]


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    label: str
    headers: str
    value: str


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso(now: float) -> str:
    return str(format_timestamp(int(now * 1000)))


TEMPLATE_LABELS = (("empty", "Empty JSON object"), ("cloudevent", "CloudEvent (binary mode, fresh id/time)"))
SCHEMA = "schema"
SCHEMA_LABEL = (SCHEMA, "Registered schema (TOPIC-value)")


def template_labels(with_registry: bool) -> tuple[tuple[str, str], ...]:
    """The templates on offer: the schema one only when the connection has a schema registry."""
    return (*TEMPLATE_LABELS, SCHEMA_LABEL) if with_registry else TEMPLATE_LABELS


def template(name: str, *, now: float, make_id: Callable[[], str] = new_id) -> Template:
    """A template with fresh ids and time each time it is chosen."""
    label = dict(TEMPLATE_LABELS)[name]
    if name == "empty":
        return Template(name, label, "", "{}")
    headers = "\n".join(
        (
            "ce_specversion=1.0",
            f"ce_id={make_id()}",
            f"ce_time={now_iso(now)}",
            "ce_type=com.example.SomethingHappened",
            "ce_source=/event-workbench",
            "content-type=application/json",
            f"correlation_id={make_id()}",
        )
    )
    return Template(name, label, headers, '{\n  "message": "hello"\n}')


@dataclass(frozen=True)
class SchemaTemplate:
    """The topic's registered value schema: what the value is checked against and encoded with."""

    topic: str
    encoder: SchemaEncoder
    value: str  # a sample value with every field, as JSON text to edit


def schema_template(registry: Registry, topic: str) -> SchemaTemplate:
    """Look up ``TOPIC-value`` (latest) in the registry (blocking: call it from a thread); the
    registry's typed errors (not found, unreachable ...) go to the caller."""
    from workbench.events.schemas.encoder import SchemaEncoder

    encoder = SchemaEncoder.lookup(registry, f"{topic}-value:latest", "schema template")
    sample = encoder.codec.template(encoder.message)
    return SchemaTemplate(topic, encoder, json.dumps(sample, indent=2, ensure_ascii=False))
