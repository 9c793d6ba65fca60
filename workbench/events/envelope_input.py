"""Reading JSONL envelope lines back into events to publish (see :mod:`workbench.events.envelope` for the
format): the general parser, and the fast paths for the lines `tail -o jsonl` and plain JSON values make."""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import json
from typing import Any

import orjson

from workbench.broker import Headers, OutgoingEvent
from workbench.errors import UsageError
from workbench.events.envelope import ENVELOPE_FIELDS, parse_timestamp
from workbench.events.redaction import REDACTED_HEADER, is_redacted

__all__ = [
    "InputError",
    "is_plain_envelope",
    "parse_header",
    "parse_line",
    "parse_line_bytes",
    "plain_envelope_event",
    "plain_event",
]


class InputError(ValueError):
    """A malformed input line. ``str(exc)`` is ``"source:lineno: message"``."""

    def __init__(
        self, message: str, *, source: str, lineno: int, field: str | None = None, hint: str | None = None
    ) -> None:
        self.source = source
        self.lineno = lineno
        self.field = field
        self.hint = hint  # what to do, where the generic advice (--raw) would be wrong
        self.reason = message
        where = f"field {field!r}: " if field else ""
        super().__init__(f"{source}:{lineno}: {where}{message}")


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

    def error(self, message: str, field: str | None = None, *, hint: str | None = None) -> InputError:
        return InputError(message, source=self.source, lineno=self.lineno, field=field, hint=hint)


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
    headers = _headers_of(raw, where)
    if is_redacted(headers):
        raise where.error(
            f"a redacted copy (header {REDACTED_HEADER}: written by --redact), not the original event",
            "headers",
            hint="publish from an unredacted source: tail -o jsonl (or capture) without --redact",
        )
    return headers


def _headers_of(raw: Any, where: _Line) -> Headers:
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
            if item[0] == REDACTED_HEADER:
                return None  # the general path refuses it, naming the line
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


def plain_envelope_event(data: bytes, default_key: bytes | None = None) -> OutgoingEvent | None:
    """The event of a plain envelope line (:func:`is_plain_envelope`; its line end may be left on),
    as :func:`parse_line_bytes` makes it, with ``default_key`` where it has no key (``--key``); None
    for any other line. The hot path of sending a checked input: one call a line."""
    try:
        obj = _orjson_loads(data)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    if type(obj) is not dict:
        return None
    value = obj.get("value")
    if type(value) is not str:
        return None
    size = len(obj)
    if size == 1:
        return plain_event(value.encode(), default_key)
    if size != 2 or "key" not in obj:
        return None
    key = obj["key"]
    if type(key) is str:
        return plain_event(value.encode(), key.encode())
    return plain_event(value.encode(), default_key) if key is None else None


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
