"""The demo's dead letters: a few of each convention, so `workbench dlq summary` has something to say.

- ``orders.DLT``: what Spring Kafka's DeadLetterPublishingRecoverer writes when the inventory
  service fails on an order (``kafka_dlt-*``: text, and big-endian binary partition/offset/timestamp);
- ``warehouse-sink.dlq``: what a Kafka Connect sink (payments -> warehouse) writes with context headers enabled
  (``__connect.errors.*``, all text);
- ``shipping.dlq``: RabbitMQ dead letters as a capture of a RabbitMQ queue keeps them (``x-death``
  as JSON text, ``x-first-death-*``), first published to the ``shipping`` exchange.

Deterministic for a seed; seeded once (again only when forced), like the sagas.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Mapping
from datetime import UTC, datetime

from workbench.broker import Connection, NotFound, OutgoingEvent, Unsupported
from workbench.demo.wire import publish

SPRING_DLT = "orders.DLT"
CONNECT_DLQ = "warehouse-sink.dlq"
RABBIT_DLQ = "shipping.dlq"
TOPICS = (SPRING_DLT, CONNECT_DLQ, RABBIT_DLQ)

_SPRING = (
    (
        "org.springframework.kafka.support.serializer.DeserializationException",
        "failed to deserialize; nested exception is com.fasterxml.jackson.core.JsonParseException: "
        "Unexpected character ('}' (code 125)): was expecting double-quote to start field name",
        b'{"order_id":"ORD-%d","items":[{"sku":"SKU-TEE-BLK-M","qty":1}],}',
    ),
    (
        "org.springframework.kafka.listener.ListenerExecutionFailedException",
        "Listener method 'reserve' threw exception; nested exception is java.lang.IllegalStateException: "
        "unknown SKU SKU-RETIRED-%d",
        b'{"order_id":"ORD-%d","items":[{"sku":"SKU-RETIRED","qty":2}]}',
    ),
)
_CONNECT = (
    (
        "org.apache.kafka.connect.errors.DataException",
        "Converting byte[] to Kafka Connect data failed due to serialization error of topic payments: ",
        b'{"payment_id":"PAY-%d","amount":"12,50"}',
    ),
    (
        "org.apache.kafka.connect.errors.ConnectException",
        'java.sql.SQLException: ERROR: duplicate key value violates unique constraint "payments_pkey"',
        b'{"payment_id":"PAY-%d","amount":12.5}',
    ),
)
_RABBIT_REASONS = ("rejected", "rejected", "rejected", "expired", "expired")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def plan(rng: random.Random, now: int) -> dict[str, list[OutgoingEvent]]:
    """The dead letters of each convention, stamped within the last hour."""

    def when() -> int:
        return now - rng.randint(60_000, 3_600_000)

    spring = []
    for n in range(6):
        fqcn, message, body = _SPRING[0 if n < 4 else 1]
        order, died = 1000 + rng.randint(0, 8999), when()
        headers: tuple[tuple[str, bytes], ...] = (
            ("content-type", b"application/json"),
            ("kafka_dlt-exception-fqcn", fqcn.encode()),
            ("kafka_dlt-exception-message", (message % order if "%d" in message else message).encode()),
            (
                "kafka_dlt-exception-stacktrace",
                f"{fqcn}: ...\n\tat com.shop.inventory.Reserve(Reserve.java:42)".encode(),
            ),
            ("kafka_dlt-original-topic", b"orders"),
            ("kafka_dlt-original-partition", struct.pack(">i", order % 3)),
            ("kafka_dlt-original-offset", struct.pack(">q", rng.randint(0, 400))),
            ("kafka_dlt-original-timestamp", struct.pack(">q", died - rng.randint(50, 2000))),
            ("kafka_dlt-original-timestamp-type", b"CreateTime"),
            ("kafka_dlt-original-consumer-group", b"inventory-service"),
        )
        spring.append(_event(body % order, f"ORD-{order}", headers, died))
    connect = []
    for n in range(4):
        fqcn, message, body = _CONNECT[0 if n < 3 else 1]
        payment, died = 1000 + rng.randint(0, 8999), when()
        headers = (
            ("__connect.errors.topic", b"payments"),
            ("__connect.errors.partition", str(payment % 3).encode()),
            ("__connect.errors.offset", str(rng.randint(0, 600)).encode()),
            ("__connect.errors.connector.name", b"payments-warehouse-sink"),
            ("__connect.errors.task.id", b"0"),
            ("__connect.errors.stage", b"VALUE_CONVERTER" if n < 3 else b"TASK_PUT"),
            ("__connect.errors.class.name", b"org.apache.kafka.connect.json.JsonConverter"),
            ("__connect.errors.exception.class.name", fqcn.encode()),
            ("__connect.errors.exception.message", message.encode()),
        )
        connect.append(_event(body % payment, f"PAY-{payment}", headers, died))
    rabbit = []
    for reason in _RABBIT_REASONS:
        order, died = 1000 + rng.randint(0, 8999), when()
        death = {
            "count": 1,
            "reason": reason,
            "queue": "shipping-labels",
            "time": _iso(died - died % 1000),
            "exchange": "shipping",
            "routing-keys": ["label.create"],
        }
        if reason == "expired":
            death["original-expiration"] = "60000"
        headers = (
            ("content-type", b"application/json"),
            ("x-death", json.dumps([death]).encode()),
            ("x-first-death-exchange", b"shipping"),
            ("x-first-death-queue", b"shipping-labels"),
            ("x-first-death-reason", reason.encode()),
        )
        body = json.dumps({"order_id": f"ORD-{order}", "carrier": rng.choice(("DHL", "UPS"))}).encode()
        rabbit.append(_event(body, "label.create", headers, died))
    return {SPRING_DLT: spring, CONNECT_DLQ: connect, RABBIT_DLQ: rabbit}


def _event(value: bytes, key: str, headers: tuple[tuple[str, bytes], ...], ts: int) -> OutgoingEvent:
    return OutgoingEvent(value=value, key=key.encode(), headers=headers, timestamp=ts)


async def counts(conn: Connection) -> dict[str, int]:
    """Events in each dead-letter topic that exists."""
    found = {}
    for topic in TOPICS:
        try:
            found[topic] = (await conn.describe_topic(topic)).count
        except NotFound:
            continue
    return found


async def seed(conn: Connection, rng: random.Random, now: int, *, force: bool = False) -> int:
    """Create the dead-letter topics and publish the planned dead letters (when empty, or forced)."""
    existing = await counts(conn)
    if any(existing.values()) and not force:
        return 0
    planned: Mapping[str, list[OutgoingEvent]] = plan(rng, now)
    for topic in TOPICS:
        if topic not in existing:
            try:
                await conn.create_topic(topic, 1)
            except Unsupported as exc:
                raise Unsupported(
                    f"demo: cannot create topic {topic!r} here: {exc}",
                    hint="create the demo topics with the broker's own tools",
                ) from exc
    items = [(topic, event) for topic, events in planned.items() for event in sorted(events, key=_stamp)]
    await publish(conn, items)
    return len(items)


def _stamp(event: OutgoingEvent) -> int:
    return event.timestamp or 0
