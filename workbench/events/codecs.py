"""Bytes <-> shown value: decoding, one-line safe previews, CloudEvents attributes and ids.

Correlation ids are read by :mod:`workbench.events.correlation` (built on this module).

Pure Python (the standard library, and ``msgpack`` when it happens to be importable). Nothing
here knows about Textual or a broker library.

Terminal safety: previews go through :mod:`workbench.events.text`, so they never carry control,
bidi or other invisible format characters (``safe_text`` is that module's, imported here).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workbench.events.text import safe_text, truncate_escaped

__all__ = [
    "CODECS",
    "CodecError",
    "Decoded",
    "SchemaInfo",
    "cloudevent_attributes",
    "decode",
    "decoded_key",
    "decoded_value",
    "human_size",
    "parse_traceparent",
    "preview",
    "preview_of",
    "safe_text",
]

Kind = Literal["null", "json", "text", "binary", "hex", "base64", "msgpack"]

_HAVE_MSGPACK = importlib.util.find_spec("msgpack") is not None

#: The codec names :func:`decode` accepts (``msgpack`` only when the library is importable).
CODECS: tuple[str, ...] = ("auto", "json", "text", "hex", "base64") + (("msgpack",) if _HAVE_MSGPACK else ())


class CodecError(ValueError):
    """The bytes cannot be decoded with the requested codec; the message says why."""


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """How a key or value was decoded with a schema: the format and where the schema came from
    (registry id, subject and version; or a local file), the Protobuf message, or why it failed."""

    format: str | None  # "avro", "protobuf", "json"; None when the schema could not be had
    id: int | None = None
    subject: str | None = None
    version: int | None = None
    message: str | None = None
    file: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}

    def describe(self) -> str:
        """``avro, subject orders-value v3, id 12`` (or the error after the id)."""
        if self.format is None and self.error:  # the schema could not be had: the reason says it all
            named = self.id is None or f"schema id {self.id}" in self.error
            return self.error if named else f"schema id {self.id}: {self.error}"
        parts = [self.format or "schema"]
        if self.message:
            parts.append(self.message)
        if self.subject:
            parts.append(f"subject {self.subject}" + (f" v{self.version}" if self.version is not None else ""))
        if self.id is not None:
            parts.append(f"id {self.id}")
        if self.file:
            parts.append(f"file {self.file}")
        text = ", ".join(parts)
        return f"{text}: {self.error}" if self.error else text


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded key or value.

    ``kind`` and ``value``:

    - ``"null"``: ``None`` (the broker sent no bytes at all)
    - ``"json"``: the parsed JSON (dict, list, str, int, float, bool or None)
    - ``"text"``: the ``str`` (valid UTF-8 that is not JSON)
    - ``"binary"``: the ``bytes`` (not valid UTF-8)
    - ``"hex"`` / ``"base64"``: the encoded ``str`` (explicit codecs only)
    - ``"msgpack"``: the unpacked object (explicit codec only)

    ``schema``: set when a schema decoded it (kind ``json``: the value as plain JSON), or tried to
    and failed (kind ``binary``, the exact bytes, and ``schema.error`` says why).
    """

    kind: Kind
    value: Any
    schema: SchemaInfo | None = None


_NULL = Decoded("null", None)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder (json.loads with arguments would build a new one per call).
_loads_strict = json.JSONDecoder(parse_constant=_reject_constant).decode
"""``json.loads`` without NaN/Infinity. Raises ValueError (incl. the int digit limit) or
RecursionError for absurd nesting."""


