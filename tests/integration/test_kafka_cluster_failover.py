"""Leader failover on the three-node cluster: a partition's leader is SIGKILLed while the workbench
tails and while it publishes (issue 17).

* ``tail --follow -o jsonl`` (a real subprocess) while a producer writes sequence-numbered events:
  the leader of partition 0 is killed mid-stream. The tail goes on, and prints every confirmed event
  exactly once, in offset order (no gap, no duplicate). The node is started again, rejoins the ISR,
  leads partition 0 again after a preferred-leader election, and the tail prints what is written to it.
* ``publish --file`` of 100,000 events (acks=all, the workbench's idempotent producer), the leader of
  partition 0 killed during it: every event is confirmed (exit 0), and reading the topic back from the
  two surviving brokers (a plain confluent_kafka consumer, before the node is back) finds each sequence
  number exactly once. The same publish without a failover is the baseline of its wall time.

Topics have replication factor 3 and min.insync.replicas 2, with explicit replica lists: the node
killed is always VICTIM, the preferred leader of partition 0. Not node 1: it alone carries the
MISMATCH listener the SASL tests use beside these. Every killed node is started again (and waited for)
whatever happens: the cluster is shared. The test talks to the cluster's PLAINTEXT listener.

What the pause is made of: writes with acks=all stall on every partition until the controller
fences the dead node (``broker.session.timeout.ms``, 9 s) and takes it out of the ISRs; partition 0
gets a new leader at the same moment. The tail cannot print what is not written, so the figure that
is the workbench's own is how long after its confirmation the first event written after the kill is
printed (``caught up``), asserted below.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.brokers import cluster
from tests.integration.faults_support import REPO, Workbench, check_exactly, seq_value
from workbench.broker import NotFound, OutgoingEvent, Position
from workbench_kafka import KafkaAdapter

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

VICTIM = 3  # the node killed: preferred leader of partition 0
REPLICAS = ((VICTIM, 1, 2), (1, 2, VICTIM), (2, VICTIM, 1))
URL = f"kafka://{cluster.PLAINTEXT_BOOTSTRAP}?timeout_s=5"
SURVIVORS = ",".join(f"{cluster.HOST}:{cluster.PLAINTEXT_PORTS[n]}" for n in cluster.NODE_IDS if n != VICTIM)
QUIET = cluster.QUIET  # librdkafka's log lines (a dead node refusing connections) go nowhere

RATE = 600  # events/s the tail test's producer writes, over the three partitions
BEFORE_KILL = 1200  # events the tail prints before the leader is killed
CAUGHT_UP_S = 5.0  # the tail prints an event this soon after the broker confirmed it, failover or not
N = 100_000  # events of the publish test
KILL_AFTER = 20_000  # ... of which this many are written when the leader is killed


@pytest.fixture(scope="module", autouse=True)
def running_cluster() -> None:
    """The cluster, all three nodes answering (never stopped here: other tests share it)."""
    cluster.up()


@pytest.fixture
def topic() -> Iterator[str]:
    name = f"ew-failover-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, REPLICAS, {"min.insync.replicas": "2"})
    try:
        yield name
    finally:
        cluster.delete_topic(name)


class TimedWorkbench(Workbench):
    """A workbench process whose stdout lines are stamped with when they arrived (time.monotonic())."""

    def __init__(self, *args: str) -> None:
        self.arrived: list[float] = []
        super().__init__(*args)

    def _pump_out(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.arrived.append(time.monotonic())
            self.out.append(line)


class SequenceProducer:
    """Writes ``seq_value(phase, n)`` to partition ``n % 3`` at RATE events/s from a thread, idempotent
    and with acks=all; keeps what the cluster confirmed (partition, offset, value, when)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": cluster.PLAINTEXT_BOOTSTRAP,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "logger": QUIET,
            }
        )
        self.confirmed: list[tuple[int, int, str, float]] = []
        self.failed: list[KafkaError] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self.failed.append(err)
        else:
            self.confirmed.append((msg.partition(), msg.offset(), msg.value().decode(), time.monotonic()))

    def send(self, phase: str, count: int) -> None:
        for n in range(count):
            self.producer.produce(
                self.topic, seq_value(phase, n).encode(), partition=n % 3, on_delivery=self._delivered
            )
        self.sent += count
        assert self.producer.flush(60) == 0, "events left unconfirmed after 60 s"

    def start(self, phase: str) -> None:
        def run() -> None:
            started, n = time.monotonic(), 0
            while not self._stop.is_set():
                self.producer.produce(
                    self.topic, seq_value(phase, n).encode(), partition=n % 3, on_delivery=self._delivered
                )
                n += 1
                self.sent += 1
                self.producer.poll(0)
                ahead = started + n / RATE - time.monotonic()
                if ahead > 0:
                    self._stop.wait(ahead)
            self.producer.flush(60)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(90)
        assert not self._thread.is_alive(), "the producer did not finish"

    def expected(self) -> dict[int, list[str]]:
        """The confirmed values per partition, in offset order: what the tail must print, exactly."""
        per: dict[int, list[tuple[int, str]]] = {p: [] for p in range(len(REPLICAS))}
        for partition, offset, value, _ in self.confirmed:
            per[partition].append((offset, value))
        return {p: [v for _, v in sorted(items)] for p, items in per.items()}


