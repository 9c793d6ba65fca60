"""Schema-aware events, piece by piece: the wire format, the three codecs, the decoder, local schema files.

Everything is checked against the maintained libraries themselves: bytes are written by fastavro, by
the protobuf runtime with protoc-compiled descriptors, by confluent-kafka's own varint writer, never
by the code under test. The decoder's registry test runs against the real schema registry (through
a TCP pass-through the test opens and closes), so it is marked ``registry``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.common.serde import SchemaId
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass

from tests.brokers import endpoints
from workbench.broker import Event, NotFound
from workbench.config import load_config, resolve
from workbench.errors import ConfigError
from workbench.events.schemas import decoder as decoder_module
from workbench.events.schemas import wire
from workbench.events.schemas.decoder import SchemaDecoder
from workbench.events.schemas.files import FileRule
from workbench.events.schemas.formats import (
    AvroCodec,
    JsonSchemaCodec,
    Mismatch,
    ProtobufCodec,
    SchemaError,
    SchemaText,
    parse,
)
from workbench.events.schemas.registry import Registered, Registry, RegistrySettings

# --------------------------------------------------------------------------- schemas used below

MONEY_AVSC = {
    "type": "record",
    "name": "Money",
    "namespace": "shop",
    "fields": [
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "currency", "type": "string"},
    ],
}
ORDER_AVSC = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ship_on", "type": {"type": "int", "logicalType": "date"}},
        {"name": "total", "type": "shop.Money"},
        {"name": "blob", "type": "bytes"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "refund", "type": ["null", "shop.Money"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
ORDER_AVRO = SchemaText("avro", json.dumps(ORDER_AVSC), (("shop.Money", SchemaText("avro", json.dumps(MONEY_AVSC))),))

MONEY_PROTO = (
    'syntax = "proto3";\npackage shop.common;\n\nmessage Money {\n  int64 units = 1;\n  string currency = 2;\n}\n'
)
ORDER_PROTO = """syntax = "proto3";
package shop;

import "shop/money.proto";
import "google/protobuf/timestamp.proto";

message Order {
  string id = 1;
  shop.common.Money total = 2;
  google.protobuf.Timestamp placed_at = 3;
  repeated Line lines = 4;
  Status status = 5;
  bytes blob = 6;

  message Line {
    string sku = 1;
    int32 qty = 2;
  }
  enum Status {
    NEW = 0;
    PAID = 1;
  }
}

