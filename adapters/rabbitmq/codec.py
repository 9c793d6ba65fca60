"""AMQP 0-9-1 messages <-> the contract's events: key, headers, properties, timestamps, x-death.

Key
    AMQP has no message key. On **read**, ``Event.key`` is the ``x-workbench-key`` header when
    present (see publish), else the routing key as UTF-8 bytes when the message went through a
    named exchange (a tap, or a stream fed by an exchange), else None: a message published to the
    default exchange has the queue's own name as routing key, which says nothing.
    On **publish**, to an exchange the key *is* the routing key (it must be UTF-8, at most 255
    bytes; None -> ""). To a queue or stream (through the default exchange, whose routing key must
    be the queue's name) the key travels in the ``x-workbench-key`` header, as bytes.

Headers
    Read: the AMQP headers table, each value as bytes: byte arrays as they are, strings as UTF-8,
    datetimes as ISO 8601 text, decimals as their text, everything else (numbers, booleans, void,
    nested tables and arrays) as JSON text. ``x-stream-offset`` (the stream offset) and the
    reserved ``x-workbench-*`` headers are not listed. Publish: each value goes out as a string
    when it is valid UTF-8 (what most AMQP clients expect), else as a byte array; both come back
    as the same bytes.
    A table holds a name once, and RabbitMQ 3.x streams store headers sorted by name (and drop
    nested tables). When the headers of an event repeat a name or are not in that order, the
    exact list also travels in ``x-workbench-headers`` (a small binary encoding), which a read
    prefers. A None value travels as the ``x-workbench-null-value`` marker (the body is empty).

Properties set on publish from headers (the headers are kept too): content-type,
content-encoding, correlation-id, message-id, app-id, reply-to (``-`` or ``_``, any case), when
the value is UTF-8 text of at most 255 bytes. Timestamp: AMQP's is in whole **seconds**, so a
published timestamp loses its milliseconds (now when the event has none).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import struct
import time
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Literal, TypedDict

from pamqp import commands as spec

from workbench.broker import Event, InvalidRequest, OutgoingEvent

KEY_HEADER = "x-workbench-key"
HEADERS_HEADER = "x-workbench-headers"
NULL_HEADER = "x-workbench-null-value"
STREAM_OFFSET_HEADER = "x-stream-offset"
RESERVED = frozenset({KEY_HEADER, HEADERS_HEADER, NULL_HEADER})
SHORTSTR_MAX = 255
PropertyName = Literal["content_type", "content_encoding", "correlation_id", "message_id", "app_id", "reply_to"]
#: header names (normalised) that also set an AMQP property
PROPERTY_HEADERS: dict[str, PropertyName] = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "correlation-id": "correlation_id",
    "message-id": "message_id",
    "app-id": "app_id",
    "reply-to": "reply_to",
}
PERSISTENT = 2


class HeaderProperties(TypedDict, total=False):
    """The AMQP properties taken from an event's headers (:data:`PROPERTY_HEADERS`): short strings."""

    content_type: str
    content_encoding: str
    correlation_id: str
    message_id: str
    app_id: str
    reply_to: str


_EXACT_VERSION = b"\x01"
_PAIR = struct.Struct(">HI")  # name length, value length


# --------------------------------------------------------------------------- exact header lists


def encode_exact(headers: Sequence[tuple[str, bytes]]) -> bytes:
    out = [_EXACT_VERSION]
    for name, value in headers:
        raw = name.encode("utf-8", "surrogatepass")
        out.append(_PAIR.pack(len(raw), len(value)))
        out.append(raw)
        out.append(value)
    return b"".join(out)


def decode_exact(blob: bytes) -> tuple[tuple[str, bytes], ...] | None:
    """The list, or None when the blob is not one (then it is shown as an ordinary header)."""
    if not blob.startswith(_EXACT_VERSION):
        return None
    out = []
    i, n = 1, len(blob)
    try:
        while i < n:
            name_len, value_len = _PAIR.unpack_from(blob, i)
            i += _PAIR.size
            if i + name_len + value_len > n:
                return None
            name = blob[i : i + name_len].decode("utf-8", "surrogatepass")
            i += name_len
            out.append((name, bytes(blob[i : i + value_len])))
            i += value_len
    except (struct.error, UnicodeDecodeError):
        return None
    return tuple(out)