def decode(data: bytes | None, codec: str = "auto") -> Decoded:
    """Decode ``data`` with ``codec`` (one of :data:`CODECS`).

    ``auto`` never raises: valid UTF-8 that parses as strict JSON (any JSON value: object, array
    or scalar; no NaN/Infinity) is ``json``, other valid UTF-8 is ``text``, anything else is
    ``binary``. The explicit codecs raise :class:`CodecError` when the bytes do not fit.
    ``None`` is ``null`` for every codec.
    """
    if codec not in CODECS:
        raise CodecError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}")
    if data is None:
        return _NULL
    if type(data) is not bytes:
        data = bytes(data)
    if codec == "auto":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Decoded("binary", data)
        if _could_be_json(text):
            try:
                return Decoded("json", _loads_strict(text))
            except (ValueError, RecursionError):
                pass
        return Decoded("text", text)
    if codec == "hex":
        return Decoded("hex", data.hex())
    if codec == "base64":
        return Decoded("base64", base64.b64encode(data).decode("ascii"))
    if codec == "msgpack":
        import msgpack  # optional; only listed in CODECS when importable

        try:
            return Decoded("msgpack", msgpack.unpackb(data, raw=False, strict_map_key=False))
        except Exception as exc:  # msgpack raises several unrelated types
            raise CodecError(f"not valid MessagePack: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
    if codec == "text":
        return Decoded("text", text)
    try:  # codec == "json"
        return Decoded("json", _loads_strict(text))
    except json.JSONDecodeError as exc:
        raise CodecError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise CodecError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise CodecError("not valid JSON: nested too deeply") from None


_JSON_START = frozenset('{["-0123456789tfn')


def _could_be_json(text: str) -> bool:
    """Cheap pre-check so that plain text does not pay for a failing ``json.loads``."""
    stripped = text.lstrip(" \t\r\n")
    return bool(stripped) and stripped[0] in _JSON_START


def decoded_value(event: Any) -> Decoded:
    """An event's value as every read path shows it: the schema-decoded value when the read boundary
    decoded one (``event.metadata["decoded_value"]``), else :func:`decode` of the bytes."""
    found = event.metadata.get("decoded_value") if event.metadata else None
    return found if found is not None else decode(event.value)


def decoded_key(event: Any) -> Decoded:
    """An event's key, as :func:`decoded_value` for values."""
    found = event.metadata.get("decoded_key") if event.metadata else None
    return found if found is not None else decode(event.key)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def preview_of(decoded: Decoded | None, data: bytes | None, limit: int = 120, *, window: int | None = None) -> str:
    """:func:`preview` of a key or value, where a schema-decoded one shows as its compacted JSON and a
    failed one as ``[schema 12: why] 0x...``."""
    if decoded is None or decoded.schema is None:
        return preview(data, limit, window=window)
    if decoded.schema.error is None:
        return preview(_compact(decoded.value), limit, window=window)
    reason = safe_text(decoded.schema.describe())
    return f"[{reason}] {preview(data, max(limit - len(reason) - 3, 16), window=window)}"


# --------------------------------------------------------------------------- preview


def human_size(n: int) -> str:
    """``512 B``, ``1.5 kB``, ``10.0 MB`` (decimal units)."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 999.95 or unit == "TB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


# JSON strings (possibly cut at the end of a prefix) or runs of anything but whitespace.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[^ \t\r\n"]+', re.DOTALL)
_PARTIAL_TAIL = re.compile(
    r'[ \t\r\n]*(?:"[^"\\]*(?:\\.[^"\\]*)*\\?|-?[0-9.eE+-]*|t|tr|tru|f|fa|fal|fals|n|nu|nul)[ \t\r\n]*\Z',
    re.DOTALL,
)


def _compact_json(text: str) -> str:
    """Remove the insignificant whitespace of JSON text, keeping strings (even a cut one) as they are.
    (The tokens between the whitespace, joined: no Python call per token, which counts in a list row.)"""
    return "".join(_JSON_TOKENS.findall(text)).strip()


def _is_json_prefix(text: str) -> bool:
    """Whether ``text`` (the beginning of a longer document) looks like the start of JSON.

    The parser may only fail because the text ends: the error must point into the last token.
    """
    try:
        _loads_strict(text)
        return True
    except json.JSONDecodeError as exc:
        return _PARTIAL_TAIL.match(text, exc.pos) is not None
    except (ValueError, RecursionError):
        return False


def preview(data: bytes | None, limit: int = 120, *, window: int | None = None) -> str:
    """A one-line, terminal-safe preview of a key or value for tables.

    JSON (object or array) is shown compacted, text with :func:`safe_text` escapes, other bytes
    as ``0x`` + hex. When the preview is cut, it ends with ``…`` and the total size, e.g.
    ``… (10.0 MB)``: the result is at most ``limit`` characters plus that suffix. Only a prefix of
    the data is looked at, so a 10 MB value costs no more than a small one. ``None`` is ``null``.

    ``window``: how many bytes to look at (default: 8 kB or more). A list row that repaints many
    times a second passes a few times ``limit``: a JSON value longer than that is then shown as
    a compacted prefix (only that prefix is checked, never the whole value parsed), with its size.
    """
    if data is None:
        return "null"
    limit = max(int(limit), 1)
    total = len(data)
    window = max(8192, limit * 16) if window is None else max(int(window), limit // 2 + 1)
    head = bytes(data[:window])
    cut_bytes = total > len(head)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A prefix may end inside a multi-byte character: that is still text.
        if cut_bytes and exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            text = head[: exc.start].decode("utf-8")
        else:
            text = None
    if text is None:
        body = "0x" + head[: max((limit - 2) // 2, 0)].hex()
        cut = (limit - 2) // 2 < total
        body = body[:limit]
    else:
        stripped = text.lstrip(" \t\r\n")
        if stripped[:1] in ("{", "[") and (_is_json_prefix(text) if cut_bytes else _is_json_document(text)):
            # Compaction is lexical, so a prefix is enough: try a small one first.
            small = limit * 4 + 64
            compacted = _compact_json(text[:small]) if len(text) > small else ""
            if len(compacted) <= limit:
                compacted = _compact_json(text)
            text = compacted
        body, cut = truncate_escaped(text[: limit + 1], limit)
        cut = cut or len(text) > limit or cut_bytes
    if cut:
        return f"{body}… ({human_size(total)})"
    return body


def _is_json_document(text: str) -> bool:
    try:
        _loads_strict(text)
        return True
    except (ValueError, RecursionError):
        return False


# --------------------------------------------------------------------------- CloudEvents

_CE_PREFIXES = ("ce_", "ce-", "cloudevents:", "cloudevents_")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z", re.DOTALL)


def parse_traceparent(text: str | bytes | None) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a valid W3C ``traceparent`` (``version-traceid-parentid-flags``,
    lowercase hex of 2-32-16-2 digits, ids not all zero, version not ``ff``; version 00 has
    exactly four fields), else None."""
    if text is None:
        return None
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _TRACEPARENT.match(text.strip(" \t"))
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def _header_text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "replace")