message Refund {
  string order_id = 1;
  double amount = 2;
}
"""
ORDER_PROTOBUF = SchemaText("protobuf", ORDER_PROTO, (("shop/money.proto", SchemaText("protobuf", MONEY_PROTO)),))

MONEY_JSON = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"amount": {"type": "number"}, "currency": {"type": "string", "minLength": 3}},
    "required": ["amount", "currency"],
}
ORDER_JSON = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "total": {"$ref": "money.json"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "total"],
}
ORDER_JSONSCHEMA = SchemaText(
    "json", json.dumps(ORDER_JSON), (("money.json", SchemaText("json", json.dumps(MONEY_JSON))),)
)


def protoc_set(tmp_path: Path, files: dict[str, str], *targets: str) -> bytes:
    """A descriptor set compiled by protoc itself (grpcio-tools), imports included."""
    src = tmp_path / "proto-src"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    out = tmp_path / "set.desc"
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"--descriptor_set_out={out}", "--include_imports"]
        + list(targets or files),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def runtime_pool(descriptor_set: bytes) -> descriptor_pool.DescriptorPool:
    """A pool of the protobuf runtime's own, filled from protoc's output (well-known types included)."""
    from google.protobuf import timestamp_pb2

    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
        if proto.name == "google/protobuf/timestamp.proto":
            pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
        else:
            pool.Add(proto)
    return pool


# --------------------------------------------------------------------------- wire


def test_frame_and_split_are_the_confluent_header() -> None:
    framed = wire.frame(0x01020304, b"payload")
    assert framed == b"\x00\x01\x02\x03\x04payload"
    schema_id, payload = wire.split(framed)  # type: ignore[misc]
    assert schema_id == 0x01020304 and bytes(payload) == b"payload"
    assert wire.split(wire.frame(7, b"")) is not None and bytes(wire.split(wire.frame(7, b""))[1]) == b""  # type: ignore[index]
    # not the wire format: no header, too short, another first byte, nothing at all
    for plain in (b'{"a": 1}', b"\x00\x00\x01", b"\x01\x00\x00\x00\x05xyz", b"", None):
        assert wire.split(plain) is None
    # Protobuf frames carry the message indexes between the id and the message
    assert wire.frame(9, b"m", [0]) == b"\x00\x00\x00\x00\x09\x00m"
    assert wire.frame(9, b"m", [1, 0]) == b"\x00\x00\x00\x00\x09\x04\x02\x00m"


@pytest.mark.parametrize("indexes", [[0], [1], [0, 0], [1, 0], [2, 5, 3], [200], [0, 70000]])
def test_message_indexes_are_the_varints_confluent_writes_and_reads(indexes: list[int]) -> None:
    theirs = SchemaId("PROTOBUF", 300, message_indexes=indexes).id_to_bytes()  # confluent-kafka's own header
    assert wire.frame(300, b"", indexes) == theirs
    found, rest = wire.decode_indexes(wire.split(theirs + b"rest")[1])  # type: ignore[index]
    assert found == indexes and bytes(rest) == b"rest"
    # confluent-kafka's own reader takes ours back
    parsed = SchemaId("PROTOBUF")
    payload = parsed.from_bytes(io.BytesIO(wire.frame(300, b"rest", indexes)))
    assert (parsed.id, parsed.message_indexes, payload.read()) == (300, indexes, b"rest")


def test_avro_and_json_headers_are_confluents() -> None:
    assert wire.frame(123456, b"x") == SchemaId("AVRO", 123456).id_to_bytes() + b"x"
    parsed = SchemaId("JSON")
    assert parsed.from_bytes(io.BytesIO(wire.frame(2**31 + 5, b"{}"))).read() == b"{}" and parsed.id == 2**31 + 5


def test_message_index_shortcut_and_broken_indexes() -> None:
    assert wire.encode_indexes([0]) == b"\x00"  # [0] alone: one zero byte, no count
    assert wire.encode_indexes([1, 0]) == b"\x04\x02\x00"  # count 2, then 1 and 0, zig-zag
    assert wire.decode_indexes(memoryview(b"\x00msg"))[0] == [0]
    with pytest.raises(wire.WireError, match="end early"):
        wire.decode_indexes(memoryview(b""))
    with pytest.raises(wire.WireError, match="end early"):
        wire.decode_indexes(memoryview(b"\x04\x02"))  # two indexes announced, one given
    with pytest.raises(wire.WireError, match="implausible"):
        wire.decode_indexes(memoryview(b"\x01"))  # a count of -1
    with pytest.raises(wire.WireError, match="negative"):
        wire.decode_indexes(memoryview(b"\x02\x01"))  # one index: -1
    with pytest.raises(wire.WireError, match="64-bit"):
        wire.decode_indexes(memoryview(b"\xff" * 11))


# --------------------------------------------------------------------------- Avro


def avro_bytes(schema: SchemaText, value: dict) -> bytes:
    """Written by fastavro itself, from the schema parsed by fastavro itself."""
    named: dict = {}
    for _, ref in schema.references:
        fastavro.parse_schema(json.loads(ref.text), named_schemas=named)
    parsed = fastavro.parse_schema(json.loads(schema.text), named_schemas=named)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, value)
    return out.getvalue()


ORDER_ID = uuid.UUID("0e2b8c8a-7c0e-4c1e-9a39-0b1b1f3e4a55")
ORDER_RECORD = {
    "id": ORDER_ID,
    "placed_at": dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC),
    "ship_on": dt.date(2024, 5, 8),
    "total": {"amount": decimal.Decimal("1234.50"), "currency": "EUR"},
    "blob": b"\x00\x01\xfe\xff",
    "note": None,
    "refund": {"amount": decimal.Decimal("0.05"), "currency": "EUR"},
    "tags": ["a", "b"],
}
ORDER_PLAIN = {
    "id": str(ORDER_ID),
    "placed_at": "2024-05-06T07:08:09.123000+00:00",
    "ship_on": "2024-05-08",
    "total": {"amount": 1234.5, "currency": "EUR"},
    "blob": "\x00\x01\xfe\xff",
    "note": None,
    "refund": {"amount": 0.05, "currency": "EUR"},
    "tags": ["a", "b"],
}


def test_avro_with_a_reference_and_logical_types_decodes_to_plain_json() -> None:
    codec = parse(ORDER_AVRO)
    assert isinstance(codec, AvroCodec) and codec.format == "avro"
    value, message = codec.decode(avro_bytes(ORDER_AVRO, ORDER_RECORD))
    assert message is None
    assert value == ORDER_PLAIN
    assert json.loads(json.dumps(value)) == value  # nothing but JSON types: filters and tables take it as is


def test_avro_decimal_that_a_float_cannot_show_stays_exact_text() -> None:
    schema = SchemaText(
        "avro",
        json.dumps(
            {
                "type": "record",
                "name": "P",
                "fields": [
                    {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 30, "scale": 10}}
                ],
            }
        ),
    )
    exact = decimal.Decimal("12345678901234567890.0123456789")
    value, _ = parse(schema).decode(avro_bytes(schema, {"d": exact}))
    assert value == {"d": str(exact)}


def test_avro_non_finite_floats_are_json_text_and_encode_back() -> None:
    """JSON has no NaN: they are shown as Protobuf's JSON mapping writes them, and taken back."""
    fields = [
        {"name": "a", "type": "double"},
        {"name": "b", "type": ["null", "float"]},
        {"name": "c", "type": {"type": "array", "items": "double"}},
    ]
    schema = SchemaText("avro", json.dumps({"type": "record", "name": "F", "fields": fields}))
    data = avro_bytes(schema, {"a": float("nan"), "b": float("-inf"), "c": [float("inf"), 1.5]})
    value, _ = parse(schema).decode(data)
    assert value == {"a": "NaN", "b": "-Infinity", "c": ["Infinity", 1.5]}
    json.dumps(value, allow_nan=False)  # strict JSON
    assert parse(schema).encode(value)[0] == data


