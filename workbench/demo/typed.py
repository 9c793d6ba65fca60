"""The demo's typed topics: where a schema registry is configured, the orders and payments of the
scenario again, as Avro (``orders.avro``) and Protobuf (``payments.proto``) in the Confluent wire
format, each schema with a reference, so a newcomer sees decoding at work (tail, filters, trace).

The events keep the scenario's headers (CloudEvents, correlation id), so ``trace`` follows an
order through the JSON and the typed topics alike.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from workbench.broker import Connection, NotFound, OutgoingEvent
from workbench.demo.scenario import Step, plan_scenario
from workbench.demo.wire import outgoing, publish
from workbench.events.schemas import wire
from workbench.events.schemas.formats import SchemaText, parse
from workbench.events.schemas.registry import Registry

AVRO_TOPIC, PROTO_TOPIC = "orders.avro", "payments.proto"
PARTITIONS = 3

LINE_ITEM = SchemaText(
    "avro",
    json.dumps(
        {
            "type": "record",
            "name": "LineItem",
            "namespace": "demo.shop",
            "fields": [
                {"name": "sku", "type": "string"},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "double", "default": 0.0},
            ],
        }
    ),
)
ORDER_EVENT = SchemaText(
    "avro",
    json.dumps(
        {
            "type": "record",
            "name": "OrderEvent",
            "namespace": "demo.shop",
            "fields": [
                {"name": "type", "type": "string"},
                {"name": "orderId", "type": "string"},
                {"name": "customerId", "type": "string"},
                {"name": "correlationId", "type": "string"},
                {"name": "amount", "type": "double"},
                {"name": "currency", "type": "string"},
                {"name": "items", "type": {"type": "array", "items": "demo.shop.LineItem"}, "default": []},
                {"name": "reason", "type": ["null", "string"], "default": None},
            ],
        }
    ),
    (("demo.shop.LineItem", LINE_ITEM),),
)
MONEY = SchemaText(
    "protobuf",
    'syntax = "proto3";\npackage demo.common;\n\nmessage Money {\n  double amount = 1;\n  string currency = 2;\n}\n',
)
PAYMENT_EVENT = SchemaText(
    "protobuf",
    'syntax = "proto3";\npackage demo.payments;\n\nimport "demo/money.proto";\n\n'
    "message PaymentEvent {\n  string type = 1;\n  string order_id = 2;\n  string customer_id = 3;\n"
    "  string correlation_id = 4;\n  string payment_id = 5;\n  string method = 6;\n"
    "  demo.common.Money total = 7;\n  string reason = 8;\n}\n",
    (("demo/money.proto", MONEY),),
)


def _order(step: Step) -> dict[str, Any]:
    d = step.data
    return {
        "type": step.type,
        "orderId": d["orderId"],
        "customerId": d["customerId"],
        "correlationId": d["correlationId"],
        "amount": float(d.get("amount", 0.0)),
        "currency": d.get("currency", "EUR"),
        "items": [{"sku": i["sku"], "qty": i["qty"], "price": i.get("price", 0.0)} for i in d.get("items", ())],
        "reason": d.get("reason"),
    }


def _payment(step: Step) -> dict[str, Any]:
    d = step.data
    return {
        "type": step.type,
        "orderId": d["orderId"],
        "customerId": d["customerId"],
        "correlationId": d["correlationId"],
        "paymentId": d.get("paymentId", ""),
        "method": d.get("method", ""),
        "total": {"amount": float(d.get("amount", 0.0)), "currency": d.get("currency", "EUR")},
        "reason": d.get("reason", ""),
    }


async def seed(conn: Connection, registry: Registry, *, orders: int = 200, force: bool = False) -> dict[str, int]:
    """Register the schemas and publish the typed topics; ``{topic: events}`` (nothing when already there)."""
    counts = await _existing(conn)
    if all(counts.values()) and not force:
        return {}
    avro_id = await asyncio.to_thread(registry.register, f"{AVRO_TOPIC}-value", ORDER_EVENT)
    proto_id = await asyncio.to_thread(registry.register, f"{PROTO_TOPIC}-value", PAYMENT_EVENT)
    encoders = {
        AVRO_TOPIC: (avro_id, ORDER_EVENT, _order, "orders"),
        PROTO_TOPIC: (proto_id, PAYMENT_EVENT, _payment, "payments"),
    }
    steps = plan_scenario(random.Random(11), orders, 2 * 3600 * 1000)
    now = _now_ms()
    items: list[tuple[str, OutgoingEvent]] = []
    published: dict[str, int] = {}
    for topic, (schema_id, schema, shape, source) in encoders.items():
        codec = parse(schema, name=topic)
        for step in (s for s in steps if s.topic == source):
            event = outgoing(step, now + step.at, {source: PARTITIONS})
            payload, indexes = codec.encode(shape(step))
            framed = wire.frame(schema_id, payload, indexes)
            content_type = f"application/vnd.{schema.format}".encode()
            headers = tuple((k, content_type if k == "content-type" else v) for k, v in event.headers)
            items.append((topic, replace(event, value=framed, headers=headers)))
            published[topic] = published.get(topic, 0) + 1
    await publish(conn, items)
    return published


async def _existing(conn: Connection) -> Mapping[str, int]:
    counts = {}
    for topic in (AVRO_TOPIC, PROTO_TOPIC):
        try:
            counts[topic] = (await conn.describe_topic(topic)).count
        except NotFound:
            await conn.create_topic(topic, PARTITIONS)
            counts[topic] = 0
    return counts


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def describe(published: Mapping[str, int]) -> str:
    shown = ", ".join(f"{topic} {count:,}" for topic, count in published.items())
    return f"typed topics, decoded through the schema registry: {shown} (try: workbench tail {AVRO_TOPIC})"
