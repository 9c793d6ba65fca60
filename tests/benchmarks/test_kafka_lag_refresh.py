"""One `lag` refresh for 200 groups x 500 partitions through the Kafka adapter (issue 3, "Benchmarks").

Setup, bounded: ONE topic with 500 partitions (a single-node, 2-core broker is the test bed, so not
500 topics), a few events in every partition, and committed offsets for 200 groups written with
``AdminClient.alter_consumer_group_offsets`` (one request per group, all in flight at once).

Measured: ``conn.lag()`` for all 200 groups, median of 3 refreshes, and the admin requests each
refresh makes, counted by wrapping the connection's AdminClient. The issue's target is one refresh
under 2 s; that is reported, not asserted (seconds depend on the machine). Asserted is the
structure: end offsets come from at most 2 batched ``list_offsets`` calls per refresh (earliest and
latest) whatever the number of partitions, committed offsets from one request per group, and the
figures are complete (200 groups x 500 partitions, the committed offsets that were written).

Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``); without it this fails.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.benchmarks.conftest import report
from tests.brokers import endpoints
from workbench_kafka import KafkaAdapter

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
GROUPS = 200
PARTITIONS = 500
EVENTS_PER_PARTITION = 4
COUNTED = ("list_consumer_groups", "describe_consumer_groups", "list_consumer_group_offsets", "list_offsets")


class CountingAdmin:
    """Forwards everything to the real AdminClient; counts calls (and partitions per list_offsets)."""

    def __init__(self, real: AdminClient) -> None:
        self._real = real
        self.calls: Counter[str] = Counter()
        self.list_offsets_sizes: list[int] = []

    def __getattr__(self, name: str):
        attr = getattr(self._real, name)
        if name not in COUNTED:
            return attr

        def counted(*args, **kwargs):
            self.calls[name] += 1
            if name == "list_offsets":
                self.list_offsets_sizes.append(len(args[0]))
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def admin():
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(f"Kafka does not answer on {BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`", pytrace=False)
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


@pytest.fixture
def populated(admin):
    """(topic, groups, committed offset per partition); everything is deleted afterwards."""
    started = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    topic = f"bench-lag-{tag}"
    groups = [f"bench-lag-{tag}-g{i:03d}" for i in range(GROUPS)]
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=60)[topic].result(90)
    try:
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20})
        deadline = time.monotonic() + 60
        while True:  # the new partitions' leaders may take a moment to be known
            md = producer.list_topics(topic, timeout=10).topics[topic]
            if len(md.partitions) == PARTITIONS and all(p.leader >= 0 for p in md.partitions.values()):
                break
            assert time.monotonic() < deadline, "the 500-partition topic has no leaders after 60 s"
            time.sleep(0.2)
        for p in range(PARTITIONS):
            for i in range(EVENTS_PER_PARTITION):
                producer.produce(topic, b"x" * 100, f"k{i}".encode(), partition=p)
        assert producer.flush(60) == 0
        committed = {p: p % (EVENTS_PER_PARTITION + 1) for p in range(PARTITIONS)}  # 0..4: lag 4..0
        futures = []
        for g in groups:
            request = ConsumerGroupTopicPartitions(g, [TopicPartition(topic, p, o) for p, o in committed.items()])
            futures.append(admin.alter_consumer_group_offsets([request], request_timeout=60)[g])
        for f in futures:
            f.result(90)
        setup_s = time.perf_counter() - started
        yield topic, groups, committed, setup_s
    finally:
        for f in admin.delete_consumer_groups(groups, request_timeout=60).values():
            try:
                f.result(60)
            except Exception:  # noqa: BLE001 - best-effort cleanup (groups that were never made)
                pass
        try:
            admin.delete_topics([topic], operation_timeout=60)[topic].result(90)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass


async def test_lag_refresh_200_groups_x_500_partitions(populated):
    topic, groups, committed, setup_s = populated
    conn = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        counting = CountingAdmin(conn._admin)
        conn._admin = counting  # the adapter's only handle on the AdminClient
        await conn.lag(groups)  # warm-up: metadata, connections
        timings, per_refresh = [], []
        for _ in range(3):
            counting.calls.clear()
            counting.list_offsets_sizes.clear()
            started = time.perf_counter()
            result = await conn.lag(groups)
            timings.append(time.perf_counter() - started)
            per_refresh.append((dict(counting.calls), list(counting.list_offsets_sizes)))
    finally:
        await conn.close()

    assert sorted(g.group_id for g in result) == sorted(groups)
    for g in result:
        assert len(g.partitions) == PARTITIONS
        assert {p.partition: p.committed for p in g.partitions if p.topic == topic} == committed
        assert all(p.end == EVENTS_PER_PARTITION for p in g.partitions)

    calls, sizes = per_refresh[-1]
    report(
        "kafka-lag-refresh-200x500",
        refresh_s_median=statistics.median(timings),
        refresh_s_max=max(timings),
        groups=GROUPS,
        partitions_per_group=PARTITIONS,
        setup_s=setup_s,
        list_offsets_calls=calls.get("list_offsets", 0),
        list_offsets_partitions=sizes,
        list_consumer_group_offsets_calls=calls.get("list_consumer_group_offsets", 0),
        describe_consumer_groups_calls=calls.get("describe_consumer_groups", 0),
        list_consumer_groups_calls=calls.get("list_consumer_groups", 0),
    )
    for calls, sizes in per_refresh:
        assert calls.get("list_offsets", 0) <= 2, calls  # batched: earliest + latest, never per partition
        assert all(n == PARTITIONS for n in sizes), sizes  # every partition in each batched call
        assert calls.get("list_consumer_group_offsets", 0) == GROUPS, calls  # one request per group
        assert calls.get("describe_consumer_groups", 0) <= 1, calls
        assert calls.get("list_consumer_groups", 0) <= 1, calls
