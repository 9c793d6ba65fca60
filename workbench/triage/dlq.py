"""Dead letters: why an event died and where it came from, as the frameworks that dead-lettered it record.

Three conventions are read, each exactly as its framework writes it:

Spring Kafka (``DeadLetterPublishingRecoverer``)
    ``kafka_dlt-exception-fqcn`` and ``kafka_dlt-exception-message`` (UTF-8 text),
    ``kafka_dlt-original-topic`` (text), ``kafka_dlt-original-partition`` (a 4-byte big-endian int),
    ``kafka_dlt-original-offset`` and ``kafka_dlt-original-timestamp`` (8-byte big-endian longs).
Kafka Connect (``errors.deadletterqueue.context.headers.enable``)
    ``__connect.errors.topic``, ``.partition``, ``.offset``, ``.exception.class.name``,
    ``.exception.message``, ``.connector.name``: all UTF-8 text, numbers as decimal digits.
RabbitMQ dead-lettering
    ``x-death``, an array of tables (queue, reason, count, exchange, routing-keys, time), most recent
    first, and ``x-first-death-queue`` / ``-reason`` / ``-exchange``. The RabbitMQ adapter gives the
    decoded array in ``metadata["x_death"]`` and the header as JSON text (what a capture file keeps).

A dead letter's *cause* is its exception class (Spring, Connect) or its reason (RabbitMQ:
rejected, expired, maxlen, delivery_limit); :func:`summarize` groups by convention, cause and
origin, with the count, first and last time and an example. Values come from untrusted events:
they are kept as text here and made terminal-safe where they are shown.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, Unpack

from workbench.broker import Connection, Event, Position
from workbench.errors import UsageError

__all__ = [
    "CONVENTIONS",
    "Cause",
    "DeadLetter",
    "Summary",
    "Window",
    "dead_letter",
    "event_ref",
    "read_dead_letters",
    "summarize",
]

CONVENTIONS = ("spring", "connect", "rabbitmq")

SPRING = "kafka_dlt-"
CONNECT = "__connect.errors."
MESSAGE_LIMIT = 300  # characters of an exception message kept (stack traces stay in the event)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the dead-letter headers of one event say. ``origin`` is a topic (Kafka) or a queue (RabbitMQ)."""

    convention: str  # spring | connect | rabbitmq
    cause: str  # the exception class, or RabbitMQ's reason
    message: str | None = None
    origin: str | None = None
    origin_partition: int | None = None
    origin_offset: int | None = None
    origin_timestamp: int | None = None  # ms
    died_at: int | None = None  # ms: when it was dead-lettered (RabbitMQ's x-death time, else the event's time)
    exchange: str | None = None  # RabbitMQ: where the message was first published
    routing_key: str | None = None
    count: int = 1  # RabbitMQ: how many times it died this way
    connector: str | None = None  # Kafka Connect


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


def _int_text(raw: bytes | None) -> int | None:
    text = _text(raw)
    try:
        return None if text is None else int(text.strip())
    except ValueError:
        return None


def _big_endian(raw: bytes | None, size: int) -> int | None:
    """Spring writes partition as 4 bytes and offset/timestamp as 8 (``ByteBuffer.putInt/putLong``)."""
    if raw is None:
        return None
    if len(raw) == size:
        return struct.unpack(">i" if size == 4 else ">q", raw)[0]
    return _int_text(raw)  # written as text by something that imitates Spring


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:MESSAGE_LIMIT]


def _headers(event: Event) -> dict[str, bytes]:
    """Header names lowered; the last value of a name wins (Spring appends on a second failure)."""
    return {name.lower(): bytes(value) for name, value in event.headers}


