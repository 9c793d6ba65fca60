"""dlq summary and replay --to-origin against the real Kafka and RabbitMQ.

Kafka dead letters are produced with exactly the headers Spring Kafka's DeadLetterPublishingRecoverer
and Kafka Connect write (Spring's partition/offset/timestamp as big-endian binary ints/longs, Connect's
as text). RabbitMQ dead-letters its own: a work queue with ``x-dead-letter-exchange``, one message
expired by a per-message TTL and two rejected (basic.reject, requeue=false), so ``x-death`` is the
broker's. Every topic, queue and exchange is unique to its test and removed after it.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path

import aio_pika
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import endpoints
from tests.integration.cli_support import unique, workbench, write_profiles
from tests.integration.rabbitmq_support import eventually, require_rabbitmq
from workbench.errors import ExitCode


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    """A profile file with the two brokers and an audit log of the test's own."""
    return write_profiles(tmp_path, monkeypatch, preamble='[sagas]\naudit_log = "audit.jsonl"\n')


def spring_headers(fqcn: str, message: str, topic: str, partition: int, offset: int, ts: int):
    """As DeadLetterPublishingRecoverer writes them (ByteBuffer.putInt / putLong: big-endian)."""
    return [
        ("kafka_dlt-exception-fqcn", fqcn.encode()),
        ("kafka_dlt-exception-message", message.encode()),
        (
            "kafka_dlt-exception-stacktrace",
            f"{fqcn}: {message}\n\tat com.example.Listener.on(Listener.java:12)".encode(),
        ),
        ("kafka_dlt-original-topic", topic.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", partition)),
        ("kafka_dlt-original-offset", struct.pack(">q", offset)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", ts)),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
    ]


def connect_headers(fqcn: str, message: str, topic: str, partition: int, offset: int):
    """As Kafka Connect's DeadLetterQueueReporter writes them (context headers enabled: all text)."""
    return [
        ("__connect.errors.topic", topic.encode()),
        ("__connect.errors.partition", str(partition).encode()),
        ("__connect.errors.offset", str(offset).encode()),
        ("__connect.errors.connector.name", b"warehouse-sink"),
        ("__connect.errors.task.id", b"0"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        ("__connect.errors.exception.class.name", fqcn.encode()),
        ("__connect.errors.exception.message", message.encode()),
    ]


@pytest.fixture
def kafka():
    """``make(name)``: a new one-partition topic; ``produce(topic, key, value, headers)``; all deleted after."""
    endpoints.require_kafka()
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    made: list[str] = []
    producer = Producer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})

    class Kafka:
        @staticmethod
        def make(prefix: str) -> str:
            name = unique(prefix)
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
            made.append(name)
            return name

        @staticmethod
        def produce(topic: str, key: bytes, value: bytes, headers) -> None:
            producer.produce(topic, key=key, value=value, headers=headers)
            assert producer.flush(30) == 0

        @staticmethod
        def read(topic: str) -> list:
            consumer = Consumer(
                {
                    "bootstrap.servers": endpoints.KAFKA_BOOTSTRAP,
                    "group.id": unique("it-dlq-check"),
                    "enable.auto.commit": False,
                }
            )
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
                consumer.assign([TopicPartition(topic, 0, low)])
                found = []
                deadline = time.monotonic() + 20
                while len(found) < high - low and time.monotonic() < deadline:
                    message = consumer.poll(0.5)
                    if message is not None and not message.error():
                        found.append(message)
                return found
            finally:
                consumer.close()

    yield Kafka
    if made:
        for future in admin.delete_topics(made).values():
            future.result(30)


@pytest.mark.kafka
def test_kafka_dead_letters_of_spring_and_connect_summed_up_and_sent_home_once(profiles, kafka):
    orders, payments, dlq = kafka.make("it-dlq-orders"), kafka.make("it-dlq-payments"), kafka.make("it-dlq")
    now = int(time.time() * 1000)
    bad_json = "org.springframework.kafka.support.serializer.DeserializationException"
    for n in range(3):
        kafka.produce(
            dlq, f"o-{n}".encode(), b'{"id":%d,}' % n, spring_headers(bad_json, f"bad JSON {n}", orders, 0, 10 + n, now)
        )
    kafka.produce(
        dlq,
        b"p-1",
        b'{"amount":"12,50"}',
        connect_headers("org.apache.kafka.connect.errors.DataException", "Converting byte[] failed", payments, 0, 7),
    )
    kafka.produce(dlq, b"x", b"no dead-letter headers", [("trace", b"1")])

    summary = workbench("-p", "kafka", "dlq", "summary", dlq, "-o", "json")
    assert summary.exit_code == 0, summary.output
    doc = json.loads(summary.stdout)
    assert (doc["dead_letters"], doc["without_dead_letter_headers"]) == (4, 1)
    spring, connect = doc["causes"]
    assert (spring["convention"], spring["cause"], spring["origin"], spring["count"]) == ("spring", bad_json, orders, 3)
    assert spring["example"] == f"{dlq}/0/0" and spring["message"] == "bad JSON 0"
    assert spring["first"] <= spring["last"]
    assert (connect["convention"], connect["origin"], connect["count"]) == ("connect", payments, 1)
    assert connect["cause"] == "org.apache.kafka.connect.errors.DataException"
    window = json.loads(workbench("-p", "kafka", "dlq", "summary", dlq, "--until", "1", "-o", "json").stdout)
    assert window["dead_letters"] == 2  # offsets 0 and 1

    dry = workbench("-p", "kafka", "replay", dlq, "--to-origin", "-o", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["destinations"] == {orders: 3, payments: 1}
    assert kafka.read(orders) == [] and kafka.read(payments) == []  # a dry run sends nothing

    started = time.monotonic()
    done = workbench("-p", "kafka", "replay", dlq, "--to-origin", "--execute", "--rate", "10", "--reason", "fixed")
    assert done.exit_code == 0, done.output
    assert time.monotonic() - started >= 0.3  # 4 events at 10 a second: at least 3 intervals
    home = kafka.read(orders)
    assert [m.key() for m in home] == [b"o-0", b"o-1", b"o-2"]
    for n, message in enumerate(home):
        headers = dict(message.headers())
        assert headers == {"workbench-redriven-from": f"{dlq}/0/{n}".encode()}  # dead-letter headers stripped
        assert message.value() == b'{"id":%d,}' % n
    assert [dict(m.headers())["workbench-redriven-from"] for m in kafka.read(payments)] == [f"{dlq}/0/3".encode()]

    again = workbench("-p", "kafka", "replay", dlq, "--to-origin", "--execute", "-o", "json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert (second["published"], second["already_redriven"]) == (0, 4)
    assert second["checked"] == {orders: "destination", payments: "destination"}
    assert len(kafka.read(orders)) == 3 and len(kafka.read(payments)) == 1

    history = json.loads(workbench("dlq", "history", "-o", "json").stdout)
    assert [(h["source"], h["published"], h["already_redriven"], h["reason"]) for h in history] == [
        (dlq, 4, 0, "fixed"),
        (dlq, 0, 4, None),
    ]
    assert history[0]["plan"] == {orders: 3, payments: 1} and history[0]["profile"] == "kafka"
    assert json.loads(workbench("saga", "history", "-o", "json").stdout) == []  # compensations only


@pytest.mark.kafka
def test_kafka_redrive_filter_and_refusals(profiles, kafka):
    orders, dlq = kafka.make("it-dlq-orders"), kafka.make("it-dlq")
    now = int(time.time() * 1000)
    for n, fqcn in enumerate(["com.example.Invalid", "com.example.Timeout", "com.example.Invalid"]):
        kafka.produce(dlq, f"o-{n}".encode(), b"{}", spring_headers(fqcn, "no", orders, 0, n, now))
    wanted = 'headers["kafka_dlt-exception-fqcn"] == "com.example.Timeout"'
    done = workbench("-p", "kafka", "replay", dlq, "--to-origin", "--filter", wanted, "--execute", "-o", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["published"] == 1
    assert [m.key() for m in kafka.read(orders)] == [b"o-1"]
    both = workbench("-p", "kafka", "replay", dlq, "--to-origin", "--to", orders)
    assert both.exit_code == ExitCode.USAGE
    peek = workbench("-p", "kafka", "replay", dlq, "--to-origin", "--peek", "5", "--execute")
    assert peek.exit_code == ExitCode.UNSUPPORTED  # Kafka keeps history: nothing to peek
    assert len(kafka.read(orders)) == 1


# --------------------------------------------------------------------------- RabbitMQ


async def _dead_letter_three(names: dict[str, str]) -> None:
    """origin exchange -> work queue (dead-lettering to dlx) -> dlq: one expired, two rejected."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        origin = await channel.declare_exchange(names["origin"], aio_pika.ExchangeType.DIRECT)
        dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT)
        dlq = await channel.declare_queue(names["dlq"])
        await dlq.bind(dlx)
        work = await channel.declare_queue(names["work"], arguments={"x-dead-letter-exchange": names["dlx"]})
        await work.bind(origin, "created")
        await origin.publish(
            aio_pika.Message(b'{"order":"o-ttl"}', headers={"kind": "ttl"}, expiration=0.05), routing_key="created"
        )

        async def dlq_holds(n: int) -> bool:
            queue = await channel.declare_queue(names["dlq"], passive=True)
            return queue.declaration_result.message_count == n

        await eventually(lambda: dlq_holds(1), "the expired message dead-lettered")
        for n in range(2):
            await origin.publish(
                aio_pika.Message(b'{"order":"o-%d"}' % n, headers={"kind": "bad"}), routing_key="created"
            )
        for _ in range(2):
            message = await eventually(lambda: work.get(fail=False), "a message to reject")
            await message.reject(requeue=False)
        await eventually(lambda: dlq_holds(3), "three dead letters")


async def _work_queue(names: dict[str, str]) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message of the work queue (what a consumer of the origin would get)."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names["work"], passive=True)
        taken = []
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            taken.append(message)
        return taken


async def _remove(names: dict[str, str]) -> None:
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        for queue in (names["work"], names["dlq"]):
            await channel.queue_delete(queue)
        for exchange in (names["origin"], names["dlx"]):
            await channel.exchange_delete(exchange)


@pytest.mark.rabbitmq
def test_rabbitmq_dead_letters_by_reason_sent_back_to_their_exchange_once(profiles):
    require_rabbitmq()
    names = {k: unique(f"it-dlq-{k}") for k in ("origin", "dlx", "dlq", "work")}
    try:
        asyncio.run(_dead_letter_three(names))
        summary = workbench("-p", "rabbit", "dlq", "summary", names["dlq"], "--peek", "10", "-o", "json")
        assert summary.exit_code == 0, summary.output
        doc = json.loads(summary.stdout)
        causes = {c["cause"]: c for c in doc["causes"]}
        assert {k: (c["count"], c["origin"], c["convention"]) for k, c in causes.items()} == {
            "rejected": (2, names["work"], "rabbitmq"),
            "expired": (1, names["work"], "rabbitmq"),
        }
        assert causes["rejected"]["first"] is not None
        no_peek = workbench("-p", "rabbit", "dlq", "summary", names["dlq"])
        assert no_peek.exit_code == ExitCode.UNSUPPORTED  # a classic queue is only read by peeking

        dry = workbench("-p", "rabbit", "replay", names["dlq"], "--to-origin", "--peek", "10", "-o", "json")
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.stdout)["destinations"] == {f"{names['origin']} (routing key created)": 3}
        assert asyncio.run(_work_queue(names)) == []

        done = workbench(
            "-p", "rabbit", "replay", names["dlq"], "--to-origin", "--peek", "10", "--execute", "-o", "json"
        )
        assert done.exit_code == 0, done.output
        first = json.loads(done.stdout)
        assert first["published"] == 3
        assert first["checked"] == {f"{names['origin']} (routing key created)": "audit log"}  # an exchange
        home = asyncio.run(_work_queue(names))
        assert sorted(m.body for m in home) == [b'{"order":"o-0"}', b'{"order":"o-1"}', b'{"order":"o-ttl"}']
        for message in home:
            assert not any(h.startswith("x-death") or h.startswith("x-first-death") for h in message.headers)
            assert message.headers["workbench-redriven-from"].startswith(f"{names['dlq']}/")
            assert message.routing_key == "created"

        again = workbench(
            "-p", "rabbit", "replay", names["dlq"], "--to-origin", "--peek", "10", "--execute", "-o", "json"
        )
        second = json.loads(again.stdout)
        assert (second["published"], second["already_redriven"]) == (0, 3)
        assert asyncio.run(_work_queue(names)) == []
    finally:
        asyncio.run(_remove(names))