def _iter_headers(headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str] | None):
    if not headers:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def _binary_attributes(
    headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str] | None,
) -> tuple[dict[str, str], str | None]:
    """Binary-mode CloudEvents attributes from headers, and the plain ``traceparent`` header."""
    attributes: dict[str, str] = {}
    traceparent: str | None = None
    for name, value in _iter_headers(headers):
        lowered = name.lower()
        if lowered == "traceparent":
            traceparent = _header_text(value)
            continue
        for prefix in _CE_PREFIXES:
            if lowered.startswith(prefix) and len(lowered) > len(prefix):
                attributes[lowered[len(prefix) :]] = _header_text(value)
                break
    return attributes, traceparent


def _structured_attributes(value_json: Any) -> dict[str, str]:
    if not (isinstance(value_json, dict) and "specversion" in value_json and "type" in value_json):
        return {}
    attributes: dict[str, str] = {}
    for name, value in value_json.items():
        if name in ("data", "data_base64"):
            continue
        text = value if isinstance(value, str) else id_text(value)
        if text is not None:
            attributes[name.lower()] = text
    return attributes


def cloudevent_attributes(
    headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str] | None,
    value_json: Any = None,
) -> dict[str, str]:
    """The CloudEvents context attributes of an event, ``{}`` when it is not a CloudEvent.

    Binary mode: headers named ``ce_<attr>`` (Kafka), ``ce-<attr>`` (HTTP), ``cloudEvents:<attr>``
    or ``cloudEvents_<attr>`` (AMQP), case-insensitive; the last occurrence wins. Structured mode
    (used when no such header exists): ``value_json`` is a JSON object with ``specversion`` and
    ``type``; its string and number members other than ``data``/``data_base64`` are the
    attributes. Extensions are included. Keys are lowercase attribute names, values strings
    (``specversion``, ``type``, ``source``, ``id``, ``subject``, ``time`` ... as present).

    A valid W3C ``traceparent`` (CloudEvents extension attribute first, then a plain header)
    adds ``trace_id`` and ``span_id``.
    """
    attributes, traceparent = _binary_attributes(headers)
    if not attributes:
        attributes = _structured_attributes(value_json)
    for candidate in (attributes.get("traceparent"), traceparent):
        ids = parse_traceparent(candidate)
        if ids is not None:
            attributes["trace_id"], attributes["span_id"] = ids
            break
    return attributes


# --------------------------------------------------------------------------- correlation


def id_text(value: Any) -> str | None:
    """An id as text: strings (not empty) and numbers; anything else (a bool, an object) is no id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        return str(value)
    return None