def dead_letter(event: Event) -> DeadLetter | None:
    """What ``event``'s dead-letter headers say, or None when it has none of the three conventions."""
    headers = _headers(event)
    if SPRING + "exception-fqcn" in headers or SPRING + "original-topic" in headers:
        return DeadLetter(
            "spring",
            _text(headers.get(SPRING + "exception-fqcn")) or "unknown",
            _first_line(_text(headers.get(SPRING + "exception-message"))),
            _text(headers.get(SPRING + "original-topic")),
            _big_endian(headers.get(SPRING + "original-partition"), 4),
            _big_endian(headers.get(SPRING + "original-offset"), 8),
            _big_endian(headers.get(SPRING + "original-timestamp"), 8),
            event.timestamp,
        )
    if any(name.startswith(CONNECT) for name in headers):
        return DeadLetter(
            "connect",
            _text(headers.get(CONNECT + "exception.class.name")) or "unknown",
            _first_line(_text(headers.get(CONNECT + "exception.message"))),
            _text(headers.get(CONNECT + "topic")),
            _int_text(headers.get(CONNECT + "partition")),
            _int_text(headers.get(CONNECT + "offset")),
            None,
            event.timestamp,
            connector=_text(headers.get(CONNECT + "connector.name")),
        )
    deaths = _x_death(event, headers)
    if deaths or "x-first-death-queue" in headers:
        return _rabbitmq(event, headers, deaths)
    return None


def _x_death(event: Event, headers: Mapping[str, bytes]) -> list[Mapping[str, Any]]:
    """The header's JSON first (it keeps the time however the message was read: a delivery gives a
    time stamp, the management API whole seconds), else what the adapter decoded."""
    raw = headers.get("x-death")
    if raw is not None:
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            value = None
        if isinstance(value, list):
            return [d for d in value if isinstance(d, Mapping)]
    decoded = event.metadata.get("x_death") if isinstance(event.metadata, Mapping) else None
    return [d for d in decoded if isinstance(d, Mapping)] if isinstance(decoded, list) else []


