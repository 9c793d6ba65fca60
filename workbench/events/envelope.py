"""The JSONL event envelope: binary-safe, and it round-trips exactly.

``tail --output jsonl`` writes one envelope per line with :func:`dumps_event`; ``publish --file``
reads lines back with :func:`parse_line`, so ``tail A --output jsonl | publish B --file -`` copies
events exactly (key, value, headers, partition, timestamp).

One envelope::

    {"topic":"orders","partition":0,"offset":41,"timestamp":"2026-11-27T08:22:58.123Z",
     "key":"o-1","value":"{\"id\":1}","headers":[["source","web"],["sig","AAE=","base64"]],
     "value_encoding":"base64"}

``key``/``value`` are the bytes as a JSON string when they are valid UTF-8, else base64 with
``key_encoding``/``value_encoding`` set to ``"base64"``; ``null`` stays ``null``. A timestamp
outside the range of ISO dates (years 1-9999) is written as integer milliseconds.

Input lines (``publish --file``), see :func:`parse_line`:

- a JSON object with a ``value`` member is an envelope (fields as above; ``headers`` may also be
  an object ``{name: value}``; ``timestamp`` may be integer milliseconds or ISO-8601 with a
  time zone; ``topic``/``offset`` are accepted and ignored; any other field is an error);
- a JSON object without ``value`` is a plain JSON payload: the line, unchanged, is the value;
- any other line is the value itself (without its line terminator);
- with ``raw=True`` every line is the value verbatim.

Reading a file: decode it with ``errors="surrogateescape"`` and split on ``\\n`` only, so that
non-UTF-8 bytes of plain/raw lines are published exactly (the CLI does this).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import json
import re
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring as _encode_basestring  # the C encoder
from typing import Any

import orjson

from workbench.broker import Event, Headers, OutgoingEvent
from workbench.errors import UsageError

__all__ = [
    "InputError",
    "dumps_event",
    "event_to_envelope",
    "format_timestamp",
    "is_plain_envelope",
    "parse_line",
    "parse_line_bytes",
    "parse_timestamp",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS

ENVELOPE_FIELDS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "headers",
    "key_encoding",
    "value_encoding",
    # what a schema decoded: written by `tail -o json` / `--decoded`, ignored when read back
    "key_decoded",
    "key_schema",
    "value_decoded",
    "value_schema",
)


class InputError(ValueError):
    """A malformed input line. ``str(exc)`` is ``"source:lineno: message"``."""

    def __init__(self, message: str, *, source: str, lineno: int, field: str | None = None) -> None:
        self.source = source
        self.lineno = lineno
        self.field = field
        self.reason = message
        where = f"field {field!r}: " if field else ""
        super().__init__(f"{source}:{lineno}: {where}{message}")


# --------------------------------------------------------------------------- timestamps


def format_timestamp(ms: int | None) -> str | int | None:
    """``2026-11-27T08:22:58.123Z`` for milliseconds since the epoch (exact, no float rounding);
    the integer itself when it is outside years 1-9999; None stays None."""
    if ms is None:
        return None
    if not _MIN_MS <= ms <= _MAX_MS:
        return ms
    second, milli = divmod(ms, 1000)
    return f"{_second_text(second)}.{milli:03d}Z"


@functools.lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    """Events come in bursts within the same second: formatting each second once is most of the cost."""
    dt = _EPOCH + timedelta(seconds=second)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 date-time with a time zone (``Z`` or an offset).

    Finer precision is truncated to the millisecond. Raises ValueError for a naive or malformed
    date-time.
    """
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO-8601 date-time: {text!r}") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"date-time {text!r} has no time zone (add 'Z' or an offset like '+02:00')")
    return (dt - _EPOCH) // _ONE_MS


# --------------------------------------------------------------------------- output

