"""What the publish dialog edits, as plain data: JSON checking, header lines, templates, the events.

No Textual here, so every rule is tested without an app. Ids and times of the templates come from
callables, so a test (or a snapshot) can fix them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from workbench.broker import Headers, OutgoingEvent
from workbench.errors import UsageError
from workbench.events.envelope import format_timestamp
from workbench.events.envelope_input import parse_header

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


def build(topic: str, key: str, headers: str, value: str, copies: str) -> list[tuple[str, OutgoingEvent]]:
    """The events to publish, as ``(origin, event)`` for :func:`workbench.service.publish`;
    UsageError naming the field when something is wrong."""
    if not topic.strip():
        raise UsageError("topic: empty", hint="type the topic (exchange, queue or stream) to publish to")
    checked = check_json(value)
    if not checked.ok:
        raise UsageError(f"value: {checked.message}")
    event = OutgoingEvent(
        value=value.encode("utf-8"), key=key.encode("utf-8") if key else None, headers=parse_headers(headers)
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
