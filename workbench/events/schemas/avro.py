"""Avro through fastavro: payloads decoded to plain JSON, JSON encoded back (guided by the schema)."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from workbench.events.schemas.base import Codec, Format, Mismatch, SchemaError, SchemaText, flatten, join_path

# --------------------------------------------------------------------------- Avro


def _plain(value: Any) -> Any:
    """fastavro's Python values (bytes, Decimal, datetimes, UUIDs) as plain JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")  # Avro's JSON encoding: one code point per byte
    if isinstance(value, decimal.Decimal):
        # A number that filters can compare; as text when a float would not show it exactly.
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]  # as Protobuf's JSON mapping writes them: JSON has no NaN
    return value


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _avro_sample(schema: Any, named: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    if isinstance(schema, list):  # a union: its first branch (the one a default must fit)
        return _avro_sample(schema[0], named, seen) if schema else None
    if isinstance(schema, str):
        if schema in named and schema not in seen:
            return _avro_sample(named[schema], named, seen | {schema})
        return {
            "null": None,
            "boolean": False,
            "int": 0,
            "long": 0,
            "float": 0.0,
            "double": 0.0,
            "bytes": "",
            "string": "",
        }.get(schema)
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return _avro_sample(kind, named, seen)
    if schema.get("logicalType") == "decimal":
        return 0
    if schema.get("logicalType") == "uuid":
        return str(uuid.UUID(int=0))  # a string that is not a UUID would not decode
    if kind == "record" or kind == "error":
        return {
            f["name"]: f["default"] if "default" in f else _avro_sample(f["type"], named, seen)
            for f in schema.get("fields", ())
        }
    if kind == "enum":
        return (schema.get("symbols") or [""])[0]
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if kind == "fixed":
        return "\x00" * int(schema.get("size", 0))
    return _avro_sample(kind, named, seen)


class AvroCodec(Codec):
    format: Format = "avro"

    def __init__(self, schema: SchemaText) -> None:
        import fastavro

        named: dict[str, Any] = {}
        self.named = named
        try:
            for _, ref in flatten(schema.references):
                fastavro.parse_schema(json.loads(ref.text), named_schemas=named)
            self.raw = json.loads(schema.text)
            self.schema = fastavro.parse_schema(self.raw, named_schemas=named)
        except (ValueError, TypeError, KeyError) as exc:  # fastavro's SchemaParseException is a ValueError
            raise SchemaError(f"invalid Avro schema: {exc}") from None
        self._reader = fastavro.schemaless_reader
        self._writer = fastavro.schemaless_writer
        self._paths = _avro_record_paths(self.schema, named)

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        stream = io.BytesIO(payload)
        try:
            value = self._reader(stream, self.schema, None)
        except Exception as exc:  # noqa: BLE001 - corrupt bytes raise anything from EOFError to IndexError
            raise SchemaError(f"not valid Avro for this schema: {type(exc).__name__}: {exc}") from None
        left = len(payload) - stream.tell()
        if left:
            raise SchemaError(f"not valid Avro for this schema: {left} byte(s) left after the value")
        return _plain(value), None

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        from fastavro.validation import ValidationError, validate

        value = _avro_value(value, self.schema, self.named, "")
        try:
            validate(value, self.schema, raise_errors=True)
        except ValidationError as exc:
            raise _avro_mismatch(exc, self._paths) from None
        out = io.BytesIO()
        try:
            self._writer(out, self.schema, value)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise Mismatch(f"does not fit the Avro schema: {exc}") from None
        return out.getvalue(), None

    def template(self, message: str | None = None) -> Any:
        return _avro_sample(self.schema, self.named)


def _avro_mismatch(exc: Exception, paths: Mapping[str, str]) -> Mismatch:
    """fastavro names the failing field as ``Namespace.Record.field``: named by its path in the value
    instead (``total.amount``), where the record is found in the schema (``paths``)."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return Mismatch(f"does not fit the Avro schema: {exc}")
    first = errors[0]
    where = getattr(first, "field", None)
    field_name = None
    if isinstance(where, str) and where:
        record, _, name = where.rpartition(".")
        field_name = join_path(paths[record], name) if paths.get(record) else name
    expected = getattr(first, "schema", None)
    datum = getattr(first, "datum", None)
    shown = json.dumps(datum, default=str)[:60]
    return Mismatch(f"{shown} is not a valid {json.dumps(expected, default=str)[:80]}", field_name)


# JSON text -> the Python values fastavro writes, for the logical types that decode to text.
_AVRO_TIMES: dict[str, Any] = {
    "timestamp-millis": dt.datetime.fromisoformat,
    "timestamp-micros": dt.datetime.fromisoformat,
    "local-timestamp-millis": dt.datetime.fromisoformat,
    "local-timestamp-micros": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time-millis": dt.time.fromisoformat,
    "time-micros": dt.time.fromisoformat,
}


_FROM_NON_FINITE = {text: float(name) for name, text in _NON_FINITE.items()}


def _avro_value(value: Any, schema: Any, named: Mapping[str, Any], path: str) -> Any:
    """A plain JSON value as fastavro writes it: the inverse of :func:`_plain` where the schema says
    so (decimals from numbers or text, dates and times from ISO-8601 text, bytes and fixed from text
    with one code point per byte), so a value shown decoded can be published back. Anything else is
    left for fastavro's validation to judge."""
    if isinstance(schema, str):
        if schema in named:
            return _avro_value(value, named[schema], named, path)
        if schema in ("float", "double") and value in _FROM_NON_FINITE:
            return _FROM_NON_FINITE[value]
        return _avro_bytes(value, path) if schema == "bytes" and isinstance(value, str) else value
    if isinstance(schema, list):
        branch = _avro_branch(value, schema, named)
        return value if branch is None else _avro_value(value, branch, named, path)
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in named):
        return _avro_value(value, kind, named, path)
    logical = schema.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _avro_decimal(value, schema, path)
    if logical in _AVRO_TIMES and isinstance(value, str):
        try:
            return _AVRO_TIMES[logical](value)
        except ValueError:
            raise Mismatch(f"{json.dumps(value)[:60]} is not an ISO-8601 {logical}", path or None) from None
    if logical == "uuid" and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise Mismatch(f"{json.dumps(value)[:60]} is not a UUID", path or None) from None
    if kind in ("bytes", "fixed") and isinstance(value, str):
        return _avro_bytes(value, path)
    if kind in ("float", "double") and value in _FROM_NON_FINITE:
        return _FROM_NON_FINITE[value]
    if kind in ("record", "error") and isinstance(value, dict):
        out = dict(value)
        for f in schema.get("fields", ()):
            if f["name"] in value:
                out[f["name"]] = _avro_value(value[f["name"]], f["type"], named, join_path(path, f["name"]))
        return out
    if kind == "array" and isinstance(value, list):
        return [_avro_value(v, schema.get("items"), named, join_path(path, str(i))) for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: _avro_value(v, schema.get("values"), named, join_path(path, k)) for k, v in value.items()}
    return value


