"""A long-lived Kafka connection (the TUI's) when the node its admin client names controller dies.

librdkafka sends DescribeTopics and DescribeConfigs to the node its last metadata answer named
controller (in KRaft, any live node, chosen anew by each answer) and, when that node dies, waits for
it until the request times out, again and again: it does not ask for metadata again by itself. So a
connection opened before the node died used to fail every describe and the start of every tail for
good (Unreachable, then Timeout after ``timeout_s``), while the two other nodes served everything.

Here a connection describes and reads a replicated topic; then the node it would ask next is
SIGKILLed (a node that leads no partition of the topic, so that what is measured is the connection's
own recovery, not the cluster's failover of a leader); then, on the same connection, the topic is
described and read from the beginning twice: each must answer correctly (the same partitions, ends
and events as before the kill). How long each took is printed, not asserted: the first answer loses
one short try on the dead node (``CONTROLLER_TRY_S``), the next ones avoid it. The node is always
started again, whatever happens (the cluster is shared).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.brokers import cluster
from tests.integration.faults_support import seq_value
from workbench.broker import OutgoingEvent, Position, TopicInfo
from workbench_kafka import KafkaAdapter

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

VICTIM = 3  # not node 1: the SASL tests' MISMATCH listener is on it
REPLICAS = ((1, 2, VICTIM), (2, 1, VICTIM), (1, 2, VICTIM))  # VICTIM leads no partition
EVENTS = 30
TIMEOUT_S = 10  # the connection's timeout_s, the adapter's default


@pytest.fixture(scope="module", autouse=True)
def running_cluster() -> Iterator[None]:
    """The cluster, all three nodes answering (stopped after only if this module started it)."""
    with cluster.running():
        cluster.wait_up()
        yield


@pytest.fixture
def topic() -> Iterator[str]:
    name = f"ew-stale-controller-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, REPLICAS, {"min.insync.replicas": "2"})
    try:
        yield name
    finally:
        cluster.delete_topic(name)


def named_controller(conn: Any) -> int:
    """Ask metadata through the connection's admin client until it names VICTIM: librdkafka sends the
    connection's next DescribeTopics and DescribeConfigs there."""
    admin = conn._admin
    return cluster.wait_for(
        lambda: admin.list_topics(timeout=5).controller_id == VICTIM and VICTIM, f"node {VICTIM} named controller", 30
    )


async def read_all(conn: Any, topic: str) -> list[bytes]:
    """The values of every event of the topic, read from the beginning to its end."""
    values: list[bytes] = []
    async for batch in conn.read(topic, Position.beginning()):
        values += [event.value or b"" for event in batch]
    return values


def ends(info: TopicInfo) -> dict[int, int]:
    return {p.partition: p.end for p in info.partitions}


async def test_describe_and_tail_answer_when_the_named_controller_dies(topic: str) -> None:
    conn = await KafkaAdapter({"bootstrap.servers": cluster.PLAINTEXT_BOOTSTRAP, "timeout_s": TIMEOUT_S}).connect()
    timings: list[tuple[str, float]] = []
    try:
        events = [OutgoingEvent(seq_value("before", n).encode(), partition=n % 3) for n in range(EVENTS)]
        assert all(r.ok for r in await conn.publish(topic, events))
        before = await conn.describe_topic(topic)
        assert ends(before) == {0: EVENTS // 3, 1: EVENTS // 3, 2: EVENTS // 3}
        expected = sorted(seq_value("before", n).encode() for n in range(EVENTS))
        assert sorted(await read_all(conn, topic)) == expected

        named_controller(conn)
        with cluster.node_down(VICTIM):
            for round_ in (1, 2):
                started = time.monotonic()
                after = await conn.describe_topic(topic)
                timings.append((f"describe {round_}", time.monotonic() - started))
                assert ends(after) == ends(before)
                assert [p.leader for p in after.partitions] == [r[0] for r in REPLICAS]
                assert after.config == before.config

                started = time.monotonic()
                read = await read_all(conn, topic)
                timings.append((f"tail {round_}", time.monotonic() - started))
                assert sorted(read) == expected
    finally:
        await conn.close()
    print(
        f"\nnode {VICTIM} (named controller) SIGKILLed, same connection: "
        + ", ".join(f"{what} {seconds:.2f} s" for what, seconds in timings)
        + f" (timeout_s {TIMEOUT_S})"
    )