def _death_time(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 10**11 else value * 1000  # the adapter gives ms; AMQP has seconds
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def _rabbitmq(event: Event, headers: Mapping[str, bytes], deaths: Sequence[Mapping[str, Any]]) -> DeadLetter:
    """The first death names where the message came from (``x-death`` is most recent first)."""
    queue = _text(headers.get("x-first-death-queue"))
    reason = _text(headers.get("x-first-death-reason"))
    exchange = _text(headers.get("x-first-death-exchange"))
    first = next((d for d in deaths if d.get("queue") == queue and (reason is None or d.get("reason") == reason)), None)
    if first is None and deaths:
        first = deaths[-1]
    keys: Any = []
    count = 1
    died_at = event.timestamp
    if first is not None:
        queue = queue or _str(first.get("queue"))
        reason = reason or _str(first.get("reason"))
        exchange = exchange if exchange is not None else _str(first.get("exchange"))
        keys = first.get("routing_keys", first.get("routing-keys")) or []
        times = first.get("count")
        count = times if isinstance(times, int) and not isinstance(times, bool) else 1
        died_at = _death_time(first.get("time")) or died_at
    routing_key = _str(keys[0]) if isinstance(keys, list) and keys else None
    return DeadLetter(
        "rabbitmq",
        reason or "unknown",
        None,
        queue,
        died_at=died_at,
        exchange=exchange,
        routing_key=routing_key,
        count=count,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def event_ref(event: Event) -> str:
    """A stable name for one dead letter: topic/partition/offset where the broker keeps positions;
    for a peeked queue (positions are only the order of that peek) its message id, else a digest
    of its content (the same message peeked again has the same one)."""
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    if "message_count" not in metadata:  # not a peek
        return f"{event.topic}/{event.partition}/{event.offset}"
    message_id = metadata.get("message_id")
    if message_id:
        return f"{event.topic}/id:{message_id}"
    digest = hashlib.sha256()
    for part in (event.key or b"", event.value or b""):
        digest.update(len(part).to_bytes(8, "big") + part)
    for name, value in event.headers:
        if name.lower() != "x-death":  # its counts change while the message dies again
            digest.update(name.encode("utf-8", "surrogatepass") + b"\0" + bytes(value) + b"\0")
    return f"{event.topic}/sha256:{digest.hexdigest()[:16]}"


# --------------------------------------------------------------------------- summary


@dataclass
class Cause:
    """The dead letters of one convention, cause and origin."""

    convention: str
    cause: str
    origin: str | None
    count: int = 0
    deaths: int = 0  # RabbitMQ counts each time a message died (x-death count)
    first: int | None = None
    last: int | None = None
    example: str = ""  # the first dead letter's reference (see event_ref)
    message: str | None = None  # its exception message, when there is one

    def add(self, event: Event, letter: DeadLetter) -> None:
        if not self.count:
            self.example, self.message = event_ref(event), letter.message
        self.count += 1
        self.deaths += letter.count
        when = letter.died_at
        if when is not None:
            self.first = when if self.first is None else min(self.first, when)
            self.last = when if self.last is None else max(self.last, when)

    def as_dict(self) -> dict[str, Any]:
        from workbench.events.envelope import format_timestamp

        return {
            "convention": self.convention,
            "cause": self.cause,
            "origin": self.origin,
            "count": self.count,
            "deaths": self.deaths,
            "first": None if self.first is None else str(format_timestamp(self.first)),
            "last": None if self.last is None else str(format_timestamp(self.last)),
            "example": self.example,
            "message": self.message,
        }


@dataclass
class Summary:
    """Dead letters of one topic or queue grouped by cause, most frequent first."""

    source: str
    scanned: int = 0
    other: int = 0  # events without dead-letter headers
    causes: dict[tuple[str, str, str | None], Cause] = field(default_factory=dict)

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            self.scanned += 1
            letter = dead_letter(event)
            if letter is None:
                self.other += 1
                continue
            key = (letter.convention, letter.cause, letter.origin)
            cause = self.causes.get(key)
            if cause is None:
                cause = self.causes[key] = Cause(*key)
            cause.add(event, letter)

    @property
    def dead_letters(self) -> int:
        return self.scanned - self.other

    def ranked(self) -> list[Cause]:
        return sorted(self.causes.values(), key=lambda c: (-c.count, c.convention, c.cause, c.origin or ""))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scanned": self.scanned,
            "dead_letters": self.dead_letters,
            "without_dead_letter_headers": self.other,
            "causes": [c.as_dict() for c in self.ranked()],
        }


def summarize(source: str, events: Iterable[Event]) -> Summary:
    summary = Summary(source)
    summary.add(events)
    return summary


# --------------------------------------------------------------------------- reading


class Window(TypedDict, total=False):
    """Which events of a dead-letter topic or queue are read: named once here for every reader of
    dead letters (:func:`read_dead_letters`, and the redrive plan that reads through it)."""

    until: Position | None  # the end of the window (None: the end as it is now)
    peek: int | None  # a RabbitMQ queue read by taking up to this many messages and requeueing them
    match: Callable[[Event], bool] | None  # which events are kept


async def read_dead_letters(
    conn: Connection,
    source: str,
    start: Position,
    *,
    limit: int | None = None,
    on_scanned: Callable[[int], None] | None = None,
    **window: Unpack[Window],
) -> AsyncGenerator[list[Event], None]:
    """Batches of the events of ``source`` (a topic, a stream), bounded by ``start`` and ``until``.

    ``peek``: ``source`` is a RabbitMQ classic or quorum queue (the usual dead-letter queue), read
    by taking up to ``peek`` messages and requeueing them at once (see ``workbench peek``): such a
    queue has no positions, so ``start``/``until`` cannot apply.
    """
    until, peek, match = window.get("until"), window.get("peek"), window.get("match")
    if peek is not None:
        if start != Position.beginning() or until is not None:
            raise UsageError(
                "--from/--until select positions, and a peeked queue has none",
                hint="leave them out with --peek, or read a stream or topic",
            )
        events = await conn.peek(source, peek)
        if on_scanned is not None:
            on_scanned(len(events))
        chosen = [e for e in events if match is None or match(e)]
        if chosen:
            yield chosen[:limit] if limit is not None else chosen
        return
    from workbench import service

    async with aclosing(
        service.tail(conn, source, start, until=until, limit=limit, match=match, on_scanned=on_scanned)
    ) as batches:
        async for batch in batches:
            yield batch
