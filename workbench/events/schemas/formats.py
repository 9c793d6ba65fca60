"""One parsed schema per format, that decodes a payload to plain JSON values and encodes JSON back.

The maintained codecs do the work: fastavro (Avro), the protobuf runtime (Protobuf; ``.proto`` text is
compiled by protoc, shipped in grpcio-tools), jsonschema (JSON Schema). What this module adds is the
part every read path needs: decoded values are plain JSON (dict, list, str, int, float, bool, None), so
tables, filters, correlation rules and templates treat an Avro value exactly like a JSON one.
"""

from __future__ import annotations

from workbench.events.schemas.avro import AvroCodec
from workbench.events.schemas.base import FORMATS, Codec, Format, Mismatch, SchemaError, SchemaText, flatten
from workbench.events.schemas.json_schema import JsonSchemaCodec
from workbench.events.schemas.protobuf import ProtobufCodec, compile_proto, import_well_known_types

__all__ = [
    "FORMATS",
    "AvroCodec",
    "Codec",
    "Format",
    "JsonSchemaCodec",
    "Mismatch",
    "ProtobufCodec",
    "SchemaError",
    "SchemaText",
    "compile_proto",
    "flatten",
    "import_well_known_types",
    "parse",
]


def parse(schema: SchemaText, *, name: str = "schema") -> Codec:
    """The codec of a schema (``name``: what to call it in errors and, for ``.proto`` text, its file name)."""
    if schema.format == "avro":
        return AvroCodec(schema)
    if schema.format == "protobuf":
        return ProtobufCodec(schema, name)
    return JsonSchemaCodec(schema)