def test_avro_decoded_json_encodes_back_to_the_same_bytes() -> None:
    """What tail shows (decoded JSON) is what publish --value-schema takes: decimals from numbers or
    text, times from ISO-8601 text, bytes from text with one code point per byte."""
    codec = parse(ORDER_AVRO)
    original = avro_bytes(ORDER_AVRO, ORDER_RECORD)
    payload, indexes = codec.encode(ORDER_PLAIN)
    assert indexes is None
    assert payload == original
    # the forms people type work too: a decimal as text or an integer, a timestamp as epoch millis
    typed = {
        **ORDER_PLAIN,
        "total": {"amount": "1234.5", "currency": "EUR"},
        "refund": {"amount": 0.05, "currency": "EUR"},
        "placed_at": 1714979289123,
    }
    assert codec.encode(typed)[0] == original
    assert codec.decode(codec.encode({**ORDER_PLAIN, "total": {"amount": 7, "currency": "EUR"}})[0])[0]["total"] == {
        "amount": 7.0,
        "currency": "EUR",
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"total": {"amount": "lots", "currency": "EUR"}}, "total.amount", "not a decimal number"),
        ({"total": {"amount": 1.234, "currency": "EUR"}}, "total.amount", "more than 2 decimal place"),
        ({"total": {"amount": 123456789012, "currency": "EUR"}}, "total.amount", "more than 10 digit"),
        ({"total": {"amount": 1, "currency": 5}}, "total.currency", "5 is not a valid"),
        ({"placed_at": "yesterday"}, "placed_at", "ISO-8601 timestamp-millis"),
        ({"id": "not-a-uuid"}, "id", "not a UUID"),
        ({"blob": "\u20ac"}, "blob", "one code point"),
        ({"note": 3}, "note", "3 is not a valid"),
        ({"tags": ["a", 2]}, None, "2 is not a valid"),
    ],
)
def test_avro_encode_mismatch_names_the_field(change: dict, field: str | None, words: str) -> None:
    codec = parse(ORDER_AVRO)
    with pytest.raises(Mismatch, match=words) as caught:
        codec.encode({**ORDER_PLAIN, **change})
    if field is not None:
        assert caught.value.field == field


def test_avro_corrupt_payloads_are_schema_errors() -> None:
    codec = parse(ORDER_AVRO)
    good = avro_bytes(ORDER_AVRO, ORDER_RECORD)
    with pytest.raises(SchemaError, match="not valid Avro"):
        codec.decode(good[:-3])
    with pytest.raises(SchemaError, match="1 byte"):
        codec.decode(good + b"\x00")
    with pytest.raises(SchemaError, match="invalid Avro schema"):
        parse(SchemaText("avro", '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}'))
    with pytest.raises(SchemaError, match="invalid Avro schema"):
        parse(SchemaText("avro", json.dumps(ORDER_AVSC)))  # shop.Money is a reference it was not given


def test_avro_template_has_every_field_and_encodes() -> None:
    codec = parse(ORDER_AVRO)
    template = codec.template()
    assert set(template) == {f["name"] for f in ORDER_AVSC["fields"]}
    assert template["total"] == {"amount": 0, "currency": ""}
    assert codec.decode(codec.encode(template)[0])[0]["total"] == {"amount": 0.0, "currency": ""}


# --------------------------------------------------------------------------- Protobuf


def order_message_bytes(tmp_path: Path, value: dict, message: str = "shop.Order") -> bytes:
    """An Order written by the protobuf runtime, its descriptor compiled by protoc (not by the codec)."""
    pool = runtime_pool(protoc_set(tmp_path, {"shop/order.proto": ORDER_PROTO, "shop/money.proto": MONEY_PROTO}))
    msg = GetMessageClass(pool.FindMessageTypeByName(message))()
    json_format.ParseDict(value, msg)
    return msg.SerializeToString()


PROTO_ORDER = {
    "id": "o-1",
    "total": {"units": "12345678901234", "currency": "EUR"},
    "placed_at": "2024-05-06T07:08:09Z",
    "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
    "status": "PAID",
    "blob": base64.b64encode(b"\x00\xff").decode(),
}
PROTO_PLAIN = {**PROTO_ORDER, "total": {"units": 12345678901234, "currency": "EUR"}}