def longest_silence(arrived: list[float], since: float) -> float:
    """The longest time without a line on stdout, from ``since`` to the last line."""
    times = [since] + [t for t in arrived if t > since]
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def test_tail_follow_goes_on_when_the_leader_is_killed(topic: str) -> None:
    tail = TimedWorkbench("-b", URL, "tail", topic, "--from", "beginning", "--follow", "-o", "jsonl")
    producer = SequenceProducer(topic)
    try:
        producer.start("failover")
        tail.wait_lines(BEFORE_KILL, timeout=60)
        assert cluster.leader_of(topic, 0) == VICTIM
        with cluster.node_down(VICTIM):
            killed = time.monotonic()
            new_leader = cluster.wait_for(
                lambda: cluster.leader_of(topic, 0) not in (-1, VICTIM) and cluster.leader_of(topic, 0),
                "a new leader of partition 0",
                60,
            )
            # An event written to partition 0 after the kill, and confirmed: the tail must print it.
            cluster.wait_for(
                lambda: any(c[0] == 0 and c[3] > killed for c in producer.confirmed),
                "an event confirmed on partition 0 after the kill",
                60,
            )
            printed = len(producer.confirmed)
            tail.wait_lines(printed, timeout=30)
            producer.stop()
            assert not producer.failed, producer.failed[:3]
            tail.wait_lines(len(producer.confirmed), timeout=30)
            assert tail.proc.poll() is None, "the tail ended"
        restarted = time.monotonic()
        # The node is back: it catches up, leads partition 0 again, and the tail reads from it.
        cluster.wait_in_sync(topic, VICTIM)
        in_sync_s = time.monotonic() - restarted
        cluster.elect_preferred_leaders(topic, [0])
        assert cluster.leader_of(topic, 0) == VICTIM
        producer.send("after", 300)
        assert not producer.failed, producer.failed[:3]
        tail.wait_lines(len(producer.confirmed), timeout=30)
        assert tail.interrupt() == 130
    finally:
        tail.close()

    assert "unreachable" not in tail.stderr_text(), tail.stderr_text()  # one node of three is no outage
    checked = check_exactly(tail.records(), producer.expected())
    assert checked == producer.sent
    # The first event confirmed on partition 0 after the kill and printed after it, and how long after
    # its confirmation it was printed (an event in flight at the kill may be printed before its ack:
    # the producer learns it was written when it sends it again to the new leader).
    arrived = {r["value"]: t for r, t in zip(tail.records(), tail.arrived, strict=True)}
    first_after = min(
        (c for c in producer.confirmed if c[0] == 0 and c[3] > killed and arrived[c[2]] > killed), key=lambda c: c[3]
    )
    caught_up = max(0.0, arrived[first_after[2]] - first_after[3])
    paused = longest_silence(tail.arrived, killed - 0.5)
    assert caught_up < CAUGHT_UP_S, f"the tail printed the first event after the failover {caught_up:.1f} s late"
    print(
        f"\ntail --follow, leader of partition 0 (node {VICTIM}) SIGKILLed, node {new_leader} took over: "
        f"{checked} events checked, 0 lost, 0 duplicated; the tail printed nothing for {paused:.1f} s, "
        f"the first event confirmed after the kill ({first_after[3] - killed:.1f} s after it) printed "
        f"{caught_up:.2f} s after its confirmation; node back in the ISR {in_sync_s:.1f} s after it answered, "
        f"leader again after a preferred-leader election, 300 more events read"
    )