# Characters JSON does not escape but a terminal or editor may act on: DEL, C1 controls, bidi
# and zero-width marks, line/paragraph separators, BOM; and lone surrogates, which could not be
# written as UTF-8. They can only occur inside JSON strings, where \uXXXX is equivalent.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _escape_unsafe(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _bytes_field(data: bytes | None) -> tuple[str | None, bool]:
    """(JSON string, is_base64)."""
    if data is None:
        return None, False
    try:
        return bytes(data).decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def event_to_envelope(event: Event) -> dict[str, Any]:
    """The envelope of an event as a dict, keys in the documented order."""
    key, key_b64 = _bytes_field(event.key)
    value, value_b64 = _bytes_field(event.value)
    headers: list[list[str]] = []
    for name, raw in event.headers:
        text, is_b64 = _bytes_field(raw)
        headers.append([name, text, "base64"] if is_b64 else [name, text])  # type: ignore[list-item]
    envelope: dict[str, Any] = {
        "topic": event.topic,
        "partition": event.partition,
        "offset": event.offset,
        "timestamp": format_timestamp(event.timestamp),
        "key": key,
        "value": value,
        "headers": headers,
    }
    if key_b64:
        envelope["key_encoding"] = "base64"
    if value_b64:
        envelope["value_encoding"] = "base64"
    return envelope


def _json_text(text: str) -> str:
    """A JSON string literal that is safe to print (see ``_JSON_UNSAFE``); C-fast for plain ASCII."""
    literal = _encode_basestring(text)
    if text.isascii() and "\x7f" not in text:
        return literal
    return _JSON_UNSAFE.sub(_escape_unsafe, literal)


def _json_bytes(data: bytes | None) -> tuple[str, bool]:
    """(JSON literal, is_base64) of a key, value or header value."""
    text, is_b64 = _bytes_field(data)
    return ("null" if text is None else _json_text(text)), is_b64


def dumps_event(event: Event, *, decoded: bool = False) -> str:
    """One compact JSON line (no trailing newline), equal to ``json.dumps(event_to_envelope(event))``
    with compact separators. Non-ASCII text stays readable; characters a terminal could act on are
    written as ``\\uXXXX`` escapes, so the line is safe to print. ``decoded``: add what a schema
    decoded (``value_decoded`` and ``value_schema``, the same for the key) beside the exact bytes.

    tail's JSONL output is a hot path: orjson encodes the common event (UTF-8 key, value and
    headers) in a third of the time the standard library takes (its string escapes are the
    standard library's, character for character); anything else (base64, a string orjson refuses)
    is written by :func:`_dumps_event_by_hand`, which gives the same line."""
    key, value = event.key, event.value
    try:
        line = _orjson_dumps(
            {
                "topic": event.topic,
                "partition": event.partition,
                "offset": event.offset,
                "timestamp": format_timestamp(event.timestamp),
                "key": None if key is None else (key.decode() if type(key) is bytes else bytes(key).decode()),
                "value": None if value is None else (value.decode() if type(value) is bytes else bytes(value).decode()),
                "headers": [[name, bytes(raw).decode()] for name, raw in event.headers],
            }
        )
    except (UnicodeDecodeError, TypeError):  # base64 then; or a lone surrogate, an integer beyond 64 bits
        return _dumps_event_by_hand(event, decoded=decoded)
    if line.isascii() and 0x7F not in line:
        text = line.decode("ascii")
    else:  # unsafe characters can only be inside strings, where \uXXXX is the same text
        text = _JSON_UNSAFE.sub(_escape_unsafe, line.decode("utf-8"))
    if decoded and event.metadata:
        return text[:-1] + _decoded_fields(event) + "}"
    return text


_orjson_dumps = orjson.dumps


def _dumps_event_by_hand(event: Event, *, decoded: bool = False) -> str:
    """:func:`dumps_event`, written out by hand with the standard library's C string encoder."""
    key, key_b64 = _json_bytes(event.key)
    value, value_b64 = _json_bytes(event.value)
    headers = []
    for name, raw in event.headers:
        text, is_b64 = _json_bytes(raw)
        headers.append(f'[{_json_text(name)},{text},"base64"]' if is_b64 else f"[{_json_text(name)},{text}]")
    ts = format_timestamp(event.timestamp)
    ts_text = "null" if ts is None else (f'"{ts}"' if isinstance(ts, str) else str(ts))
    line = (
        f'{{"topic":{_json_text(event.topic)},"partition":{event.partition},"offset":{event.offset},'
        f'"timestamp":{ts_text},"key":{key},"value":{value},"headers":[{",".join(headers)}]'
    )
    if key_b64:
        line += ',"key_encoding":"base64"'
    if value_b64:
        line += ',"value_encoding":"base64"'
    if decoded and event.metadata:
        line += _decoded_fields(event)
    return line + "}"