def test_protobuf_from_proto_text_with_an_import_reference(tmp_path: Path) -> None:
    codec = parse(ORDER_PROTOBUF, name="schema-11")
    assert isinstance(codec, ProtobufCodec) and codec.format == "protobuf"
    value, message = codec.decode(order_message_bytes(tmp_path, PROTO_ORDER), [0])
    assert message == "shop.Order"
    assert value == PROTO_PLAIN
    payload, indexes = codec.encode(PROTO_ORDER)
    assert indexes == [0] and codec.decode(payload, indexes)[0] == PROTO_PLAIN


def test_protobuf_from_base64_file_descriptor_protos(tmp_path: Path) -> None:
    """What confluent-kafka's ProtobufSerializer registers: each file a base64 FileDescriptorProto."""
    from confluent_kafka.schema_registry.common.protobuf import _schema_to_str

    pool = runtime_pool(protoc_set(tmp_path, {"shop/order.proto": ORDER_PROTO, "shop/money.proto": MONEY_PROTO}))
    order_file = pool.FindFileByName("shop/order.proto")
    money_file = pool.FindFileByName("shop/money.proto")
    as_registered = SchemaText(
        "protobuf",
        _schema_to_str(order_file),
        (("shop/money.proto", SchemaText("protobuf", _schema_to_str(money_file))),),
    )
    data = order_message_bytes(tmp_path, PROTO_ORDER)
    assert parse(as_registered, name="schema-12").decode(data, [0]) == (PROTO_PLAIN, "shop.Order")
    # a registry that normalizes the reference to .proto text while the main file stays a descriptor
    mixed = SchemaText(
        "protobuf", _schema_to_str(order_file), (("shop/money.proto", SchemaText("protobuf", MONEY_PROTO)),)
    )
    assert parse(mixed, name="schema-13").decode(data, [0]) == (PROTO_PLAIN, "shop.Order")


def test_protobuf_nested_and_second_messages_by_indexes(tmp_path: Path) -> None:
    codec = parse(ORDER_PROTOBUF, name="schema-14")
    line = order_message_bytes(tmp_path, {"sku": "x", "qty": 3}, "shop.Order.Line")
    assert codec.decode(line, [0, 0]) == ({"sku": "x", "qty": 3}, "shop.Order.Line")
    refund = order_message_bytes(tmp_path, {"order_id": "o-1", "amount": 101.5}, "shop.Refund")
    assert codec.decode(refund, [1]) == ({"order_id": "o-1", "amount": 101.5}, "shop.Refund")
    # encoding names the message by its simple, dotted or full name; the indexes follow
    assert codec.encode({"sku": "x", "qty": 3}, "Order.Line") == (line, [0, 0])
    assert codec.encode({"sku": "x", "qty": 3}, "shop.Order.Line") == (line, [0, 0])
    assert codec.encode({"order_id": "o-1", "amount": 101.5}, "Refund") == (refund, [1])
    with pytest.raises(SchemaError, match=r"message indexes \[2\] name no message"):
        codec.decode(refund, [2])
    with pytest.raises(SchemaError, match=r"message indexes \[1, 0\] name no message"):
        codec.decode(refund, [1, 0])
    with pytest.raises(Mismatch, match="no message 'Nope'.*shop.Order, shop.Refund"):
        codec.encode({}, "Nope")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"total": {"units": "many"}}, "total.units"),
        ({"total": {"cents": 1}}, "total.cents"),
        ({"lines": [{"sku": "a"}, {"qty": "two"}]}, "lines.qty"),
        ({"lines": [{"nope": 1}]}, "lines.0.nope"),
        ({"status": "LOST"}, "status"),
        ({"placed_at": "tuesday"}, "placed_at"),
        ({"idx": "o-1"}, "idx"),
    ],
)
def test_protobuf_encode_mismatch_names_the_field_on_one_line(value: dict, field: str) -> None:
    codec = parse(ORDER_PROTOBUF, name="schema-15")
    with pytest.raises(Mismatch) as caught:
        codec.encode(value)
    assert caught.value.field == field
    assert "\n" not in str(caught.value) and "shop.Order" in str(caught.value)


def test_protobuf_bad_schemas_say_why() -> None:
    with pytest.raises(SchemaError, match="invalid .proto schema:.*schema-16.proto:2"):
        parse(SchemaText("protobuf", 'syntax = "proto3";\nmessage { }\n'), name="schema-16")
    with pytest.raises(SchemaError, match="shop/money.proto"):
        parse(SchemaText("protobuf", ORDER_PROTO), name="schema-17")  # the import's reference is missing
    with pytest.raises(SchemaError, match="defines no message"):
        parse(SchemaText("protobuf", 'syntax = "proto3";\nenum E { A = 0; }\n'), name="schema-18")
    with pytest.raises(SchemaError, match="not valid Protobuf for shop.Order"):
        parse(ORDER_PROTOBUF, name="schema-19").decode(b"\x0a\xff\xff", [0])


