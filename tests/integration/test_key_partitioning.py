"""The key-search partitioners against the real clients: confluent-kafka (librdkafka) produces with
``murmur2_random`` (Java-compatible) and ``consistent_random`` (its default), and the partition the
broker stored each key in must be the one :mod:`workbench.partitioning` computes, for many keys.

Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``); fails, never skips, without it.
"""

from __future__ import annotations

import random
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import endpoints
from workbench.broker import Position
from workbench.partitioning import partition_for, plan_key_search
from workbench_kafka import KafkaAdapter

pytestmark = pytest.mark.kafka

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP


def keys(n: int) -> list[bytes]:
    """Text ids like producers use, plus binary, long and non-ASCII keys (every length mod 4)."""
    rng = random.Random(15)
    made = [f"order-{i}".encode() for i in range(n // 2)]
    made += [rng.randbytes(rng.randrange(1, 40)) for _ in range(n // 4)]
    made += [f"ключ-{i}-{'x' * (i % 7)}".encode() for i in range(n - len(made))]
    return made


@pytest.fixture
def topics():
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(f"Kafka does not answer on {BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`", pytrace=False)
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    created: list[str] = []

    def make(partitions: int) -> str:
        name = f"wb-keyhash-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        created.append(name)
        return name

    yield make
    if created:
        for future in admin.delete_topics(created).values():
            future.result(30)


def produce(topic: str, partitioner: str, items: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "partitioner": partitioner, "linger.ms": 5})
    failed: list[str] = []
    for key in items:
        producer.produce(topic, value=b"v", key=key, on_delivery=lambda err, _m: err and failed.append(str(err)))
    assert producer.flush(30) == 0 and not failed, failed


async def stored_partitions(topic: str) -> dict[bytes, int]:
    """Where the broker stored each key: read back through the workbench's own Kafka reader."""
    conn = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    found: dict[bytes, int] = {}
    try:
        async for batch in conn.read(topic, Position.beginning()):
            for event in batch:
                assert event.key is not None
                found[event.key] = event.partition
    finally:
        await conn.close()
    return found


@pytest.mark.parametrize(
    ("client_partitioner", "ours"), [("murmur2_random", "murmur2"), ("consistent_random", "crc32")]
)
@pytest.mark.parametrize("partitions", [12, 7])
async def test_the_broker_stores_each_key_where_we_compute_it(topics, client_partitioner, ours, partitions):
    topic = topics(partitions)
    items = keys(600)
    produce(topic, client_partitioner, items)
    stored = await stored_partitions(topic)
    assert len(stored) == len(set(items))
    wrong = {
        k: (p, partition_for(k, partitions, ours)) for k, p in stored.items() if partition_for(k, partitions, ours) != p
    }
    assert not wrong, f"{len(wrong)} key(s) stored elsewhere than {ours} computes: {list(wrong.items())[:5]}"
    assert len(set(stored.values())) == partitions  # the keys spread: the check covers every partition
    # and a search with the default ("both") always reads the partition the key is in
    for key, partition in stored.items():
        assert partition in plan_key_search(key, partitions).partitions


async def test_an_empty_key_is_placed_by_murmur2_but_at_random_by_consistent_random(topics):
    """librdkafka's consistent_random places an empty key at random; murmur2_random hashes it."""
    topic = topics(12)
    produce(topic, "murmur2_random", [b""] * 30)
    conn = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        seen = {e.partition async for batch in conn.read(topic, Position.beginning()) for e in batch}
    finally:
        await conn.close()
    assert seen == {partition_for(b"", 12, "murmur2")}
    assert partition_for(b"", 12, "crc32") is None
    assert plan_key_search(b"", 12).partitions == tuple(range(12))
