"""One parsed schema per format, that decodes a payload to plain JSON values and encodes JSON back.

The maintained codecs do the work: fastavro (Avro), the protobuf runtime (Protobuf; ``.proto`` text is
compiled by protoc, shipped in grpcio-tools), jsonschema (JSON Schema). What this module adds is the
part every read path needs: decoded values are plain JSON (dict, list, str, int, float, bool, None), so
tables, filters, correlation rules and templates treat an Avro value exactly like a JSON one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import io
import json
import math
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Format = Literal["avro", "protobuf", "json"]
FORMATS: tuple[Format, ...] = ("avro", "protobuf", "json")


class SchemaError(ValueError):
    """A schema cannot be parsed, or a payload does not decode with it; the message says why."""


class Mismatch(ValueError):
    """A JSON value does not fit a schema: ``field`` is where (``customer.email``), or None for the whole."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SchemaText:
    """A schema as a registry or a file gives it: its format, its text, and what it references
    (``(name, schema)`` pairs: the name is the import path of a ``.proto``, the full name of an Avro
    type, or the ``$ref`` of a JSON schema)."""

    format: Format
    text: str
    references: tuple[tuple[str, SchemaText], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """A plain form for capture files (the schemas an incident file needs to decode offline)."""
        return {
            "format": self.format,
            "text": self.text,
            "references": [[name, ref.to_json()] for name, ref in self.references],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SchemaText:
        fmt = data.get("format")
        if fmt not in FORMATS or not isinstance(data.get("text"), str):
            raise SchemaError(f"not a stored schema: format {fmt!r}")
        refs = tuple((str(name), cls.from_json(ref)) for name, ref in data.get("references") or ())
        return cls(fmt, data["text"], refs)


def flatten(references: Iterable[tuple[str, SchemaText]]) -> list[tuple[str, SchemaText]]:
    """Every referenced schema once, dependencies before their users."""
    seen: dict[str, SchemaText] = {}

    def visit(name: str, schema: SchemaText) -> None:
        if name in seen:
            return
        for ref_name, ref in schema.references:
            visit(ref_name, ref)
        seen[name] = schema

    for name, schema in references:
        visit(name, schema)
    return list(seen.items())


def parse(schema: SchemaText, *, name: str = "schema") -> Codec:
    """The codec of a schema (``name``: what to call it in errors and, for ``.proto`` text, its file name)."""
    if schema.format == "avro":
        return AvroCodec(schema)
    if schema.format == "protobuf":
        return ProtobufCodec(schema, name)
    return JsonSchemaCodec(schema)


class Codec:
    """A parsed schema."""

    format: Format

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        """``(plain JSON value, message type name or None)``; raises :class:`SchemaError`."""
        raise NotImplementedError

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        """``(payload, Protobuf message indexes or None)``; raises :class:`Mismatch`."""
        raise NotImplementedError

    def template(self, message: str | None = None) -> Any:
        """A sample value with every field, for a publish form to start from."""
        raise NotImplementedError


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
        field_name = _join(paths[record], name) if paths.get(record) else name
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


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


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
                out[f["name"]] = _avro_value(value[f["name"]], f["type"], named, _join(path, f["name"]))
        return out
    if kind == "array" and isinstance(value, list):
        return [_avro_value(v, schema.get("items"), named, _join(path, str(i))) for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: _avro_value(v, schema.get("values"), named, _join(path, k)) for k, v in value.items()}
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
                    walk(f.get("type"), _join(path, f["name"]))
            elif kind == "array":
                walk(node.get("items"), path)
            elif kind == "map":
                walk(node.get("values"), path)
            else:
                walk(kind, path)

    walk(schema, "")
    return paths


# --------------------------------------------------------------------------- Protobuf


def _well_known(name: str) -> Any:
    """The FileDescriptorProto of a file the protobuf runtime ships (``google/protobuf/*.proto``...)."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    import_well_known_types()
    try:
        found = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return None
    proto = descriptor_pb2.FileDescriptorProto()
    found.CopyToProto(proto)
    return proto


def import_well_known_types() -> None:
    """Load the runtime's well-known types into its default pool (so they can be imported)."""
    from google.protobuf import (  # noqa: F401 - imported for their registration
        any_pb2,
        api_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        source_context_pb2,
        struct_pb2,
        timestamp_pb2,
        type_pb2,
        wrappers_pb2,
    )


def _descriptor_proto(text: str) -> Any:
    """A schema given as a base64 ``FileDescriptorProto`` (as Confluent's Python serializer registers
    it), or None when the text is ``.proto`` source."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.message import DecodeError

    stripped = text.strip()
    if not stripped or any(c.isspace() for c in stripped) or "{" in stripped:
        return None
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return None
    proto = descriptor_pb2.FileDescriptorProto()
    try:
        proto.ParseFromString(raw)
    except DecodeError:
        return None
    return proto


def compile_proto(files: Mapping[str, str], precompiled: Iterable[Any] = ()) -> list[Any]:
    """Compile ``.proto`` sources (``{import path: text}``) with protoc, the ``precompiled``
    FileDescriptorProtos available to import: every file compiled and imported, dependencies first."""
    import importlib.util
    import subprocess
    import sys

    from google.protobuf import descriptor_pb2

    found = importlib.util.find_spec("grpc_tools")
    if found is None or not found.submodule_search_locations:
        raise SchemaError(".proto text needs protoc: install grpcio-tools")
    includes = Path(next(iter(found.submodule_search_locations))) / "_proto"
    with tempfile.TemporaryDirectory(prefix="workbench-proto-") as tmp:
        root = Path(tmp) / "src"
        for name, text in files.items():
            target = (root / name).resolve()
            if root.resolve() not in target.parents:
                raise SchemaError(f"a .proto import path leaves the source tree: {name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"-I{includes}"]
        given = descriptor_pb2.FileDescriptorSet(file=list(precompiled))
        if given.file:
            (Path(tmp) / "given.pb").write_bytes(given.SerializeToString())
            args.append(f"--descriptor_set_in={Path(tmp) / 'given.pb'}")
        out = Path(tmp) / "set.pb"
        # protoc in a process of its own: it writes its errors to the file descriptor 2.
        done = subprocess.run(
            [*args, f"--descriptor_set_out={out}", "--include_imports", *files],
            capture_output=True,
            text=True,
            cwd=tmp,
            timeout=60,
        )
        if done.returncode != 0 or not out.exists():
            detail = done.stderr.strip().replace(f"{root}/", "") or f"protoc exited with {done.returncode}"
            raise SchemaError(f"invalid .proto schema: {detail}")
        return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


class ProtobufCodec(Codec):
    format: Format = "protobuf"

    def __init__(self, schema: SchemaText | None, name: str = "schema", *, compiled: tuple[Any, dict] | None = None):
        """From a schema's text, or ``compiled``: ``(main FileDescriptorProto, every file by name)``."""
        from google.protobuf import descriptor_pool

        main_name = name if name.endswith(".proto") else f"{name}.proto"
        if compiled is None:
            assert schema is not None
            compiled = self._file_protos(schema, main_name)
        self.main, protos = compiled
        self.pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(file_name: str) -> None:
            if file_name in added:
                return
            proto = protos.get(file_name) or _well_known(file_name)
            if proto is None:
                raise SchemaError(f"the schema imports {file_name!r}, which no reference provides")
            added.add(file_name)
            for dependency in proto.dependency:
                add(dependency)
            try:
                self.pool.Add(proto)
            except (TypeError, ValueError) as exc:
                raise SchemaError(f"invalid Protobuf schema {file_name!r}: {exc}") from None

        for file_name in protos:
            add(file_name)
        if not self.main.message_type:
            raise SchemaError("the Protobuf schema defines no message")

    @classmethod
    def from_descriptor_set(cls, data: bytes, message: str) -> tuple[ProtobufCodec, list[int]]:
        """A compiled descriptor set (``protoc --descriptor_set_out --include_imports``), and the
        indexes of ``message`` (its full name) in the file that defines it."""
        from google.protobuf import descriptor_pb2
        from google.protobuf.message import DecodeError

        try:
            files = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
        except DecodeError as exc:
            raise SchemaError(f"not a compiled descriptor set: {exc}") from None
        by_name = {f.name: f for f in files}
        for main in files:  # the file that defines the message (files of enums or options alone are skipped)
            package = f"{main.package}." if main.package else ""
            if message.startswith(package) and _message_path(main.message_type, message.removeprefix(package)):
                codec = cls(None, main.name, compiled=(main, by_name))
                return codec, codec._indexes_of(message, full=True)
        raise SchemaError(f"the descriptor set defines no message {message!r}")

    @staticmethod
    def _file_protos(schema: SchemaText, main_name: str) -> tuple[Any, dict[str, Any]]:
        """The main file and every file (main included) as FileDescriptorProtos by name."""
        protos: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for ref_name, ref in flatten(schema.references):
            proto = _descriptor_proto(ref.text)
            if proto is None:
                sources[ref_name] = ref.text
            else:
                proto.name = proto.name or ref_name
                protos[ref_name] = protos[proto.name] = proto
        main = _descriptor_proto(schema.text)
        if main is None:
            sources[main_name] = schema.text
        else:
            main.name = main.name or main_name
        if sources:
            for proto in compile_proto(sources, {id(p): p for p in protos.values()}.values()):
                protos.setdefault(proto.name, proto)
        main = main or protos[main_name]
        protos[main.name] = main
        return main, protos

    def _descriptor(self, indexes: list[int]) -> Any:
        messages = self.main.message_type
        package = f"{self.main.package}." if self.main.package else ""
        try:
            path = [messages[indexes[0]].name]
            nested = messages[indexes[0]]
            for index in indexes[1:]:
                nested = nested.nested_type[index]
                path.append(nested.name)
        except IndexError:
            raise SchemaError(f"message indexes {indexes} name no message of the schema") from None
        return self.pool.FindMessageTypeByName(package + ".".join(path))

    def _message_class(self, descriptor: Any) -> Any:
        from google.protobuf.message_factory import GetMessageClass

        return GetMessageClass(descriptor)

    def _indexes_of(self, message: str | None, *, full: bool = False) -> list[int]:
        """The indexes of a message named by its simple or full name (the first message by default);
        ``full``: only the full name counts."""
        if message is None:
            return [0]
        package = f"{self.main.package}." if self.main.package else ""
        if full and not message.startswith(package):
            raise Mismatch(f"no message {message!r} in {self.main.name}")
        found = _message_path(self.main.message_type, message.removeprefix(package))
        if found is None:
            names = ", ".join(package + t.name for t in self.main.message_type)
            raise Mismatch(f"the schema has no message {message!r} (it has {names})")
        return found

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError

        descriptor = self._descriptor(indexes or [0])
        try:
            message = self._message_class(descriptor).FromString(bytes(payload))
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise SchemaError(f"not valid Protobuf for {descriptor.full_name}: {exc}") from None
        # proto3 scalars, enums, lists and maps without presence are shown at their zero value (an unset
        # one *is* zero: a filter on status == "NEW" must see it); unset messages and optionals are left out
        value = json_format.MessageToDict(
            message,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True,
            unquote_int64_if_possible=True,
        )
        return value, descriptor.full_name

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        from google.protobuf import json_format

        indexes = self._indexes_of(message)
        descriptor = self._descriptor(indexes)
        if not isinstance(value, dict):
            raise Mismatch(f"{descriptor.full_name} needs a JSON object, got {type(value).__name__}")
        target = self._message_class(descriptor)()
        try:
            json_format.ParseDict(value, target)
        except json_format.ParseError as exc:
            text = " ".join(str(exc).split())  # one line (protobuf lists the known fields on a second one)
            raise Mismatch(f"does not fit {descriptor.full_name}: {text}", _protobuf_field(text)) from None
        return target.SerializeToString(), indexes

    def template(self, message: str | None = None) -> Any:

        return _protobuf_sample(self._descriptor(self._indexes_of(message)), frozenset())


def _message_path(types: Any, wanted: str, prefix: str = "", path: tuple[int, ...] = ()) -> list[int] | None:
    """The indexes of a message among a file's ``message_type`` (``wanted``: its name without the
    package, dotted for a nested one), or None."""
    for i, t in enumerate(types):
        dotted = prefix + t.name
        if wanted == dotted or (wanted == t.name and not prefix):
            return [*path, i]
        found = _message_path(t.nested_type, wanted, dotted + ".", (*path, i))
        if found:
            return found
    return None


def _repeated(f: Any) -> bool:
    """Whether a field is repeated (``label`` is gone from protobuf 7's descriptors; ``is_repeated``
    is not in older runtimes)."""
    from google.protobuf.descriptor import FieldDescriptor

    repeated = getattr(f, "is_repeated", None)
    return bool(repeated) if repeated is not None else f.label == FieldDescriptor.LABEL_REPEATED


def _protobuf_sample(descriptor: Any, seen: frozenset[str]) -> dict[str, Any]:
    """Every field of a message with its zero value; nested messages filled in (once per type on a path)."""
    from google.protobuf.descriptor import FieldDescriptor

    sample: dict[str, Any] = {}
    for f in descriptor.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            sample[f.name] = {}
        elif _repeated(f):
            sample[f.name] = []
        elif f.message_type is not None:
            name = f.message_type.full_name
            if name.startswith("google.protobuf.") or name in seen:
                continue  # well-known types have JSON forms of their own: left out
            sample[f.name] = _protobuf_sample(f.message_type, seen | {descriptor.full_name})
        elif f.enum_type is not None:
            sample[f.name] = f.enum_type.values[0].name
        elif f.type == FieldDescriptor.TYPE_BOOL:
            sample[f.name] = False
        elif f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            sample[f.name] = ""
        elif f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            sample[f.name] = 0.0
        else:
            sample[f.name] = 0
    return sample


def _protobuf_field(message: str) -> str | None:
    """The field protobuf's ParseError names, as a path: ``Failed to parse total field: Failed to parse
    units field: ...`` is ``total.units``; ``no field named "foo" at "Order.lines[0]"`` is ``lines.0.foo``."""
    unknown = re.search(r'no field named "([^"]+)" at "([^"]*)"', message)
    if unknown:
        at = re.sub(r"\[(\d+)\]", r".\1", unknown.group(2)).partition(".")[2]  # without the top message
        return _join(at, unknown.group(1))
    return ".".join(re.findall(r"Failed to parse (\S+) field", message)) or None


# --------------------------------------------------------------------------- JSON Schema


class JsonSchemaCodec(Codec):
    format: Format = "json"

    def __init__(self, schema: SchemaText) -> None:
        try:
            self.raw = json.loads(schema.text)
            self._refs = [(name, json.loads(ref.text)) for name, ref in flatten(schema.references)]
        except ValueError as exc:
            raise SchemaError(f"invalid JSON Schema: {exc}") from None
        self._validator: Any = None

    def validator(self) -> Any:
        if self._validator is None:
            import jsonschema
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            registry: Registry = Registry().with_resources(
                (name, Resource.from_contents(body, default_specification=DRAFT202012)) for name, body in self._refs
            )
            cls = jsonschema.validators.validator_for(self.raw)
            try:
                cls.check_schema(self.raw)
            except jsonschema.SchemaError as exc:
                raise SchemaError(f"invalid JSON Schema: {exc.message}") from None
            self._validator = cls(self.raw, registry=registry)
        return self._validator

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        try:
            return json.loads(bytes(payload), parse_constant=_reject_constant), None
        except (ValueError, RecursionError) as exc:
            raise SchemaError(f"not valid JSON: {exc}") from None

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        import jsonschema

        try:
            error = jsonschema.exceptions.best_match(self.validator().iter_errors(value))
        except jsonschema.exceptions.RefResolutionError as exc:  # pragma: no cover - depends on the schema
            raise Mismatch(f"the JSON Schema has a reference that does not resolve: {exc}") from None
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or None
            raise Mismatch(error.message, where)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), None

    def template(self, message: str | None = None) -> Any:
        return _json_sample(self.raw, dict(self._refs))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_sample(schema: Any, refs: Mapping[str, Any], depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > 20:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.partition("#")[0] in refs and ref.partition("#")[2] in ("", "/"):
        return _json_sample(refs[ref.partition("#")[0]], refs, depth + 1)  # "money.json" or "money.json#"
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: _json_sample(sub, refs, depth + 1) for name, sub in schema.get("properties", {}).items()}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}.get(str(kind))
