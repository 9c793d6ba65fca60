"""Redaction against the real brokers: values planted in Avro events on Kafka (decoded through the
real schema registry), in a RabbitMQ stream and in messages RabbitMQ dead-lettered itself never
reach what `tail`, `trace`, `dlq summary`, `peek` and `capture --redact` show or write.

Needs Kafka, RabbitMQ and the registry (``bash tests/brokers/brokers.sh up``); without them these
tests fail. Every test removes the topics, queues, exchanges and subjects it makes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aio_pika
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.brokers import endpoints
from tests.integration.cli_support import unique, workbench
from tests.integration.rabbitmq_support import eventually, require_rabbitmq
from workbench.events.redaction import REDACTED_HEADER

EMAIL = "grace.planted@example.com"
CARD = "4000 0027 6000 3184"
TOKEN = "planted-secret-token-77"
PLANTED = (EMAIL, CARD, TOKEN, "4000002760003184")

MASK = """
[mask]
fields = ["value.customer.email", "value.card.*"]
headers = ["x-api-token"]
patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b', '[\\w.]+@example\\.com']
"""

ORDER_SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "redaction.it",
    "fields": [
        {"name": "id", "type": "string"},
        {
            "name": "customer",
            "type": {"type": "record", "name": "Customer", "fields": [{"name": "email", "type": "string"}]},
        },
        {"name": "card", "type": {"type": "record", "name": "Card", "fields": [{"name": "number", "type": "string"}]}},
        {"name": "note", "type": "string"},
        {"name": "correlationId", "type": "string"},
    ],
}


def assert_clean(text: str | bytes) -> None:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    for value in PLANTED:
        assert value not in shown, f"{value!r} leaked"


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "workbench.toml"
    path.write_text(
        MASK
        + f'[profiles.kafka]\nbroker = "kafka://{endpoints.KAFKA_BOOTSTRAP}"\n'
        + f'schema_registry = "{endpoints.REGISTRY_URL}"\n'
        + f'[profiles.kafka-prod]\nbroker = "kafka://{endpoints.KAFKA_BOOTSTRAP}"\n'
        + f'schema_registry = "{endpoints.REGISTRY_URL}"\nmask_required = true\n'
        + f'[profiles.rabbit]\nbroker = "{endpoints.RABBIT_AMQP_URL}"\n'
        + f'management_url = "{endpoints.RABBIT_MANAGEMENT_URL}"\n'
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    return path


@pytest.fixture
def avro_topic():
    """A Kafka topic holding two Avro orders (value subject TOPIC-value), removed after the test."""
    endpoints.require_kafka()
    endpoints.require_port(endpoints.REGISTRY_HOST, endpoints.REGISTRY_PORT, "the schema registry")
    name = unique("it-redact")
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    try:
        serialize = AvroSerializer(client, json.dumps(ORDER_SCHEMA))
        producer = Producer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
        for n in range(2):
            order = {
                "id": f"o-{n}",
                "customer": {"email": EMAIL},
                "card": {"number": CARD},
                "note": f"refund to {CARD.replace(' ', '')} asked by {EMAIL}",
                "correlationId": f"{name}-corr",
            }
            value = serialize(order, SerializationContext(name, MessageField.VALUE))
            producer.produce(
                name,
                value=value,
                key=b"o-%d" % n,
                headers=[("x-api-token", TOKEN.encode()), ("correlation_id", f"{name}-corr".encode())],
            )
        assert producer.flush(30) == 0
        yield name
    finally:
        for future in admin.delete_topics([name]).values():
            future.result(30)
        endpoints.delete_subject(f"{name}-value", missing_ok=True)


@pytest.mark.kafka
def test_avro_events_on_kafka_are_redacted_in_every_output(profiles, avro_topic, tmp_path):
    table = workbench("-p", "kafka", "tail", avro_topic)
    assert table.exit_code == 0, table.output
    assert "****" in table.stdout
    assert_clean(table.stdout + table.stderr)

    as_json = workbench("-p", "kafka", "tail", avro_topic, "-o", "json", "--redact")
    assert as_json.exit_code == 0, as_json.output
    assert_clean(as_json.stdout)
    first = json.loads(as_json.stdout.splitlines()[0])
    assert first["value_decoded"]["customer"]["email"] == "****"  # what the schema decoded, masked
    assert first["value_schema"]["format"] == "avro"
    assert [REDACTED_HEADER, "true"] in first["headers"]

    exact = workbench("-p", "kafka", "tail", avro_topic, "-o", "jsonl")  # the original Avro bytes
    assert exact.exit_code == 0 and REDACTED_HEADER not in exact.stdout and TOKEN in exact.stdout

    refused = workbench("-p", "kafka-prod", "tail", avro_topic, "-o", "jsonl")
    assert refused.exit_code == 6 and "mask_required" in refused.stderr

    trace = workbench(
        "-p", "kafka", "trace", f"{avro_topic}-corr", "--topic", avro_topic, "--since", "beginning", "-o", "json"
    )
    assert trace.exit_code == 0, trace.output
    assert len(json.loads(trace.stdout)["hops"]) == 2
    assert_clean(trace.stdout)

    file = tmp_path / "ticket.db"
    captured = workbench("-p", "kafka-prod", "capture", avro_topic, "--redact", "--to", str(file))
    assert captured.exit_code == 0, captured.output
    assert_clean(file.read_bytes())
    offline = workbench("--broker", f"local:{file}", "tail", avro_topic)
    assert offline.exit_code == 0 and offline.stdout.count("****") >= 2
    assert_clean(offline.stdout)


async def _rabbit_setup(names: dict[str, str]) -> None:
    """A stream with a planted message, and a queue whose rejected message RabbitMQ dead-letters."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        body = json.dumps({"customer": {"email": EMAIL}, "note": f"card {CARD}"}).encode()
        headers = {"x-api-token": TOKEN}
        await channel.declare_queue(names["stream"], durable=True, arguments={"x-queue-type": "stream"})
        await channel.default_exchange.publish(aio_pika.Message(body, headers=headers), routing_key=names["stream"])
        dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT)
        dlq = await channel.declare_queue(names["dlq"])
        await dlq.bind(dlx)
        work = await channel.declare_queue(names["work"], arguments={"x-dead-letter-exchange": names["dlx"]})
        await channel.default_exchange.publish(aio_pika.Message(body, headers=headers), routing_key=names["work"])
        message = await eventually(lambda: work.get(fail=False), "a message to reject")
        await message.reject(requeue=False)

        async def dead_lettered() -> bool:
            queue = await channel.declare_queue(names["dlq"], passive=True)
            return queue.declaration_result.message_count == 1

        await eventually(dead_lettered, "the rejected message dead-lettered")


