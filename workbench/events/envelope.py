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
import functools
import json
import re
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring as _encode_basestring  # the C encoder
from typing import Any

import orjson

from workbench.broker import Event

__all__ = [
    "dumps_event",
    "event_to_envelope",
    "format_timestamp",
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
