"""Trace: every event carrying one correlation id, across topics and profiles, in time order.

A trace is a bounded scan (from ``--since``, up to the ends seen when each read began) of each
topic, keeping the events whose correlation id, by the profile file's rules, is the one asked
for. Topics a broker cannot read back (a RabbitMQ exchange tap, a classic queue) are reported as
skipped with the broker's reason, never silently left out (the CLI sums them up in one line). A
trace that finds nothing is an error (:class:`TraceNotFound`, exit 5), as for any id not found.
The CLI and the TUI share this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from workbench.broker import BrokerError, Connection, Event, NotFound, Position
from workbench.errors import ExitCode, WorkbenchError
from workbench.events import codecs
from workbench.events.correlation import DEFAULT_RULES, CorrelationRules
from workbench.events.redaction import filter_view_of

__all__ = [
    "Hop",
    "Skipped",
    "Trace",
    "TraceNotFound",
    "format_gap",
    "order_hops",
    "scan",
    "skipped_summary",
]


@dataclass(frozen=True)
class Hop:
    """One event of a trace, with what the trace shows about it."""

    event: Event
    profile: str
    type: str | None
    source: str | None
    causation: str | None
    gap_ms: int | None  # since the previous hop (None for the first, or without timestamps)


@dataclass(frozen=True)
class Skipped:
    """A topic the trace could not read, and the broker's reason."""

    profile: str
    topic: str
    reason: str
    kind: str | None = None  # exchange, queue ... when the listing said (None for a topic named by -t)


@dataclass
class Trace:
    correlation_id: str
    hops: list[Hop] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    scanned: int = 0  # events read, matching or not
    topics: int = 0  # topics read


class TraceNotFound(WorkbenchError):
    """No event carries the id (in what was scanned): not found, as an unknown saga or topic is."""

    exit_code = ExitCode.NOT_FOUND


# --------------------------------------------------------------------------- matching


class _Matcher:
    """Whether an event carries the id. A byte pre-check skips events that cannot (most of them):
    every rule reads the id out of the headers, the value or the broker properties as it is
    written there, unless JSON may spell it differently (numbers, escapes), when no pre-check is made."""

    def __init__(self, correlation_id: str, rules: CorrelationRules) -> None:
        self.wanted = correlation_id
        self.rules = rules
        self.needle: bytes | None = None
        if correlation_id.isascii() and correlation_id.isprintable() and not set(correlation_id) & set('"\\/'):
            try:
                float(correlation_id)
            except ValueError:
                self.needle = correlation_id.encode()

    def __call__(self, event: Event) -> bool:
        """Whether ``event`` carries the id; a redacted event is matched as filters see it (a masked
        correlation id is found only where its [mask] rule is filterable)."""
        event = filter_view_of(event)
        needle = self.needle
        if needle is not None and not (
            (event.value is not None and needle in event.value)
            or any(needle in value for _, value in event.headers)
            or (event.metadata and any(isinstance(v, str) and self.wanted in v for v in event.metadata.values()))
        ):
            return False
        return self.rules.correlation_id(event) == self.wanted


async def scan(
    conn: Connection,
    correlation_id: str,
    start: Position,
    *,
    profile: str = "",
    topics: Sequence[str] | None = None,
    rules: CorrelationRules = DEFAULT_RULES,
    on_scanned: Callable[[int], None] | None = None,
    trace: Trace | None = None,
) -> Trace:
    """Add to ``trace`` the events of ``topics`` (all non-internal ones when None) carrying the id.

    A topic named explicitly that does not exist raises NotFound; any topic the broker refuses
    to read (Unsupported, AccessDenied ...) is added to ``trace.skipped`` with the reason.
    """
    trace = trace or Trace(correlation_id)
    matches = _Matcher(correlation_id, rules)
    kinds: dict[str, str] = {}
    if topics is None:
        infos = await conn.list_topics()
        names = [t.name for t in infos if not t.internal]
        kinds = {t.name: t.kind for t in infos}
    else:
        names = list(dict.fromkeys(topics))
    found: list[tuple[str, Event]] = []
    for name in names:
        try:
            async with aclosing(conn.read(name, start)) as batches:  # type: ignore[type-var]
                async for batch in batches:
                    trace.scanned += len(batch)
                    if on_scanned is not None:
                        on_scanned(len(batch))
                    found.extend((profile, e) for e in batch if matches(e))
            trace.topics += 1
        except NotFound:
            if topics is not None:
                raise
            trace.skipped.append(Skipped(profile, name, "deleted while the trace ran", kinds.get(name)))
        except BrokerError as exc:
            trace.skipped.append(Skipped(profile, name, str(exc), kinds.get(name)))
    trace.hops = order_hops([*((h.profile, h.event) for h in trace.hops), *found], rules)
    return trace