def _avro_bytes(value: str, path: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise Mismatch("bytes are given as text with one code point (0-255) per byte", path or None) from None


def _avro_decimal(value: Any, schema: Mapping[str, Any], path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value  # fastavro's validation says what is wrong
    scale, precision = int(schema.get("scale", 0)), schema.get("precision")
    shown = json.dumps(value)[:60]
    try:
        number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        exact = number.quantize(decimal.Decimal(1).scaleb(-scale)) if number.is_finite() else None
    except decimal.InvalidOperation:
        exact = None
    if exact is None:
        raise Mismatch(f"{shown} is not a decimal number", path or None)
    if exact != number:
        raise Mismatch(f"{shown} has more than {scale} decimal place(s)", path or None)
    if isinstance(precision, int) and len(exact.as_tuple().digits) > precision:
        raise Mismatch(f"{shown} has more than {precision} digit(s)", path or None)
    return exact


def _avro_fits(value: Any, schema: Any, named: Mapping[str, Any], loose: bool) -> bool:
    """Whether a plain JSON value is meant for this branch of a union (``loose``: after a conversion
    by :func:`_avro_value`)."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
        return _avro_fits(value, schema["type"], named, loose)
    if isinstance(schema, list):
        return any(_avro_fits(value, s, named, loose) for s in schema)
    kind = schema if isinstance(schema, str) else schema.get("type")
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if value is None or isinstance(value, bool):
        return kind == ("null" if value is None else "boolean")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return loose and isinstance(value, (int, float, str))
    if logical in _AVRO_TIMES and isinstance(value, str):
        return loose
    if kind in ("int", "long"):
        return isinstance(value, int)
    if kind in ("float", "double"):
        return isinstance(value, (int, float)) or (loose and value in _FROM_NON_FINITE)
    if kind == "string":
        return isinstance(value, str)
    if kind in ("bytes", "fixed"):
        return isinstance(value, bytes) or (loose and isinstance(value, str))
    if kind == "enum":
        return value in (schema.get("symbols") or ())
    if kind == "array":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    if kind in ("record", "error") and isinstance(value, dict):
        fields = schema.get("fields", ())
        names = {f["name"] for f in fields}
        return set(value) <= names and all(f["name"] in value or "default" in f for f in fields)
    return False


def _avro_branch(value: Any, branches: list[Any], named: Mapping[str, Any]) -> Any:
    """The union branch a plain JSON value is for: the first it fits as it is, else the first it fits
    once converted (``"12.50"`` for a decimal), else None."""
    for loose in (False, True):
        for branch in branches:
            if _avro_fits(value, branch, named, loose):
                return branch
    return None


def _avro_record_paths(schema: Any, named: Mapping[str, Any]) -> dict[str, str]:
    """Where each record type first occurs in a value (``{"shop.Money": "total"}``; the top one at "")."""
    paths: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, str):
            if node in named and node not in paths:
                walk(named[node], path)
        elif isinstance(node, list):
            for branch in node:
                walk(branch, path)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error"):
                name = node.get("name")
                if not isinstance(name, str) or name in paths:
                    return
                paths[name] = path
                for f in node.get("fields", ()):
                    walk(f.get("type"), join_path(path, f["name"]))
            elif kind == "array":
                walk(node.get("items"), path)
            elif kind == "map":
                walk(node.get("values"), path)
            else:
                walk(kind, path)

    walk(schema, "")
    return paths