def test_protobuf_template_has_every_field_and_encodes() -> None:
    codec = parse(ORDER_PROTOBUF, name="schema-20")
    template = codec.template()
    assert template == {"id": "", "total": {"units": 0, "currency": ""}, "lines": [], "status": "NEW", "blob": ""}
    assert codec.template("Refund") == {"order_id": "", "amount": 0.0}
    payload, indexes = codec.encode(template)
    assert codec.decode(payload, indexes) == (template, "shop.Order")  # zero values are shown, not left out


def test_protobuf_zero_values_are_shown_so_filters_see_them(tmp_path: Path) -> None:
    """proto3 does not write a zero scalar or the first enum value: decoded, they are there (a filter on
    status == "NEW" matches); a message field or an optional that is not set stays out."""
    codec = parse(ORDER_PROTOBUF, name="schema-21")
    data = order_message_bytes(tmp_path, {"id": "o-1"})
    assert data == b"\x0a\x03o-1"  # nothing else on the wire
    value, _ = codec.decode(data, [0])
    assert value == {"id": "o-1", "lines": [], "status": "NEW", "blob": ""}
    assert codec.decode(order_message_bytes(tmp_path, {}, "shop.Refund"), [1])[0] == {"order_id": "", "amount": 0.0}


# --------------------------------------------------------------------------- JSON Schema


def test_json_schema_with_a_ref_reference_checks_and_encodes() -> None:
    codec = parse(ORDER_JSONSCHEMA)
    assert isinstance(codec, JsonSchemaCodec) and codec.format == "json"
    good = {"id": "o-1", "total": {"amount": 150.5, "currency": "EUR"}, "tags": ["x"]}
    payload, indexes = codec.encode(good)
    assert indexes is None and json.loads(payload) == good
    assert codec.decode(payload) == (good, None)
    for bad, field, words in [
        ({"id": "o-1", "total": {"amount": "lots", "currency": "EUR"}}, "total.amount", "not of type 'number'"),
        ({"id": "o-1", "total": {"amount": 1, "currency": "E"}}, "total.currency", "too short"),
        ({"id": "o-1", "total": {"amount": 1, "currency": "EUR"}, "tags": ["x", 3]}, "tags.1", "not of type"),
        ({"id": "o-1"}, None, "'total' is a required property"),
    ]:
        with pytest.raises(Mismatch, match=words) as caught:
            codec.encode(bad)
        assert caught.value.field == field
    with pytest.raises(SchemaError, match="not valid JSON"):
        codec.decode(b"\x00\x01")
    with pytest.raises(SchemaError, match="NaN is not valid JSON"):
        codec.decode(b'{"id": "o-1", "total": {"amount": NaN, "currency": "EUR"}}')
    with pytest.raises(SchemaError, match="invalid JSON Schema"):
        parse(SchemaText("json", "{not json"))


def test_json_schema_template_follows_the_reference() -> None:
    assert parse(ORDER_JSONSCHEMA).template() == {"id": "", "total": {"amount": 0, "currency": ""}, "tags": []}
    with_fragment = SchemaText(
        "json",
        json.dumps({**ORDER_JSON, "properties": {"total": {"$ref": "money.json#"}}}),
        ORDER_JSONSCHEMA.references,
    )
    assert parse(with_fragment).template() == {"total": {"amount": 0, "currency": ""}}


def test_schema_text_round_trips_through_its_stored_form() -> None:
    for schema in (ORDER_AVRO, ORDER_PROTOBUF, ORDER_JSONSCHEMA):
        assert SchemaText.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    with pytest.raises(SchemaError, match="not a stored schema"):
        SchemaText.from_json({"format": "xml", "text": ""})


# --------------------------------------------------------------------------- decoder


def event(value: bytes | None, key: bytes | None = None, topic: str = "orders", offset: int = 0) -> Event:
    return Event(topic, 0, offset, 1_700_000_000_000, key, value)