def skipped_summary(skipped: Sequence[Skipped], *, with_profile: bool = False, names: int = 3) -> str:
    """One line for every topic the trace could not read: how many of each kind, the first names.

    E.g. ``skipped 4 exchanges and 1 queue that cannot be read back: audit, billing, orders and 2 more``.
    """
    kinds = Counter(s.kind or "topic" for s in skipped)
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]
    counted = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    shown = [f"{s.profile}:{s.topic}" if with_profile else s.topic for s in skipped[:names]]
    more = f" and {len(skipped) - names} more" if len(skipped) > names else ""
    return f"skipped {counted} that cannot be read back: {', '.join(shown)}{more}"


# --------------------------------------------------------------------------- order and gaps


def order_hops(events: Sequence[tuple[str, Event]], rules: CorrelationRules = DEFAULT_RULES) -> list[Hop]:
    """``(profile, event)`` pairs as hops in time order (events without a timestamp last), with gaps.

    Ties keep a stable order: profile, topic, partition, offset.
    """

    def order(item: tuple[str, Event]) -> tuple:
        profile, e = item
        return (e.timestamp is None, e.timestamp or 0, profile, e.topic, e.partition, e.offset)

    hops: list[Hop] = []
    previous: int | None = None
    for profile, event in sorted(events, key=order):
        decoded = _small_json(event)
        attributes = codecs.cloudevent_attributes(event.headers, decoded.value if decoded else None)
        gap = None if previous is None or event.timestamp is None else event.timestamp - previous
        hops.append(
            Hop(
                event=event,
                profile=profile,
                type=attributes.get("type") or _metadata_text(event, "type"),
                source=attributes.get("source") or _metadata_text(event, "app_id"),
                causation=rules.causation_id(event, decoded),
                gap_ms=gap,
            )
        )
        if event.timestamp is not None:
            previous = event.timestamp
    return hops


def _small_json(event: Event) -> codecs.Decoded | None:
    schema_decoded = event.metadata.get("decoded_value") if event.metadata else None
    if schema_decoded is not None:
        return schema_decoded if schema_decoded.kind == "json" else None
    value = event.value
    if not value or len(value) > 1_000_000 or value.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    return codecs.decode(value)


def _metadata_text(event: Event, name: str) -> str | None:
    value = event.metadata.get(name) if event.metadata else None
    return value if isinstance(value, str) and value else None


def format_gap(ms: int | None) -> str:
    """``+1.2 s``, ``+350 ms``, ``+4 min 10 s``, ``+2 h 5 min``; ``-`` for none."""
    if ms is None:
        return "-"
    sign = "+" if ms >= 0 else "-"
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    if ms < 60_000:
        return f"{sign}{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 3600:
        return f"{sign}{seconds // 60} min {seconds % 60} s"
    if seconds < 86_400:
        return f"{sign}{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{sign}{seconds // 86_400} d {seconds % 86_400 // 3600} h"


def hop_dict(hop: Hop) -> dict:
    """A hop for JSON output: where, when, the gap, and the exact event envelope."""
    from workbench.events.envelope import event_to_envelope

    return {
        "profile": hop.profile,
        "gap_ms": hop.gap_ms,
        "type": hop.type,
        "source": hop.source,
        "causation_id": hop.causation,
        **event_to_envelope(hop.event),
    }
