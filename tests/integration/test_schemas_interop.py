"""Schema-aware events against the real schema registry and real Kafka, both ways, with confluent-kafka.

- confluent-kafka's own ``AvroSerializer``, ``ProtobufSerializer`` and ``JSONSerializer`` produce
  keys and values (each value schema with a reference, registered through the real registry); the
  workbench's ``tail -o json`` shows them decoded, says how (format, id, subject, version), and
  ``--filter`` selects on a decoded field; ``-o jsonl`` stays the exact bytes, so ``tail -o jsonl |
  publish`` copies them byte for byte.
- ``workbench publish --value-schema / --key-schema`` encodes JSON input; a fresh Python process reads
  the events back with confluent-kafka's ``AvroDeserializer`` / ``JSONDeserializer`` (with a registry
  client) and ``ProtobufDeserializer`` (with the message class built from the ``.proto`` files by protoc:
  the registry's ``?format=serialized`` is broken in Apicurio, see the harness notes; the deserializer
  still parses the magic byte, the id and the message indexes).

Needs Kafka and the registry (``tests/brokers/brokers.sh up``); fails without them. Every test uses its
own topic and subjects and deletes them.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from typer.testing import CliRunner

from tests.brokers import endpoints
from workbench.cli import app

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
BROKER = f"kafka://{BOOTSTRAP}?schema_registry={endpoints.REGISTRY_URL}"
REPO = Path(__file__).resolve().parents[2]

ORDERS = [
    {"id": "o-1", "amount": 50.0, "customer": {"name": "Ada"}, "note": "first"},
    {"id": "o-2", "amount": 150.25, "customer": {"name": "Grace"}, "note": None},
    {"id": "o-3", "amount": 250.0, "customer": {"name": "Edsger"}, "note": "big"},
    {"id": "o-4", "amount": 99.5, "customer": {"name": "Barbara"}, "note": None},
]


def require_brokers() -> None:
    for up, what in (
        (endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT), f"Kafka on {BOOTSTRAP}"),
        (
            endpoints.port_open(endpoints.REGISTRY_HOST, endpoints.REGISTRY_PORT),
            f"the registry {endpoints.REGISTRY_URL}",
        ),
    ):
        if not up:
            pytest.fail(f"{what} does not answer: run `bash tests/brokers/brokers.sh up`", pytrace=False)


def cli(*args: str, input_text: str | None = None) -> Any:
    return CliRunner().invoke(app, ["--broker", BROKER, *args], input=input_text, catch_exceptions=False)


# --------------------------------------------------------------------------- topics and subjects of one test


@dataclass
class Names:
    """One test's topic(s) and subjects, all starting with ``tag``; removed after the test."""

    tag: str
    topics: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.topics[0]

    @property
    def pkg(self) -> str:
        """A Protobuf package / Avro namespace of this test's own (schemas of two runs never collide)."""
        return self.tag.replace("-", "_")

    def new_topic(self, suffix: str = "") -> str:
        name = f"{self.tag}{suffix}"
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        admin.create_topics([NewTopic(name, 1, 1)], request_timeout=30)[name].result(timeout=60)
        self.topics.append(name)
        return name


def remove(names: Names) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    if names.topics:
        for future in admin.delete_topics(names.topics, request_timeout=30).values():
            try:
                future.result(timeout=60)
            except Exception:  # noqa: BLE001 - best effort; the leak check names what is left
                pass
    # the subjects that use a reference go first: a registry refuses to delete a referenced schema
    subjects = sorted(endpoints.registry_subjects(names.tag), key=lambda s: not s.endswith(("-value", "-key")))
    for subject in subjects:
        endpoints.delete_subject(subject, missing_ok=True)


@pytest.fixture
def names() -> Iterator[Names]:
    require_brokers()
    made = Names(f"ew-it-schemas-{uuid.uuid4().hex[:10]}")
    made.new_topic()
    try:
        yield made
    finally:
        remove(made)


# --------------------------------------------------------------------------- the three formats


@dataclass
class Format:
    """How one format's schemas look in a test, and how confluent-kafka serializes with them."""

    name: str
    value_message: Callable[[Names], str | None]  # the Protobuf message the workbench names, or None

    def expected(self, order: dict) -> dict:
        """The plain JSON the workbench shows for an order (Protobuf leaves out what is unset)."""
        if self.name == "protobuf":
            return {k: v for k, v in order.items() if v is not None}
        return order


