"""Key search on Kafka (issue 15, "Find the event"): finding one key's events in a 1,000,000-event,
12-partition topic by reading only the partitions the key can be in, against reading every partition
(``--all-partitions``), both through ``workbench tail --key`` in the same run, on the same topic.

The topic is filled by a Java-like producer (confluent-kafka with ``partitioner=murmur2_random``):
keys order-0..order-9999, 100 events each, ~100-byte JSON values. Three searches are timed (best of
2 each): the default (the partitions of murmur2 and crc32: at most 2 of 12), ``--partitioner
murmur2`` (1 of 12) and ``--all-partitions`` (the baseline). All three must find the same 100 events;
the assert is a regression floor (reading every partition takes at least 3x as long as the default
search), and the measured ratios are printed for the README.

Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``); without it this fails.
"""

from __future__ import annotations

import json
import sys
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.benchmarks.conftest import best_of, report
from tests.brokers import endpoints

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
EVENTS = 1_000_000
KEYS = 10_000
PARTITIONS = 12
KEY = "order-4242"


@pytest.fixture(scope="module")
def big_topic():
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(f"Kafka does not answer on {BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    name = f"wb-bench-keys-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    try:
        producer = Producer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "partitioner": "murmur2_random",
                "linger.ms": 50,
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": 500000,
                "compression.type": "lz4",
            }
        )
        for i in range(EVENTS):
            value = b'{"order_id":"order-%d","n":%d,"status":"created","amount":%d,"currency":"EUR"}' % (
                i % KEYS,
                i,
                i % 997,
            )
            while True:
                try:
                    producer.produce(name, value=value, key=b"order-%d" % (i % KEYS))
                    break
                except BufferError:
                    producer.poll(0.1)
            if i % 50000 == 0:
                producer.poll(0)
        assert producer.flush(120) == 0
        yield name
    finally:
        admin.delete_topics([name])[name].result(60)


def search(topic: str, *extra: str):
    argv = [sys.executable, "-m", "workbench", "--broker", f"kafka://{BOOTSTRAP}", "tail", topic, "--key", KEY]
    return best_of(2, [*argv, *extra, "-o", "jsonl"])


def figures(run) -> dict:
    (line,) = [x for x in run.stderr.decode().splitlines() if x.startswith("scanned ")]
    return json.loads(line.removeprefix("scanned "))


def test_a_key_search_reads_a_fraction_of_the_topic(big_topic):
    narrow = search(big_topic)
    one = search(big_topic, "--partitioner", "murmur2")
    every = search(big_topic, "--all-partitions")
    for run in (narrow, one, every):
        assert run.stdout.count(b"\n") == EVENTS // KEYS, run.stderr.decode()
        assert figures(run)["complete"] is True
    assert narrow.stdout == every.stdout == one.stdout  # the same events, in the same order
    assert figures(every)["scanned"] == EVENTS
    ratio = every.seconds / narrow.seconds
    report(
        "kafka key search (1,000,000 events, 12 partitions)",
        default_s=narrow.seconds,
        default_partitions=figures(narrow)["partitions_read"],
        default_scanned=figures(narrow)["scanned"],
        murmur2_s=one.seconds,
        all_partitions_s=every.seconds,
        all_over_default=ratio,
        all_over_murmur2=every.seconds / one.seconds,
    )
    assert ratio >= 3.0