async def _rabbit_remove(names: dict[str, str]) -> None:
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        for queue in (names["stream"], names["work"], names["dlq"]):
            await channel.queue_delete(queue)
        await channel.exchange_delete(names["dlx"])


@pytest.mark.rabbitmq
def test_rabbitmq_stream_and_dead_letters_are_redacted(profiles):
    require_rabbitmq()
    names = {k: unique(f"it-redact-{k}") for k in ("stream", "dlx", "dlq", "work")}
    try:
        asyncio.run(_rabbit_setup(names))
        shown = workbench("-p", "rabbit", "tail", names["stream"], "--from", "beginning", "--max", "1")
        assert shown.exit_code == 0, shown.output
        assert "****" in shown.stdout
        assert_clean(shown.stdout)
        lines = workbench("-p", "rabbit", "tail", names["stream"], "--max", "1", "-o", "jsonl", "--redact")
        assert lines.exit_code == 0 and REDACTED_HEADER in lines.stdout
        assert_clean(lines.stdout)

        summary = workbench("-p", "rabbit", "dlq", "summary", names["dlq"], "--peek", "5", "-o", "json")
        assert summary.exit_code == 0, summary.output
        assert json.loads(summary.stdout)["causes"][0]["cause"] == "rejected"  # x-death is RabbitMQ's own
        assert_clean(summary.stdout)
        peeked = workbench("-p", "rabbit", "peek", names["dlq"], "--yes", "-o", "jsonl", "--redact")
        assert peeked.exit_code == 0, peeked.output
        assert_clean(peeked.stdout)
        assert '"x-death"' in peeked.stdout and REDACTED_HEADER in peeked.stdout
    finally:
        asyncio.run(_rabbit_remove(names))