def avro_schemas(names: Names) -> tuple[dict, dict, dict]:
    ns = names.pkg
    customer = {"type": "record", "name": "Customer", "namespace": ns, "fields": [{"name": "name", "type": "string"}]}
    order = {
        "type": "record",
        "name": "Order",
        "namespace": ns,
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "customer", "type": f"{ns}.Customer"},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
    key = {"type": "record", "name": "OrderKey", "namespace": ns, "fields": [{"name": "id", "type": "string"}]}
    return customer, order, key


def proto_files(names: Names, *, for_publish: bool = False) -> dict[str, str]:
    """The .proto files of a test. As confluent-kafka produces them, the key is the second message of its
    file (message indexes [1]); as the workbench publishes them, the value and the key are too
    (``--schema-message`` and ``--key-schema-message`` name them)."""
    pkg = names.pkg
    other = "message Audit {\n  int32 n = 1;\n}\n\n"
    return {
        f"{names.tag}/customer.proto": f'syntax = "proto3";\npackage {pkg}.common;\n\n'
        "message Customer {\n  string name = 1;\n}\n",
        f"{names.tag}/order.proto": f'syntax = "proto3";\npackage {pkg};\n\nimport "{names.tag}/customer.proto";\n\n'
        + (other if for_publish else "")
        + f"message Order {{\n  string id = 1;\n  double amount = 2;\n  {pkg}.common.Customer customer = 3;\n"
        "  optional string note = 4;\n}\n",
        f"{names.tag}/key.proto": f'syntax = "proto3";\npackage {pkg}.keys;\n\n'
        + other
        + "message OrderKey {\n  string id = 1;\n}\n",
    }


def json_schemas(names: Names) -> tuple[dict, dict, dict]:
    customer = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Customer",
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }
    order = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "number"},
            "customer": {"$ref": "customer.json"},
            "note": {"type": ["string", "null"]},
        },
        "required": ["id", "amount", "customer"],
        "additionalProperties": False,
    }
    key = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "OrderKey",
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "required": ["id"],
    }
    return customer, order, key


FORMATS = {
    "avro": Format("avro", lambda n: None),
    "protobuf": Format("protobuf", lambda n: f"{n.pkg}.Order"),
    "json": Format("json", lambda n: None),
}


