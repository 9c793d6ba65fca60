"""trace, capture and replay end to end against the real Kafka and RabbitMQ.

Needs both brokers (``bash tests/brokers/brokers.sh up``); without them these tests fail. Every
test uses its own uniquely named topics, exchange and stream, and removes them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import endpoints
from tests.integration.cli_support import KAFKA_URL, unique, workbench, write_profiles

pytestmark = [pytest.mark.kafka, pytest.mark.rabbitmq]


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    """A profile file with the two brokers, and nothing from the developer's machine."""
    return write_profiles(tmp_path, monkeypatch)


@pytest.fixture
def kafka_topics():
    """``make(name, events)``: a new one-partition Kafka topic holding ``events`` (value, headers);
    every topic made is deleted after the test."""
    endpoints.require_kafka()
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    made: list[str] = []

    def make(prefix: str, events: list[tuple[bytes, list[tuple[str, bytes]]]], key: bytes | None = b"k") -> str:
        name = unique(prefix)
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
        made.append(name)
        producer = Producer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
        for value, headers in events:
            producer.produce(name, value=value, key=key, headers=headers)
        assert producer.flush(30) == 0
        return name

    yield make
    if made:
        for future in admin.delete_topics(made).values():
            future.result(30)


async def _stream_behind_exchange(exchange: str, stream: str, messages: list[aio_pika.Message]) -> None:
    """A topic exchange bound to a stream queue, and messages published to the exchange."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(stream, durable=True, arguments={"x-queue-type": "stream"})
        await queue.bind(ex, "#")
        for message in messages:
            await ex.publish(message, routing_key="orders.paid", mandatory=True)


async def _remove_rabbit(exchange: str, stream: str) -> None:
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(stream)
        await channel.exchange_delete(exchange)


def test_trace_across_a_kafka_topic_and_a_rabbitmq_exchange(profiles, kafka_topics):
    endpoints.require_rabbitmq()
    cid = f"order-{uuid.uuid4().hex[:12]}"
    orders = kafka_topics(
        "wb-it-trace",
        [
            (
                b'{"orderId": 1}',
                [("correlation_id", cid.encode()), ("ce_type", b"OrderPlaced"), ("ce_source", b"/orders")],
            ),
            (b'{"orderId": 2}', [("correlation_id", b"someone-else")]),
        ],
    )
    exchange, stream = unique("wb-it-trace-x"), unique("wb-it-trace-s")
    now = datetime.now(UTC)
    messages = [
        # The id only in the AMQP correlation_id property, as an AMQP publisher sets it.
        aio_pika.Message(b'{"paid": true}', correlation_id=cid, type="PaymentTaken", app_id="billing", timestamp=now),
        aio_pika.Message(b'{"paid": false}', correlation_id="someone-else", timestamp=now),
    ]
    asyncio.run(_stream_behind_exchange(exchange, stream, messages))
    try:
        args = ["-p", "kafka", "trace", cid, "--since", "10m", "--across", "rabbit"]
        args += ["-t", orders, "-t", f"rabbit:{exchange}", "-t", f"rabbit:{stream}"]
        result = workbench(*args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        found = {(h["profile"], h["topic"]): h for h in data["hops"]}
        assert set(found) == {("kafka", orders), ("rabbit", stream)}
        assert found[("kafka", orders)]["type"] == "OrderPlaced"
        assert (found[("rabbit", stream)]["type"], found[("rabbit", stream)]["source"]) == ("PaymentTaken", "billing")
        # The exchange itself cannot be read back: it is reported, with the broker's reason.
        [skipped] = data["skipped"]
        assert (skipped["profile"], skipped["topic"]) == ("rabbit", exchange) and "history" in skipped["reason"]
        table = workbench(*args)
        assert f"skipped 1 topic that cannot be read back: rabbit:{exchange}" in table.stderr
        assert "PROFILE" in table.stdout and "history" not in table.stderr  # the reason is for -v
    finally:
        asyncio.run(_remove_rabbit(exchange, stream))


def test_capture_from_kafka_then_tail_lag_and_trace_offline(profiles, kafka_topics, tmp_path):
    cid = f"cap-{uuid.uuid4().hex[:12]}"
    events = [
        (
            json.dumps({"n": i, "correlationId": cid if i % 3 == 0 else "x"}).encode(),
            [("raw", bytes([i, 0xFF])), ("ce_type", b"Tick")],
        )
        for i in range(30)
    ]
    topic = kafka_topics("wb-it-capture", events)
    group = unique("wb-it-group")
    consumer = Consumer({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "group.id": group})
    try:  # a real consumer's commit: the lag snapshot must carry it
        consumer.commit(offsets=[TopicPartition(topic, 0, 12)], asynchronous=False)
    finally:
        consumer.close()
    try:
        check_capture(topic, group, cid, tmp_path)
    finally:
        endpoints.delete_kafka_groups(group)


def check_capture(topic: str, group: str, cid: str, tmp_path) -> None:
    original = workbench("--broker", KAFKA_URL, "tail", topic, "--from", "5", "-o", "jsonl").stdout.splitlines()
    assert len(original) == 25
    cap = tmp_path / "incident.db"
    made = workbench("--broker", KAFKA_URL, "capture", topic, "--from", "5", "--to", str(cap), "-o", "json")
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["events"] == {topic: 25} and group in json.loads(made.stdout)["groups"]
    offline = f"local:{cap}"
    # Exact bytes, headers, original offsets and timestamps.
    assert workbench("--broker", offline, "tail", topic, "-o", "jsonl").stdout.splitlines() == original
    lag = json.loads(workbench("--broker", offline, "lag", "--group", group, "-o", "json").stdout)
    assert [(p["committed"], p["start"], p["end"], p["lag"]) for p in lag[0]["partitions"]] == [(12, 5, 30, 18)]
    traced = json.loads(workbench("--broker", offline, "trace", cid, "--since", "beginning", "-o", "json").stdout)
    assert [h["offset"] for h in traced["hops"]] == [6, 9, 12, 15, 18, 21, 24, 27]


def test_replay_from_a_dead_letter_topic_strips_its_headers(profiles, kafka_topics):
    dlt_headers = [
        ("kafka_dlt-exception-message", b"boom"),
        ("kafka_dlt-original-offset", b"\x00\x00\x00\x07"),
        ("__connect.errors.topic", b"orders"),
        ("tenant", b"acme"),
    ]
    dlt = kafka_topics("wb-it-dlt", [(b'{"orderId": 7}', dlt_headers)], key=b"order-7")
    back = kafka_topics("wb-it-back", [])
    dry = workbench("--broker", KAFKA_URL, "replay", dlt, "--to", back)
    assert dry.exit_code == 0 and "dry run: 1 event(s)" in dry.stderr
    assert workbench("--broker", KAFKA_URL, "tail", back, "-o", "jsonl").stdout == ""
    done = workbench("--broker", KAFKA_URL, "replay", dlt, "--to", back, "--execute")
    assert done.exit_code == 0, done.stderr
    assert "1 confirmed, 0 failed" in done.stdout
    deadline = time.monotonic() + 10
    while not (lines := workbench("--broker", KAFKA_URL, "tail", back, "-o", "jsonl").stdout.splitlines()):
        assert time.monotonic() < deadline, "the replayed event never arrived"
    [event] = [json.loads(line) for line in lines]
    assert event["key"] == "order-7" and event["value"] == '{"orderId": 7}'
    names = [h[0] for h in event["headers"]]
    assert names == ["tenant", "workbench-replayed-from", "workbench-replayed-at"]
    assert event["headers"][1][1] == f"{dlt}/0/0"