# --------------------------------------------------------------------------- header values


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return raw.hex()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def header_bytes(value: Any) -> bytes:
    """One AMQP header value as bytes (see the module docstring)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dt.datetime):
        return value.isoformat().encode()
    if isinstance(value, decimal.Decimal):
        return str(value).encode()
    try:
        return json.dumps(_jsonable(value), ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return repr(value).encode()


def _name_ok_for_table(name: str) -> bool:
    try:
        return len(name.encode()) <= SHORTSTR_MAX
    except UnicodeEncodeError:
        return False


def _shortstr(value: bytes) -> str | None:
    if len(value) > SHORTSTR_MAX:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------- publish


def outgoing_headers(event: OutgoingEvent, *, key_header: bool) -> tuple[dict[str, Any], HeaderProperties]:
    """The AMQP headers table for an event, and the properties taken from its headers."""
    headers = event.headers or ()
    table: dict[str, Any] = {}
    properties: HeaderProperties = {}
    exact_needed = False
    last_raw: bytes | None = None
    for item in headers:
        name, value = item
        if not isinstance(name, str):
            raise InvalidRequest(f"a header name must be str, got {type(name).__name__}")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidRequest(f"header {name!r}: the value must be bytes, got {type(value).__name__}")
        value = bytes(value)
        if name in RESERVED or name in table or not _name_ok_for_table(name):
            exact_needed = True
            continue
        raw = name.encode()
        if last_raw is not None and raw <= last_raw:
            exact_needed = True  # streams would give them back sorted by name
        last_raw = raw
        try:
            table[name] = value.decode()
        except UnicodeDecodeError:
            table[name] = bytearray(value)
        prop = PROPERTY_HEADERS.get(name.lower().replace("_", "-"))
        if prop and prop not in properties:
            text = _shortstr(value)
            if text is not None:
                properties[prop] = text
    if exact_needed:
        table[HEADERS_HEADER] = bytearray(encode_exact([(n, bytes(v)) for n, v in headers]))
    if key_header and event.key is not None:
        table[KEY_HEADER] = bytearray(event.key)
    if event.value is None:
        table[NULL_HEADER] = True
    return table, properties


#: A header frame surely fits when its headers' bytes, twice (the table and the exact list) plus
#: this much per header and for the other properties, stay under the frame_max: no need to encode it.
_PER_HEADER_BYTES = 16
_OTHER_PROPERTIES_BYTES = 2048
#: aiormq sets a message id (32 hex digits) on a message that has none, after we measure it.
_MESSAGE_ID_BYTES = 1 + 32


def header_frame_size(body_size: int, properties: spec.Basic.Properties) -> int:
    """The bytes of the content-header frame that carries ``properties`` (headers included),
    frame header and end octet counted as the frame_max counts them."""
    from pamqp import frame, header

    size = len(frame.marshal(header.ContentHeader(0, body_size, properties), 1))
    return size + (_MESSAGE_ID_BYTES if not properties.message_id else 0)


def may_exceed_frame(event: OutgoingEvent, frame_max: int) -> bool:
    """Whether the event's header frame might be larger than ``frame_max`` (a cheap upper bound,
    so that the usual few small headers are never encoded twice)."""
    headers = event.headers or ()
    estimate = _OTHER_PROPERTIES_BYTES + len(event.key or b"")
    for name, value in headers:
        estimate += 2 * (len(name) * 4 + len(value) + _PER_HEADER_BYTES)
    return estimate > frame_max


def amqp_timestamp(timestamp_ms: int | None) -> dt.datetime:
    seconds = time.time() if timestamp_ms is None else timestamp_ms / 1000
    return dt.datetime.fromtimestamp(int(seconds // 1), dt.UTC)


def properties_for(event: OutgoingEvent, *, key_header: bool) -> spec.Basic.Properties:
    table, props = outgoing_headers(event, key_header=key_header)
    if event.timestamp is not None and (not isinstance(event.timestamp, int) or isinstance(event.timestamp, bool)):
        raise InvalidRequest(f"timestamp must be int milliseconds, got {type(event.timestamp).__name__}")
    return spec.Basic.Properties(
        headers=table or None,
        delivery_mode=PERSISTENT,
        timestamp=amqp_timestamp(event.timestamp),
        **props,
    )


# --------------------------------------------------------------------------- read


def decode_x_death(value: Any) -> list[dict[str, Any]] | None:
    """``x-death`` as a list of plain dicts: queue, reason, count, exchange, routing_keys, time (ms)."""
    if not isinstance(value, list):
        return None
    out = []
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        when = entry.get("time")
        keys = entry.get("routing-keys")
        item: dict[str, Any] = {
            "queue": _text(entry.get("queue")),
            "reason": _text(entry.get("reason")),
            "count": entry.get("count"),
            "exchange": _text(entry.get("exchange")),
            "routing_keys": [_text(k) for k in keys] if isinstance(keys, list) else [],
            "time": int(when.timestamp() * 1000) if isinstance(when, dt.datetime) else None,
        }
        if "original-expiration" in entry:
            item["original_expiration"] = _text(entry["original-expiration"])
        out.append(item)
    return out


def _text(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return None


def make_event(
    topic: str,
    offset: int,
    deliver: Any,
    properties: spec.Basic.Properties,
    body: bytes,
    *,
    skip: frozenset[str] = frozenset(),
    extra: Mapping[str, Any] | None = None,
) -> Event:
    """An Event from one delivery (``deliver`` is the Basic.Deliver frame); ``extra`` is added
    to its metadata last."""
    table = properties.headers or {}
    exact: tuple[tuple[str, bytes], ...] | None = None
    key: bytes | None = None
    has_key = False
    null_value = False
    headers: list[tuple[str, bytes]] = []
    x_death = None
    if table:
        raw_exact = table.get(HEADERS_HEADER)
        if isinstance(raw_exact, (bytes, bytearray)):
            exact = decode_exact(bytes(raw_exact))
        if KEY_HEADER in table:
            key = _as_bytes(table[KEY_HEADER])
            has_key = key is not None
        null_value = table.get(NULL_HEADER) is True
        listed = {n for n, _ in exact} if exact is not None else set()
        for name, value in table.items():
            if name in skip or name in listed:
                continue
            if name in RESERVED and not (name == HEADERS_HEADER and exact is None):
                continue  # (an undecodable x-workbench-headers is shown as it is)
            headers.append((name, header_bytes(value)))
        if exact is not None:
            headers = [*exact, *headers]
        if "x-death" in table:
            x_death = decode_x_death(table["x-death"])
    exchange = deliver.exchange or ""
    routing_key = deliver.routing_key or ""
    if not has_key:
        key = routing_key.encode() if exchange and routing_key else None
    stamp = properties.timestamp
    timestamp = int(stamp.timestamp()) * 1000 if isinstance(stamp, dt.datetime) else None
    metadata: dict[str, Any] = {
        "content_type": properties.content_type,
        "correlation_id": properties.correlation_id,
        "message_id": properties.message_id,
        "type": properties.message_type,
        "app_id": properties.app_id,
        "delivery_mode": properties.delivery_mode,
        "redelivered": bool(deliver.redelivered),
        "routing_key": routing_key,
        "exchange": exchange,
    }
    for name in ("content_encoding", "reply_to", "user_id", "expiration", "priority"):
        value = getattr(properties, name, None)
        if value is not None:
            metadata[name] = value
    if x_death is not None:
        metadata["x_death"] = x_death
    if extra:
        metadata.update(extra)
    return Event(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=timestamp,
        key=key,
        value=None if null_value and not body else bytes(body),
        headers=tuple(headers),
        metadata=metadata,
    )


#: how the management API shows a header value that is not UTF-8
MANAGEMENT_BINARY = "Not UTF-8, base64 is: "
#: the management API's property names -> pamqp's (the rest are the same)
_MANAGEMENT_PROPERTIES = {"type": "message_type"}
_PROPERTY_NAMES = frozenset(
    {
        "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
        "reply_to", "expiration", "message_id", "timestamp", "message_type", "user_id", "app_id",
    }
)  # fmt: skip


def _management_value(value: Any) -> Any:
    """A header value as the management API shows it, back to what AMQP carried where it can."""
    if isinstance(value, str) and value.startswith(MANAGEMENT_BINARY):
        try:
            return bytearray(base64.b64decode(value[len(MANAGEMENT_BINARY) :], validate=True))
        except (binascii.Error, ValueError):
            return value
    if isinstance(value, Mapping):
        return {k: _management_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_management_value(v) for v in value]
    return value


def management_event(topic: str, offset: int, message: Mapping[str, Any]) -> Event:
    """An Event from one message of the management API's ``POST .../get`` (base64 encoding).

    Mapped as :func:`make_event` maps a delivery; the API shows binary header values as
    ``Not UTF-8, base64 is: ...`` (decoded back here) and timestamps in seconds.
    """
    raw = message.get("properties") or {}
    fields: dict[str, Any] = {}
    for name, value in raw.items() if isinstance(raw, Mapping) else ():
        name = _MANAGEMENT_PROPERTIES.get(name, name)
        if name in _PROPERTY_NAMES and value is not None:
            fields[name] = value
    if isinstance(fields.get("headers"), Mapping):
        fields["headers"] = _management_value(fields["headers"])
    else:
        fields.pop("headers", None)
    stamp = fields.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        fields["timestamp"] = dt.datetime.fromtimestamp(stamp, dt.UTC)
    else:
        fields.pop("timestamp", None)
    payload = message.get("payload") or ""
    if message.get("payload_encoding") == "base64":
        body = base64.b64decode(payload)
    else:
        body = payload.encode("utf-8", "surrogatepass")
    deliver = SimpleNamespace(
        exchange=message.get("exchange") or "",
        routing_key=message.get("routing_key") or "",
        redelivered=bool(message.get("redelivered")),
    )
    extra: dict[str, Any] = {"message_count": message.get("message_count")}  # left in the queue after it
    size = message.get("payload_bytes")
    if isinstance(size, int) and size > len(body):
        extra["truncated_from"] = size
    return make_event(topic, offset, deliver, spec.Basic.Properties(**fields), body, extra=extra)


def stream_offset(properties: spec.Basic.Properties) -> int | None:
    table = properties.headers
    if not table:
        return None
    value = table.get(STREAM_OFFSET_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
