"""Dead-letter headers read as each framework writes them, grouped by cause, and the events sent home."""

from __future__ import annotations

import json
import struct

from workbench.broker import Event
from workbench.triage.dlq import dead_letter, event_ref, summarize
from workbench.triage.redrive import REDRIVEN_FROM, Destination, redriven


def event(headers, *, offset=0, ts=1_700_000_000_000, metadata=None, key=b"k", topic="dlq") -> Event:
    return Event(topic, 0, offset, ts, key, b"{}", tuple(headers), metadata or {})


def test_spring_binary_positions_and_text_fields():
    letter = dead_letter(
        event(
            [
                ("kafka_dlt-exception-fqcn", b"com.example.Boom"),
                ("kafka_dlt-exception-message", b"first line\nsecond line"),
                ("kafka_dlt-original-topic", b"orders"),
                ("kafka_dlt-original-partition", struct.pack(">i", 2)),
                ("kafka_dlt-original-offset", struct.pack(">q", 2**40)),
                ("kafka_dlt-original-timestamp", struct.pack(">q", 1_699_999_999_000)),
            ]
        )
    )
    assert letter is not None
    assert (letter.convention, letter.cause, letter.message, letter.origin) == (
        "spring", "com.example.Boom", "first line", "orders"
    )  # fmt: skip
    assert (letter.origin_partition, letter.origin_offset, letter.origin_timestamp) == (2, 2**40, 1_699_999_999_000)


def test_connect_text_fields():
    letter = dead_letter(
        event(
            [
                ("__connect.errors.topic", b"payments"),
                ("__connect.errors.partition", b"1"),
                ("__connect.errors.offset", b"77"),
                ("__connect.errors.connector.name", b"sink"),
                ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
            ]
        )
    )
    assert letter is not None
    assert (letter.convention, letter.origin, letter.origin_partition, letter.origin_offset, letter.connector) == (
        "connect", "payments", 1, 77, "sink"
    )  # fmt: skip


def test_rabbitmq_first_death_names_the_origin_of_a_message_that_died_twice():
    deaths = [  # most recent first, as RabbitMQ keeps them
        {"queue": "retry", "reason": "expired", "count": 1, "exchange": "retry-x", "routing-keys": ["r"], "time": 1_700_000_100},
        {"queue": "work", "reason": "rejected", "count": 3, "exchange": "orders", "routing-keys": ["created"], "time": 1_700_000_000},
    ]  # fmt: skip
    headers = [
        ("x-death", json.dumps(deaths).encode()),
        ("x-first-death-queue", b"work"),
        ("x-first-death-reason", b"rejected"),
        ("x-first-death-exchange", b"orders"),
    ]
    letter = dead_letter(event(headers))
    assert letter is not None
    assert (letter.cause, letter.origin, letter.exchange, letter.routing_key, letter.count, letter.died_at) == (
        "rejected", "work", "orders", "created", 3, 1_700_000_000_000
    )  # fmt: skip
    item = redriven(event(headers))
    assert item is not None and item.destination == Destination("orders", "created")
    assert item.event is not None and item.event.key == b"created"
    assert dict(item.event.headers) == {REDRIVEN_FROM: b"dlq/0/0"}
    assert set(item.stripped) == {"x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange"}


def test_default_exchange_goes_back_to_the_queue_and_peeked_messages_have_stable_names():
    headers = [("x-first-death-queue", b"work"), ("x-first-death-reason", b"expired"), ("x-first-death-exchange", b"")]
    item = redriven(event(headers))
    assert item is not None and item.destination == Destination("work")
    peeked = event([*headers, ("x-death", b"[]")], metadata={"message_count": 3, "message_id": None})
    again = event([*headers, ("x-death", b'[{"count": 2}]')], offset=5, metadata={"message_count": 0})
    assert event_ref(peeked) == event_ref(again) != event_ref(event(headers))
    assert event_ref(event(headers, metadata={"message_count": 1, "message_id": "m-1"})) == "dlq/id:m-1"


def test_summary_groups_by_convention_cause_and_origin():
    def spring(fqcn: str, offset: int, ts: int) -> Event:
        headers = [("kafka_dlt-exception-fqcn", fqcn.encode()), ("kafka_dlt-original-topic", b"orders")]
        return event(headers, offset=offset, ts=ts)

    summary = summarize("dlq", [spring("A", 0, 30), spring("B", 1, 10), spring("A", 2, 20), event([], offset=3)])
    assert (summary.scanned, summary.dead_letters, summary.other) == (4, 3, 1)
    top, other = summary.ranked()
    assert (top.cause, top.count, top.first, top.last, top.example) == ("A", 2, 20, 30, "dlq/0/0")
    assert (other.cause, other.count) == ("B", 1)
    assert dead_letter(event([("content-type", b"application/json")])) is None
    assert redriven(event([])) is None