def _decoded_fields(event: Event) -> str:
    """``,"value_decoded":...,"value_schema":{...}`` (and the key's) where a schema decoded them."""
    out = ""
    for part in ("key", "value"):
        found = event.metadata.get(f"decoded_{part}")
        if found is None or found.schema is None:
            continue
        if found.schema.error is None:
            out += f',"{part}_decoded":' + _JSON_UNSAFE.sub(_escape_unsafe, _dump_plain(found.value))
        out += f',"{part}_schema":' + _JSON_UNSAFE.sub(_escape_unsafe, _dump_plain(found.schema.to_json()))
    return out


_dump_plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


# --------------------------------------------------------------------------- input


def _strip_terminator(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith("\n"):
        return line[:-1]
    return line


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # strict: no NaN/Infinity
_loads = _DECODER.decode
# the C scanner without decode()'s two regex passes: half the cost. JSONDecoder sets scan_once in
# __init__; typeshed does not declare it.
_scan = _DECODER.scan_once  # type: ignore[attr-defined]


def _loads_line(text: str) -> Any:
    """``_loads(text)`` for a line that starts with ``{``; the fast scan first, and decode() (with
    its exact error messages) when the scan fails or leaves more than white space behind."""
    try:
        obj, end = _scan(text, 0)
    except Exception:  # noqa: BLE001 - whatever it is, decode() says it properly
        return _loads(text)
    if end != len(text) and not text[end:].isspace():
        return _loads(text)
    return obj


def _payload_bytes(text: str) -> bytes:
    # surrogateescape: bytes that were not UTF-8 in the input file come back exactly.
    return text.encode("utf-8", "surrogateescape")


class _Line:
    """Error helper for one line."""

    __slots__ = ("lineno", "source")

    def __init__(self, source: str, lineno: int) -> None:
        self.source = source
        self.lineno = lineno

    def error(self, message: str, field: str | None = None) -> InputError:
        return InputError(message, source=self.source, lineno=self.lineno, field=field)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _encode_text(text: str, where: _Line, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise where.error("the string contains a lone surrogate (not valid Unicode); use base64", field) from None


def _data_field(value: Any, encoding: Any, where: _Line, field: str) -> bytes | None:
    """key/value of an envelope: string -> UTF-8; null -> None; other JSON -> compact JSON text."""
    if encoding is None and type(value) is str:  # the common case, first
        return _encode_text(value, where, field)
    if encoding is not None and encoding != "base64":
        raise where.error(f'expected "base64" or no encoding, got {json.dumps(encoding)}', f"{field}_encoding")
    if value is None:
        return None
    if encoding == "base64":
        if not isinstance(value, str):
            raise where.error(f"expected a base64 string, got {_json_type(value)}", field)
        return _b64(value, where, field)
    if isinstance(value, str):
        return _encode_text(value, where, field)
    return _encode_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")), where, field)


def _b64(text: str, where: _Line, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise where.error(f"not valid base64 ({exc})", field) from None


_HEADERS_SHAPE = "expected an object or a list of [name, value] pairs"


def _header_value(value: Any, where: _Line) -> bytes:
    if value is None:
        raise where.error("a header value cannot be null", "headers")
    if isinstance(value, str):
        return _encode_text(value, where, "headers")
    return _encode_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")), where, "headers")


def _headers_field(raw: Any, where: _Line) -> Headers:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return tuple((name, _header_value(value, where)) for name, value in raw.items())
    if not isinstance(raw, list):
        raise where.error(_HEADERS_SHAPE, "headers")
    headers: list[tuple[str, bytes]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, list) or len(item) not in (2, 3) or not isinstance(item[0], str):
            raise where.error(f"{_HEADERS_SHAPE} (item {index} is {json.dumps(item)[:60]})", "headers")
        name, value = item[0], item[1]
        if len(item) == 3:
            if item[2] != "base64":
                raise where.error(f'the third element of a header must be "base64" (item {index})', "headers")
            if not isinstance(value, str):
                raise where.error(f"header {name!r}: expected a base64 string", "headers")
            headers.append((name, _b64(value, where, "headers")))
        else:
            headers.append((name, _header_value(value, where)))
    return tuple(headers)


def _partition_field(raw: Any, where: _Line) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise where.error(f"expected an integer >= 0, got {json.dumps(raw)[:40]}", "partition")
    return raw


def _timestamp_field(raw: Any, where: _Line) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return parse_timestamp(raw)
        except ValueError as exc:
            raise where.error(str(exc), "timestamp") from None
    raise where.error(f"expected integer milliseconds or an ISO-8601 string, got {_json_type(raw)}", "timestamp")


_FIELD_SET = frozenset(ENVELOPE_FIELDS)
_KEY_VALUE = frozenset(("key", "value"))


def _envelope(obj: dict[str, Any], where: _Line) -> OutgoingEvent:
    for name in () if obj.keys() <= _FIELD_SET else obj:
        if name not in _FIELD_SET:
            close = difflib.get_close_matches(name, ENVELOPE_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise where.error(f"unknown envelope field{hint}; known fields: {', '.join(ENVELOPE_FIELDS)}", name)
    return OutgoingEvent(
        _data_field(obj["value"], obj.get("value_encoding"), where, "value"),
        _data_field(obj.get("key"), obj.get("key_encoding"), where, "key"),
        _headers_field(obj.get("headers"), where),
        _partition_field(obj.get("partition"), where),
        _timestamp_field(obj.get("timestamp"), where),
    )


def parse_line(line: str, lineno: int, *, raw: bool = False, source: str = "<input>") -> OutgoingEvent:
    """One input line as an event to publish (see the module docstring for the rules).

    Raises :class:`InputError` naming ``source:lineno``, the field and the problem.
    """
    text = _strip_terminator(line)
    if raw or not text.lstrip(" \t\r\n").startswith("{"):
        return OutgoingEvent(value=_payload_bytes(text))
    try:
        obj = _loads_line(text) if text[0] == "{" else _loads(text)
    except json.JSONDecodeError as exc:
        raise _Line(source, lineno).error(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise _Line(source, lineno).error(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise _Line(source, lineno).error("not valid JSON: nested too deeply") from None
    if type(obj) is not dict or "value" not in obj:
        return OutgoingEvent(value=_payload_bytes(text))
    if obj.keys() <= _KEY_VALUE:  # the common envelope: ASCII key and value, nothing else to check
        value, key = obj["value"], obj.get("key")
        if type(value) is str and value.isascii() and (key is None or (type(key) is str and key.isascii())):
            return OutgoingEvent(value.encode(), None if key is None else key.encode())
    return _envelope(obj, _Line(source, lineno))


_orjson_loads = orjson.loads
_new_object = object.__new__


def _slot_setters() -> tuple[Any, ...]:
    """The setters of OutgoingEvent's slots, one per field (``slots=True``: each field a slot)."""
    return tuple(vars(OutgoingEvent)[name].__set__ for name in ("value", "key", "headers", "partition", "timestamp"))


_set_value, _set_key, _set_headers, _set_partition, _set_timestamp = _slot_setters()


def plain_event(value: bytes, key: bytes | None) -> OutgoingEvent:
    """``OutgoingEvent(value, key)`` in less than half the time: a frozen dataclass's ``__init__``
    sets each field through ``object.__setattr__``; here the slots are set directly (the same
    object: equal, same hash, same repr). One of these is made per published line."""
    event = _new_object(OutgoingEvent)
    _set_value(event, value)
    _set_key(event, key)
    _set_headers(event, ())
    _set_partition(event, None)
    _set_timestamp(event, None)
    return event


_SCALARS = frozenset((str, int, bool, type(None)))
_USED_FIELDS = ("value", "key", "partition", "timestamp", "value_encoding", "key_encoding")


def parse_line_bytes(data: bytes, lineno: int, *, raw: bool = False, source: str = "<input>") -> OutgoingEvent:
    """:func:`parse_line` of a line read as bytes, without its line terminator: the same event and the
    same errors as ``parse_line(data.decode("utf-8", "surrogateescape"), ...)``, faster.

    orjson reads the JSON (from the bytes, no decoding first). What orjson reads differently from
    the standard library goes the standard way: a line orjson refuses (it refuses more: lone
    surrogate escapes, numbers too large for a double, invalid UTF-8; and its error messages are
    not ours), and envelopes whose fields could hold an integer beyond 64 bits (orjson makes it a
    float) or a JSON value that is written back as text.
    """
    if raw or data[:1] != b"{":
        if raw or not data.lstrip(b" \t\r\n").startswith(b"{"):
            return OutgoingEvent(value=bytes(data))
        return parse_line(data.decode("utf-8", "surrogateescape"), lineno, raw=raw, source=source)
    try:
        obj = _orjson_loads(data)
    except (orjson.JSONDecodeError, RecursionError):
        return parse_line(data.decode("utf-8", "surrogateescape"), lineno, raw=raw, source=source)
    if type(obj) is not dict or "value" not in obj:
        return OutgoingEvent(value=bytes(data))
    value, key = obj["value"], obj.get("key")
    size = len(obj)  # {"value"} or {"key", "value"}: the common envelope
    if (size == 1 or (size == 2 and "key" in obj)) and type(value) is str and (key is None or type(key) is str):
        # orjson's strings are valid Unicode (no lone surrogates): they always encode
        return plain_event(value.encode(), None if key is None else key.encode())
    if (event := _tail_event(obj, value, key)) is not None:
        return event
    if not _same_as_stdlib(obj):
        return parse_line(data.decode("utf-8", "surrogateescape"), lineno, raw=raw, source=source)
    return _envelope(obj, _Line(source, lineno))


_TAIL_FIELDS = frozenset(("topic", "partition", "offset", "timestamp", "key", "value", "headers"))


def _tail_event(obj: dict[str, Any], value: Any, key: Any) -> OutgoingEvent | None:
    """The event of a line as ``tail -o jsonl`` writes it (text key, value and headers, an ISO
    timestamp), made without the general checks (``tail A -o jsonl | publish B`` copies); None for
    any other line, which the general path reads (and judges)."""
    if type(value) is not str or (key is not None and type(key) is not str) or not obj.keys() <= _TAIL_FIELDS:
        return None
    partition = obj.get("partition")
    if partition is not None and (type(partition) is not int or partition < 0):
        return None
    timestamp = obj.get("timestamp")
    if type(timestamp) is str:
        timestamp = _iso_ms(timestamp)
        if timestamp is None:
            return None
    elif timestamp is not None and type(timestamp) is not int:
        return None
    raw = obj.get("headers")
    headers: Headers = ()
    if raw:
        if type(raw) is not list:
            return None
        pairs = []
        for item in raw:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str or type(item[1]) is not str:
                return None
            pairs.append((item[0], item[1].encode()))
        headers = tuple(pairs)
    elif raw is not None and raw != []:
        return None
    event = _new_object(OutgoingEvent)
    _set_value(event, value.encode())
    _set_key(event, None if key is None else key.encode())
    _set_headers(event, headers)
    _set_partition(event, partition)
    _set_timestamp(event, timestamp)
    return event


def _iso_ms(text: str) -> int | None:
    """:func:`parse_timestamp` of ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (what tail writes), the second parsed
    once for all the events within it; None for any other text."""
    if len(text) != 24 or text[19] != "." or text[23] != "Z":
        return None
    milli = text[20:23]
    if not (milli.isascii() and milli.isdigit()):
        return None
    second = _iso_second(text[:19])
    return None if second is None else second + int(milli)


@functools.lru_cache(maxsize=4096)
def _iso_second(text: str) -> int | None:
    try:
        return parse_timestamp(text + "Z")
    except ValueError:
        return None


def is_plain_envelope(data: bytes) -> bool:
    """Whether ``data`` is a JSON object of a string ``value`` and at most a string ``key``: the
    common line, which :func:`parse_line_bytes` accepts with nothing more to check (a check of the
    input that needs no event skips making one)."""
    try:
        obj = _orjson_loads(data)
    except (orjson.JSONDecodeError, RecursionError):
        return False
    if type(obj) is not dict or type(obj.get("value")) is not str:
        return False
    return len(obj) == 1 or (len(obj) == 2 and "key" in obj and (obj["key"] is None or type(obj["key"]) is str))


def _same_as_stdlib(obj: dict[str, Any]) -> bool:
    """Whether the fields an envelope uses were read by orjson as the standard library reads them:
    scalars other than floats (a float may be an integer beyond 64 bits), header values as text."""
    scalars = _SCALARS
    for name in _USED_FIELDS:
        if type(obj.get(name)) not in scalars:
            return False
    headers = obj.get("headers")
    if headers is None:
        return True
    if type(headers) is list:
        return all(type(item) is list and all(type(part) is str for part in item) for item in headers)
    if type(headers) is dict:
        return all(type(part) is str for part in headers.values())
    return False


def parse_header(text: str, where: str) -> tuple[str, bytes]:
    """``NAME=VALUE`` as ``--header`` and the publish dialog take it: the name trimmed, the value
    (everything after the first ``=``) as UTF-8 bytes; UsageError naming ``where`` otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"{where}: {text.strip()[:60]!r} is not NAME=VALUE", hint="e.g. correlation_id=abc-123")
    return name.strip(), value.encode("utf-8", "surrogateescape")