def protobuf_classes(names: Names, tmp_path: Path) -> tuple[Any, Any]:
    """The Order and OrderKey classes, built by the protobuf runtime from protoc's descriptor set
    (a pool of their own, so that tests never meet in the runtime's default pool)."""
    src = tmp_path / "protos"
    for name, text in proto_files(names).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    out = tmp_path / "set.desc"
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"--descriptor_set_out={out}", "--include_imports"]
        + list(proto_files(names)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        pool.Add(proto)
    order = GetMessageClass(pool.FindMessageTypeByName(f"{names.pkg}.Order"))
    key = GetMessageClass(pool.FindMessageTypeByName(f"{names.pkg}.keys.OrderKey"))
    return order, key


def confluent_serializers(fmt: str, names: Names, client: SchemaRegistryClient, tmp_path: Path) -> tuple[Any, Any]:
    """confluent-kafka's serializers for the value (its schema with a reference) and the key; both
    register their schemas through the real registry as they serialize."""
    # The subject named by the topic, as the classic default: confluent-kafka 2.16's default first asks the
    # registry for "associations", a Confluent-only API that Apicurio may leave unanswered.
    conf = {"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy}
    if fmt == "avro":
        customer, order, key = avro_schemas(names)
        ref_subject = f"{names.tag}.customer"
        client.register_schema(ref_subject, Schema(json.dumps(customer), "AVRO"))
        ref = SchemaReference(f"{names.pkg}.Customer", ref_subject, 1)
        value_ser = AvroSerializer(client, Schema(json.dumps(order), "AVRO", [ref]), conf=conf)
        return value_ser, AvroSerializer(client, json.dumps(key), conf=conf)
    if fmt == "json":
        customer, order, key = json_schemas(names)
        ref_subject = f"{names.tag}.customer"
        client.register_schema(ref_subject, Schema(json.dumps(customer), "JSON"))
        ref = SchemaReference("customer.json", ref_subject, 1)
        value_ser = JSONSerializer(Schema(json.dumps(order), "JSON", [ref]), client, conf=conf)
        return value_ser, JSONSerializer(json.dumps(key), client, conf=conf)
    order_cls, key_cls = protobuf_classes(names, tmp_path)
    pconf = {**conf, "use.deprecated.format": False}

    def as_message(cls: Any, serializer: Any) -> Callable[[dict, SerializationContext], bytes]:
        def serialize(value: dict, ctx: SerializationContext) -> bytes:
            message = cls()
            json_format.ParseDict({k: v for k, v in value.items() if v is not None}, message)
            return serializer(message, ctx)

        return serialize

    return (
        as_message(order_cls, ProtobufSerializer(order_cls, client, pconf)),
        as_message(key_cls, ProtobufSerializer(key_cls, client, pconf)),
    )


def raw_events(topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) bytes of every event of a one-partition topic, read by confluent-kafka without a group."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"{topic}-reader-never-joins",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, low)])
        out: list[tuple[bytes | None, bytes | None]] = []
        while len(out) < high - low:
            msg = consumer.poll(10)
            assert msg is not None, f"{topic}: only {len(out)} of {high - low} events within 10 s"
            if msg.error():
                continue
            out.append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def envelope_bytes(line: dict, part: str) -> bytes:
    """The exact bytes an envelope carries (text, or base64 when they are not UTF-8)."""
    if line.get(f"{part}_encoding") == "base64":
        return base64.b64decode(line[part])
    return line[part].encode("utf-8")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- confluent-kafka produces, the workbench decodes


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_events_from_confluent_serializers_are_decoded(fmt: str, names: Names, tmp_path: Path) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    value_ser, key_ser = confluent_serializers(fmt, names, client, tmp_path)
    topic = names.topic
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for order in ORDERS:
        producer.produce(
            topic,
            key=key_ser({"id": order["id"]}, SerializationContext(topic, MessageField.KEY)),
            value=value_ser(order, SerializationContext(topic, MessageField.VALUE)),
        )
    assert producer.flush(30) == 0
    produced = raw_events(topic)
    value_version = client.get_latest_version(f"{topic}-value")
    key_version = client.get_latest_version(f"{topic}-key")
    assert {v for _, v in produced} and all(v[0] == 0 for _, v in produced)  # the wire format, magic byte 0

    result = cli("tail", topic, "-o", "json")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert len(lines) == len(ORDERS)
    spec = FORMATS[fmt]
    value_schema = {"format": fmt, "id": value_version.schema_id, "subject": f"{topic}-value", "version": 1}
    key_schema = {"format": fmt, "id": key_version.schema_id, "subject": f"{topic}-key", "version": 1}
    if fmt == "protobuf":
        value_schema["message"] = f"{names.pkg}.Order"
        key_schema["message"] = f"{names.pkg}.keys.OrderKey"
    for line, order, (key_bytes, value_bytes) in zip(lines, ORDERS, produced, strict=True):
        assert line["value_decoded"] == spec.expected(order)
        assert line["value_schema"] == value_schema
        assert line["key_decoded"] == {"id": order["id"]}
        assert line["key_schema"] == key_schema
        # the bytes are still there, exact, beside what was decoded
        assert envelope_bytes(line, "value") == value_bytes
        assert envelope_bytes(line, "key") == key_bytes

    # a filter sees the decoded value
    picked = cli("tail", topic, "-o", "json", "--filter", "value.amount > 100")
    assert picked.exit_code == 0, picked.output
    assert [line["value_decoded"]["id"] for line in json_lines(picked.stdout)] == ["o-2", "o-3"]
    by_key = cli("tail", topic, "-o", "json", "--filter", 'key.id == "o-4"')
    assert by_key.exit_code == 0, by_key.output
    assert [line["value_decoded"]["amount"] for line in json_lines(by_key.stdout)] == [99.5]

    # -o jsonl: the exact envelope, nothing decoded in it; tail | publish copies the bytes exactly
    exact = cli("tail", topic, "-o", "jsonl")
    assert exact.exit_code == 0, exact.output
    assert all("value_decoded" not in line and "value_schema" not in line for line in json_lines(exact.stdout))
    copy = names.new_topic("-copy")
    copied = cli("publish", copy, "--file", "-", input_text=exact.stdout)
    assert copied.exit_code == 0, copied.output
    assert raw_events(copy) == produced
    # --decoded adds the decoded form to jsonl, beside the same exact bytes
    both = cli("tail", topic, "-o", "jsonl", "--decoded")
    assert both.exit_code == 0, both.output
    for plain, decoded in zip(json_lines(exact.stdout), json_lines(both.stdout), strict=True):
        assert {k: v for k, v in decoded.items() if not k.endswith(("_decoded", "_schema"))} == plain
        assert decoded["value_schema"] == value_schema


# --------------------------------------------------------------------------- the workbench publishes, confluent-kafka decodes

READER = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.serialization import MessageField, SerializationContext

    bootstrap, registry, topic, fmt, protos, value_type, key_type = sys.argv[1:8]
    client = SchemaRegistryClient({"url": registry, "timeout": 20})
    if fmt == "avro":
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        value_de = key_de = AvroDeserializer(client)
    elif fmt == "json":
        from confluent_kafka.schema_registry.json_schema import JSONDeserializer
        value_de = key_de = JSONDeserializer(None, schema_registry_client=client)
    else:
        from google.protobuf import descriptor_pb2, descriptor_pool, json_format
        from google.protobuf.message_factory import GetMessageClass
        from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
        files = sorted(str(p.relative_to(protos)) for p in Path(protos).rglob("*.proto"))
        out = Path(protos) / "set.desc"
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{protos}", f"--descriptor_set_out={out}",
                        "--include_imports", *files], check=True)
        pool = descriptor_pool.DescriptorPool()
        for proto in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
            pool.Add(proto)
        conf = {"use.deprecated.format": False}
        # no registry client: Apicurio's ?format=serialized is broken; the header is still parsed
        value_pb = ProtobufDeserializer(GetMessageClass(pool.FindMessageTypeByName(value_type)), conf)
        key_pb = ProtobufDeserializer(GetMessageClass(pool.FindMessageTypeByName(key_type)), conf)
        as_dict = lambda m: json_format.MessageToDict(m, preserving_proto_field_name=True)
        value_de = lambda data, ctx: as_dict(value_pb(data, ctx))
        key_de = lambda data, ctx: as_dict(key_pb(data, ctx))

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-never-joins", "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    consumer.assign([TopicPartition(topic, 0, low)])
    seen = 0
    while seen < high - low:
        msg = consumer.poll(10)
        assert msg is not None, "no event within 10 s"
        if msg.error():
            continue
        seen += 1
        key = key_de(msg.key(), SerializationContext(topic, MessageField.KEY))
        value = value_de(msg.value(), SerializationContext(topic, MessageField.VALUE))
        print(json.dumps({"key": key, "value": value}, default=str))
    consumer.close()
    """
)


def register_for_publish(fmt: str, names: Names, client: SchemaRegistryClient, protos: Path) -> None:
    """The value schema (with a reference) and the key schema, registered as a user would."""
    topic = names.topic
    if fmt == "avro":
        customer, order, key = avro_schemas(names)
        client.register_schema(f"{names.tag}.customer", Schema(json.dumps(customer), "AVRO"))
        refs = [SchemaReference(f"{names.pkg}.Customer", f"{names.tag}.customer", 1)]
        client.register_schema(f"{topic}-value", Schema(json.dumps(order), "AVRO", refs))
        client.register_schema(f"{topic}-key", Schema(json.dumps(key), "AVRO"))
    elif fmt == "json":
        customer, order, key = json_schemas(names)
        client.register_schema(f"{names.tag}.customer", Schema(json.dumps(customer), "JSON"))
        refs = [SchemaReference("customer.json", f"{names.tag}.customer", 1)]
        client.register_schema(f"{topic}-value", Schema(json.dumps(order), "JSON", refs))
        client.register_schema(f"{topic}-key", Schema(json.dumps(key), "JSON"))
    else:  # .proto text, as Confluent's registry keeps it
        files = proto_files(names, for_publish=True)
        customer_name = f"{names.tag}/customer.proto"
        client.register_schema(customer_name, Schema(files[customer_name], "PROTOBUF"))
        refs = [SchemaReference(customer_name, customer_name, 1)]
        client.register_schema(f"{topic}-value", Schema(files[f"{names.tag}/order.proto"], "PROTOBUF", refs))
        client.register_schema(f"{topic}-key", Schema(files[f"{names.tag}/key.proto"], "PROTOBUF"))
        for name, text in files.items():
            (protos / name).parent.mkdir(parents=True, exist_ok=True)
            (protos / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_events_published_with_a_schema_are_decoded_by_confluent_deserializers(
    fmt: str, names: Names, tmp_path: Path
) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    protos = tmp_path / "protos"
    protos.mkdir()
    register_for_publish(fmt, names, client, protos)
    topic = names.topic
    source = tmp_path / "orders.jsonl"
    source.write_text(
        "".join(json.dumps({"key": json.dumps({"id": o["id"]}), "value": json.dumps(o)}) + "\n" for o in ORDERS),
        encoding="utf-8",
    )
    args = ["publish", topic, "--file", str(source), "--value-schema", f"{topic}-value:latest"]
    args += ["--key-schema", f"{topic}-key"]
    if fmt == "protobuf":
        args += ["--schema-message", "Order", "--key-schema-message", "OrderKey"]
        unknown = cli(*args[:-1], "Nope")
        assert unknown.exit_code == 2 and "--key-schema-message" in unknown.output and "Nope" in unknown.output
    published = cli(*args)
    assert published.exit_code == 0, published.output
    if fmt == "protobuf":  # Order and OrderKey are the second messages of their files: message indexes [1]
        assert {(k[5:7], v[5:7]) for k, v in raw_events(topic) if k and v} == {(b"\x02\x02", b"\x02\x02")}

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            READER,
            BOOTSTRAP,
            endpoints.REGISTRY_URL,
            topic,
            fmt,
            str(protos),
            f"{names.pkg}.Order",
            f"{names.pkg}.keys.OrderKey",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # confluent-kafka alone, no workbench
    )
    assert done.returncode == 0, done.stderr
    read = json_lines(done.stdout)
    expected = [{"key": {"id": o["id"]}, "value": FORMATS[fmt].expected(o)} for o in ORDERS]
    assert read == expected
    # and the workbench reads its own events back the same way
    again = cli("tail", topic, "-o", "json")
    assert [line["value_decoded"] for line in json_lines(again.stdout)] == [FORMATS[fmt].expected(o) for o in ORDERS]


def test_avro_logical_types_published_from_json_are_what_confluent_reads(names: Names, tmp_path: Path) -> None:
    """Decimals, timestamps, dates, UUIDs and bytes given as the JSON tail shows them are encoded so
    that confluent-kafka's AvroDeserializer reads the same values."""
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    topic = names.topic
    schema = {
        "type": "record",
        "name": "Payment",
        "namespace": names.pkg,
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "fee", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "on", "type": {"type": "int", "logicalType": "date"}},
            {"name": "raw", "type": "bytes"},
        ],
    }
    client.register_schema(f"{topic}-value", Schema(json.dumps(schema), "AVRO"))
    value = {
        "id": "6f1c1f8e-2a4b-4c55-9a0e-6b3f1d2c3b4a",
        "fee": 12.5,
        "at": "2024-05-06T07:08:09.123+00:00",
        "on": "2024-05-08",
        "raw": "\u0000\u00ff",
    }
    source = tmp_path / "payments.jsonl"
    source.write_text(json.dumps(value) + "\n", encoding="utf-8")
    published = cli("publish", topic, "--file", str(source), "--value-schema", f"{topic}-value")
    assert published.exit_code == 0, published.output
    script = textwrap.dedent(
        """
        import sys
        from confluent_kafka import Consumer, TopicPartition
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext
        bootstrap, registry, topic = sys.argv[1:4]
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": topic + "-never-joins", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = consumer.poll(10)
        value = AvroDeserializer(SchemaRegistryClient({"url": registry, "timeout": 20}))(
            msg.value(), SerializationContext(topic, MessageField.VALUE))
        print(repr(sorted(value.items())))
        consumer.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, BOOTSTRAP, endpoints.REGISTRY_URL, topic],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(
        sorted(
            {
                "id": uuid.UUID(value["id"]),
                "fee": decimal.Decimal("12.50"),
                "at": dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC),
                "on": dt.date(2024, 5, 8),
                "raw": b"\x00\xff",
            }.items()
        )
    )
    # the workbench shows it as the JSON it was given
    shown = json_lines(cli("tail", topic, "-o", "json").stdout)[0]["value_decoded"]
    assert shown == {**value, "fee": 12.5, "at": "2024-05-06T07:08:09.123000+00:00"}