def write_input(path: Path, phase: str) -> None:
    """N envelope lines of ~120 bytes: keys spread the events over every partition."""
    pad = "x" * 50
    with open(path, "w") as f:
        for n in range(N):
            value = json.dumps({"phase": phase, "seq": n, "pad": pad}, separators=(",", ":"))
            f.write(json.dumps({"key": f"k{n % 97}", "value": value}) + "\n")


def publish(topic: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "-b", URL, "publish", topic, "--file", str(path), "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )


def finish(proc: subprocess.Popen[str], started: float) -> tuple[dict[str, Any], float]:
    """The publish's -o json report and its wall time; it must have confirmed all N events."""
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("publish still running after 90 s") from None
    wall = time.monotonic() - started
    try:
        report = json.loads(out)
    except ValueError:
        report = {"output": out[-2000:]}
    summary = {k: v for k, v in report.items() if k != "events"}
    assert proc.returncode == 0, f"publish exit {proc.returncode}\n{summary}\n{err[-3000:]}"
    assert (report["confirmed"], report["failed"], report["not_sent"]) == (N, 0, 0), report
    assert len(report["events"]) == N
    return report, wall


def written(topic: str) -> int:
    """Events on the topic (sum of the high watermarks), asked of any node that answers."""
    consumer = Consumer({"bootstrap.servers": cluster.PLAINTEXT_BOOTSTRAP, "group.id": "unused", "logger": QUIET})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(3))
    finally:
        consumer.close()


def count_sequences(topic: str, bootstrap: str) -> dict[str, collections.Counter[int]]:
    """How often each sequence number of each phase is on the topic, read from ``bootstrap``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ew-failover-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "logger": QUIET,
        }
    )
    counts: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < 3:
            assert time.monotonic() < deadline, f"reading {topic!r} back did not end within 60 s"
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                    continue
                at_end.discard(msg.partition())
                value = json.loads(msg.value())
                counts[value["phase"]][value["seq"]] += 1
    finally:
        consumer.close()
    return counts


def test_publish_confirms_every_event_when_the_leader_is_killed(topic: str, tmp_path: Path) -> None:
    calm, failover = tmp_path / "calm.jsonl", tmp_path / "failover.jsonl"
    write_input(calm, "calm")
    write_input(failover, "failover")

    started = time.monotonic()
    _, calm_wall = finish(publish(topic, calm), started)

    base = written(topic)
    started = time.monotonic()
    proc = publish(topic, failover)
    try:
        killed_at = cluster.wait_for(
            lambda: (n := written(topic) - base) >= KILL_AFTER and n, f"{KILL_AFTER} events written", 60
        )
        assert cluster.leader_of(topic, 0) == VICTIM
        with cluster.node_down(VICTIM):
            report, failover_wall = finish(proc, started)
            # Counted on the two brokers that survived, before the killed one is back.
            counts = count_sequences(topic, SURVIVORS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    cluster.wait_in_sync(topic, VICTIM)

    for phase in ("calm", "failover"):
        seen = counts[phase]
        lost = [n for n in range(N) if seen[n] == 0]
        duplicated = [n for n, times in seen.items() if times > 1]
        assert not lost and not duplicated, (
            f"{phase}: {len(lost)} lost (first {lost[:5]}), {len(duplicated)} duplicated (first {duplicated[:5]})"
        )
        assert set(seen) == set(range(N))
    print(
        f"\npublish of {N} events, leader of partition 0 (node {VICTIM}) SIGKILLed after ~{killed_at} were written: "
        f"exit 0, {report['confirmed']} confirmed, read back from the survivors: {2 * N} events checked, "
        f"0 lost, 0 duplicated; wall time {failover_wall:.1f} s with the failover, {calm_wall:.1f} s without"
    )


def asked_node(conn: Any) -> int:
    """The node a connection's admin client sends its next DescribeTopics to: the one its last metadata
    answer named controller (in KRaft, any node). Not node 1: the SASL tests' MISMATCH listener is on it."""
    admin = conn._admin
    return cluster.wait_for(
        lambda: (n := admin.list_topics(timeout=5).controller_id) != 1 and n, "a named controller other than 1", 30
    )