async def test_decoder_with_stored_schemas_decodes_keys_values_and_reports_corrupt_payloads() -> None:
    key_schema = SchemaText("avro", '{"type": "record", "name": "K", "fields": [{"name": "id", "type": "string"}]}')
    stored = {
        41: Registered(41, ORDER_AVRO, "orders-value", 3),
        42: Registered(42, key_schema, "orders-key", 1),
        43: Registered(43, ORDER_PROTOBUF, "refunds-value", 1),
    }
    decoder = SchemaDecoder(stored=stored)
    assert decoder.active
    refund = parse(ORDER_PROTOBUF, name="x").encode({"order_id": "o-1", "amount": 9.5}, "Refund")
    events = [
        event(
            wire.frame(41, avro_bytes(ORDER_AVRO, ORDER_RECORD)), wire.frame(42, avro_bytes(key_schema, {"id": "k"}))
        ),
        event(wire.frame(41, b"\x02\x03"), b"plain key", offset=1),  # corrupt after the header
        event(b'{"plain": "json"}', None, offset=2),
        event(wire.frame(43, refund[0], refund[1]), None, offset=3),
        event(wire.frame(41, avro_bytes(ORDER_AVRO, ORDER_RECORD)), None, offset=4),  # the next one still decodes
    ]
    out = await decoder.decode_batch(events)
    first = out[0].metadata["decoded_value"]
    assert first.kind == "json" and first.value == ORDER_PLAIN
    assert first.schema.to_json() == {"format": "avro", "id": 41, "subject": "orders-value", "version": 3}
    assert out[0].metadata["decoded_key"].value == {"id": "k"}
    broken = out[1].metadata["decoded_value"]
    assert broken.kind == "binary" and broken.value == events[1].value
    assert broken.schema.id == 41 and "not valid Avro" in broken.schema.error
    assert "decoded_key" not in out[1].metadata  # a plain key is left alone
    assert out[2] is events[2]  # nothing framed: the event is untouched
    assert out[3].metadata["decoded_value"].value == {"order_id": "o-1", "amount": 9.5}
    assert out[3].metadata["decoded_value"].schema.message == "shop.Refund"
    assert out[4].metadata["decoded_value"].value == ORDER_PLAIN
    assert [e.value for e in out] == [e.value for e in events]  # the bytes stay exact
    assert set(decoder.used) == {41, 42, 43}


class Passage:
    """A TCP pass-through on 127.0.0.1:``port`` to a real server: the test opens and closes it, and it
    counts the connections made through it."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.connections = 0
        self.sent = bytearray()  # what the clients sent through it
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._socks += [client, upstream]
            for a, b, seen in ((client, upstream, self.sent), (upstream, client, None)):
                threading.Thread(target=self._pump, args=(a, b, seen), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, seen: bytearray | None) -> None:
        try:
            while data := source.recv(65536):
                if seen is not None:
                    seen += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.registry
async def test_decoder_registry_down_gives_bytes_and_reason_and_asks_again_only_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoints.require_registry()
    subject = f"ew-unit-schemas-{uuid.uuid4().hex[:10]}-value"
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL})
    schema = {
        "type": "record",
        "name": "Ping",
        "namespace": f"t{uuid.uuid4().hex[:8]}",
        "fields": [{"name": "n", "type": "int"}],
    }
    schema_id = client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
    monkeypatch.setattr(decoder_module, "RETRY_AFTER_S", 1.5)
    port = free_port()
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    passage = None
    try:
        decoder = SchemaDecoder(Registry(RegistrySettings(url, timeout_s=2)))
        framed = event(wire.frame(schema_id, avro_bytes(SchemaText("avro", json.dumps(schema)), {"n": 7})))
        started = time.monotonic()
        down = (await decoder.decode_batch([framed]))[0].metadata["decoded_value"]
        assert time.monotonic() - started < 10
        assert down.kind == "binary" and down.value == framed.value
        assert down.schema.format is None and down.schema.id == schema_id
        assert f"schema registry {url}" in down.schema.error and "\n" not in down.schema.error

        # the registry comes back (a pass-through to the real one, on the same port) ...
        passage = Passage(port, (endpoints.REGISTRY_HOST, endpoints.REGISTRY_PORT))
        again = (await decoder.decode_batch([framed]))[0].metadata["decoded_value"]
        assert again.schema.error == down.schema.error  # ... but a failed id is not asked for on every event
        assert passage.connections == 0
        time.sleep(1.6)
        back = (await decoder.decode_batch([framed]))[0].metadata["decoded_value"]
        assert passage.connections >= 1
        assert back.kind == "json" and back.value == {"n": 7}
        assert back.schema.to_json() == {"format": "avro", "id": schema_id, "subject": subject, "version": 1}
    finally:
        if passage is not None:
            passage.close()
        endpoints.delete_subject(subject)


async def test_decoder_does_not_wait_for_a_registry_that_is_down_once_per_schema_id() -> None:
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"  # nothing listens there
    decoder = SchemaDecoder(Registry(RegistrySettings(url, timeout_s=1)))
    events = [event(wire.frame(900 + n, b"\x02"), offset=n) for n in range(5)]
    started = time.monotonic()
    out = await decoder.decode_batch(events)
    assert time.monotonic() - started < 3  # one id asked for (and retried once), not five
    reasons = [e.metadata["decoded_value"].schema.error for e in out]
    assert reasons[0].startswith(f"schema registry {url}: schema id 900: ")
    for n, reason in enumerate(reasons[1:], 1):
        assert reason.startswith(f"schema id {900 + n} not fetched: schema registry {url}: schema id 900: ")
    assert all(e.metadata["decoded_value"].kind == "binary" for e in out)


@pytest.mark.registry
def test_registry_userinfo_is_percent_decoded_and_never_in_messages() -> None:
    """A password with ``@`` or ``:`` is written percent-encoded in the URL (as for Kafka and RabbitMQ
    URLs): the registry receives it decoded (seen on the wire, on the way to the real registry)."""
    endpoints.require_registry()
    passage = Passage(0, (endpoints.REGISTRY_HOST, endpoints.REGISTRY_PORT))
    try:
        url = f"http://ew%40reader:p%40ss%3Aword@127.0.0.1:{passage.port}/apis/ccompat/v7"
        settings = RegistrySettings(url)
        assert settings.shown == f"http://127.0.0.1:{passage.port}/apis/ccompat/v7"
        registry = Registry(settings)
        assert isinstance(registry.subjects(), list)  # the real registry answered
        expected = base64.b64encode(b"ew@reader:p@ss:word").decode()
        sent = re.search(rb"(?i)\r\nauthorization: basic (\S+)\r\n", bytes(passage.sent))
        assert sent is not None and sent.group(1).decode() == expected
        with pytest.raises(NotFound) as caught:
            registry.version(f"ew-unit-no-such-subject-{uuid.uuid4().hex[:8]}")
        message = str(caught.value)
        assert message.startswith(f"schema registry {settings.shown}: subject ")
        assert "p@ss" not in message and "p%40ss" not in message and "ew%40reader" not in message
    finally:
        passage.close()


# --------------------------------------------------------------------------- local schema files


def write_profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "workbench.toml"
    path.write_text(body, encoding="utf-8")
    return path


async def test_schema_files_decode_raw_avro_protobuf_and_descriptor_sets_by_topic_pattern(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    plain_money = {
        **MONEY_AVSC,
        "fields": [{"name": "amount", "type": "double"}, {"name": "currency", "type": "string"}],
    }
    (schemas / "money.avsc").write_text(json.dumps(plain_money), encoding="utf-8")
    (schemas / "refund.proto").write_text(
        'syntax = "proto3";\npackage legacy;\nmessage Head { string x = 1; }\nmessage Refund { string order_id = 1; }\n',
        encoding="utf-8",
    )
    (schemas / "order.desc").write_bytes(
        protoc_set(tmp_path, {"shop/order.proto": ORDER_PROTO, "shop/money.proto": MONEY_PROTO}, "shop/order.proto")
    )
    (schemas / "key.json").write_text(json.dumps(MONEY_JSON), encoding="utf-8")
    config = write_profile(
        tmp_path,
        """
