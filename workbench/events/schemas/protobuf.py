"""Protobuf through the protobuf runtime; ``.proto`` text compiled by protoc (grpcio-tools) in a process of its own."""

from __future__ import annotations

import base64
import binascii
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.events.schemas.base import Codec, Format, Mismatch, SchemaError, SchemaText, flatten, join_path

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
        return join_path(at, unknown.group(1))
    return ".".join(re.findall(r"Failed to parse (\S+) field", message)) or None