async def test_the_node_asked_for_metadata_killed(topic: str, monkeypatch) -> None:
    """librdkafka sends DescribeTopics to the node last named controller and, when that node dies,
    waits for it until the request times out, while the two others serve reads and writes. Both
    verbs used to ask that way: a publish failed its batch (5,000 events) with Timeout and stopped,
    and a quiet follow read, looking whether its topic still exists, said "broker unreachable" and
    held the read up meanwhile. Now neither notices the node is gone, beyond the failover itself."""
    import workbench_kafka.authorization
    import workbench_kafka.connection
    import workbench_kafka.publisher

    # Every publish looks again: at the partition count, and at what the user may do with the topic.
    monkeypatch.setattr(workbench_kafka.publisher, "METADATA_TTL_S", 0.0)
    monkeypatch.setattr(workbench_kafka.authorization, "OPERATIONS_TTL_S", 0.0)
    monkeypatch.setattr(workbench_kafka.connection, "IDLE_CHECK_S", 0.5)  # the read looks often
    conn = await KafkaAdapter({"bootstrap.servers": cluster.PLAINTEXT_BOOTSTRAP, "timeout_s": 5}).connect()
    outages: list[Any] = []
    first = await conn.publish(topic, [OutgoingEvent(seq_value("before", n).encode()) for n in range(100)])
    assert all(r.ok for r in first)
    read = conn.read(topic, Position.end(), follow=True, on_outage=outages.append)
    waiting = asyncio.ensure_future(anext(read))
    try:
        await asyncio.sleep(1.0)  # nothing to read: the read looks, and looks again
        asked = asked_node(conn)
        with cluster.node_down(asked):
            await asyncio.sleep(3.0)  # looks while the node is down and not yet fenced (9 s)
            assert not waiting.done() and not outages, outages
            started = time.monotonic()
            events = [OutgoingEvent(seq_value("during", n).encode(), partition=n % 3) for n in range(99)]
            results = await conn.publish(topic, events)
            took = time.monotonic() - started
            failed = [r.error for r in results if not r.ok]
            assert not failed, f"{len(failed)} of 99 failed: {failed[:2]}"
            read_back: list[bytes] = []
            while len(read_back) < 99:
                read_back += [e.value for e in await asyncio.wait_for(waiting, 30)]
                waiting = asyncio.ensure_future(anext(read))
            assert sorted(read_back) == sorted(e.value for e in events)
            assert not outages, outages
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await waiting
        await read.aclose()
        await conn.close()
    cluster.wait_in_sync(topic, asked)
    print(
        f"\nnode {asked} (named controller) SIGKILLed: a quiet follow read reported no outage; "
        f"publish: 99 of 99 confirmed in {took:.1f} s and read"
    )


async def test_a_topic_deleted_while_followed_ends_the_read(monkeypatch) -> None:
    """The look that any node may answer still finds a deleted topic: the read ends with NotFound."""
    import workbench_kafka.connection

    monkeypatch.setattr(workbench_kafka.connection, "IDLE_CHECK_S", 0.5)
    name = f"ew-failover-deleted-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, REPLICAS, {"min.insync.replicas": "2"})
    conn = await KafkaAdapter({"bootstrap.servers": cluster.PLAINTEXT_BOOTSTRAP, "timeout_s": 5}).connect()
    try:
        read = conn.read(name, Position.end(), follow=True)
        waiting = asyncio.ensure_future(anext(read))
        await asyncio.sleep(1.0)
        cluster.delete_topic(name)
        with pytest.raises(NotFound, match="no longer exists"):
            await asyncio.wait_for(waiting, 30)
    finally:
        await conn.close()
        with contextlib.suppress(RuntimeError):  # deleted already, unless the test failed before
            cluster.delete_topic(name)