[profiles.legacy]
broker = "kafka://127.0.0.1:9092"

[[profiles.legacy.schemas]]
topic = "legacy.money.*"
file = "schemas/money.avsc"

[[profiles.legacy.schemas]]
topic = "refunds"
file = "schemas/refund.proto"
message = "Refund"

[[profiles.legacy.schemas]]
topic = "orders-v?"
file = "schemas/order.desc"
message = "shop.Order.Line"

[[profiles.legacy.schemas]]
topic = "legacy.money.*"
file = "schemas/key.json"
part = "key"
""",
    )
    target = resolve(load_config(config).profile("legacy"))
    rules = target.schema_files
    assert [r.file for r in rules] == [
        schemas / "money.avsc",
        schemas / "refund.proto",
        schemas / "order.desc",
        schemas / "key.json",
    ]  # relative files are read beside the profile file
    assert rules[0].matches("legacy.money.eu", "value") and not rules[0].matches("legacy.money.eu", "key")
    assert not rules[0].matches("legacy.moneyx", "value") and rules[3].matches("legacy.money.eu", "key")
    assert rules[2].matches("orders-v2", "value") and not rules[2].matches("orders-v10", "value")

    decoder = SchemaDecoder(files=rules)
    money = avro_bytes(SchemaText("avro", json.dumps(plain_money)), {"amount": 12.5, "currency": "EUR"})
    refund = parse(SchemaText("protobuf", (schemas / "refund.proto").read_text()), name="r").encode(
        {"order_id": "o-9"}, "Refund"
    )[0]
    line = order_message_bytes(tmp_path, {"sku": "s", "qty": 4}, "shop.Order.Line")
    out = await decoder.decode_batch(
        [
            event(money, b'{"amount": 1, "currency": "EUR"}', topic="legacy.money.eu"),
            event(refund, topic="refunds"),
            event(line, topic="orders-v2"),
            event(b"untouched", topic="other"),
            event(b"\xff\xff\xff", topic="legacy.money.eu"),
        ]
    )
    value = out[0].metadata["decoded_value"]
    assert value.value == {"amount": 12.5, "currency": "EUR"}
    assert value.schema.to_json() == {"format": "avro", "file": str(schemas / "money.avsc")}
    assert out[0].metadata["decoded_key"].value == {"amount": 1, "currency": "EUR"}
    assert out[0].metadata["decoded_key"].schema.format == "json"
    assert out[1].metadata["decoded_value"].value == {"order_id": "o-9"}
    assert out[1].metadata["decoded_value"].schema.message == "legacy.Refund"
    assert out[2].metadata["decoded_value"].value == {"sku": "s", "qty": 4}
    assert out[2].metadata["decoded_value"].schema.message == "shop.Order.Line"
    assert "decoded_value" not in out[3].metadata
    corrupt = out[4].metadata["decoded_value"]
    assert corrupt.kind == "binary" and "not valid Avro" in corrupt.schema.error


def test_descriptor_set_finds_the_message_whatever_file_defines_it(tmp_path: Path) -> None:
    kinds = 'syntax = "proto3";\npackage shop.kinds;\nenum Kind { A = 0; B = 1; }\n'  # a file with no message
    order = ORDER_PROTO.replace('import "shop/money.proto";', 'import "shop/kinds.proto";\nimport "shop/money.proto";')
    data = protoc_set(
        tmp_path,
        {"shop/kinds.proto": kinds, "shop/money.proto": MONEY_PROTO, "shop/order.proto": order},
        "shop/order.proto",
    )
    assert [f.name for f in descriptor_pb2.FileDescriptorSet.FromString(data).file][0] == "shop/kinds.proto"
    for message, indexes in [("shop.Order", [0]), ("shop.Order.Line", [0, 0]), ("shop.Refund", [1])]:
        codec, found = ProtobufCodec.from_descriptor_set(data, message)
        assert found == indexes and codec.main.name == "shop/order.proto"
    codec, found = ProtobufCodec.from_descriptor_set(data, "shop.common.Money")
    assert found == [0] and codec.main.name == "shop/money.proto"
    with pytest.raises(SchemaError, match="defines no message 'Order'"):
        ProtobufCodec.from_descriptor_set(data, "Order")  # a descriptor set needs the full name
    with pytest.raises(SchemaError, match="not a compiled descriptor set"):
        ProtobufCodec.from_descriptor_set(b"\xff\xff\xff", "shop.Order")


def test_schema_file_that_cannot_be_used_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.proto").write_text('syntax = "proto3";\nmessage A { string a = 1; }\n', encoding="utf-8")
    (tmp_path / "a.xsd").write_text("<schema/>", encoding="utf-8")
    (tmp_path / "a.desc").write_bytes(b"")
    cases = [
        (FileRule("t", tmp_path / "a.proto", "B"), "no message 'B'"),
        (FileRule("t", tmp_path / "a.xsd"), "unknown kind of schema file"),
        (FileRule("t", tmp_path / "a.desc"), "needs message"),
        (FileRule("t", tmp_path / "missing.avsc"), "cannot read"),
        (FileRule("t", tmp_path / "a.proto", "A", "value"), None),
    ]
    for rule, words in cases:
        if words is None:
            assert rule.load()[1] == [0]
            continue
        with pytest.raises(ConfigError, match=words) as caught:
            rule.load()
        assert str(rule.file) in str(caught.value)


async def test_a_broken_schema_file_is_said_on_each_event_of_its_topic(tmp_path: Path) -> None:
    (tmp_path / "bad.avsc").write_text('{"type": "record"', encoding="utf-8")
    decoder = SchemaDecoder(files=[FileRule("t*", tmp_path / "bad.avsc")])
    out = await decoder.decode_batch([event(b"\x02", topic="t1"), event(b"\x04", topic="t1", offset=1)])
    for e in out:
        found = e.metadata["decoded_value"]
        assert found.kind == "binary" and found.schema.format is None
        assert "bad.avsc" in found.schema.error and "invalid Avro schema" in found.schema.error


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ('schemas = "orders.avsc"', "'schemas' must be a list"),
        ("schemas = [1]", "schemas entry 1: must be a table"),
        (
            '[[profiles.p.schemas]]\ntopic = "t"\nfile = "a.avsc"\nformat = "avro"',
            "schemas entry 1: unknown field 'format'",
        ),
        ('[[profiles.p.schemas]]\nfile = "a.avsc"', "schemas entry 1: field 'topic' must be a non-empty string"),
        (
            '[[profiles.p.schemas]]\ntopic = "t"\nfile = "a.avsc"\n[[profiles.p.schemas]]\ntopic = "u"\nfile = ""',
            "schemas entry 2: field 'file'",
        ),
        (
            '[[profiles.p.schemas]]\ntopic = "t"\nfile = "a.avsc"\npart = "header"',
            "schemas entry 1: field 'part' must be",
        ),
        (
            '[[profiles.p.schemas]]\ntopic = "t"\nfile = "a.proto"\nmessage = 3',
            "schemas entry 1: field 'message' must be a string",
        ),
    ],
)
def test_bad_schema_entries_are_config_errors_naming_file_profile_and_entry(
    tmp_path: Path, entries: str, words: str
) -> None:
    body = '[profiles.p]\nbroker = "kafka://127.0.0.1:9092"\n'
    body += (entries + "\n") if entries.startswith("[[") else ""
    if not entries.startswith("[["):
        body = f'[profiles.p]\nbroker = "kafka://127.0.0.1:9092"\n{entries}\n'
    config = write_profile(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert str(config) in message and "[profiles.p]" in message
    assert words in message
