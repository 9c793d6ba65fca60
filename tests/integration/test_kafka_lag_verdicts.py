"""Lag verdicts (workbench/lag.py) end to end against the real Kafka broker and a real consumer.

A background thread produces 20 events every 0.2 s to a 2-partition topic (bounded count). A real
confluent-kafka consumer in the group consumes and commits; ``LagTracker`` (window 4) is fed from
``conn.lag()`` every 0.5 s:

1. while the consumer consumes, the group's verdict is OK;
2. the consumer is closed (it leaves: the group is Empty) while production goes on: within a bounded
   number of refreshes the verdict is STOP (STALL is allowed on the way, while members are still
   listed), and the estimated time lag is known and grows;
3. a consumer is started again in the group: the verdict is back to OK and the lag has shrunk.

Every wait is bounded by a number of refreshes; the whole test takes about 10-20 s.
Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``); without it this fails.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from tests.brokers import endpoints
from workbench.broker import NotFound
from workbench.lag import Assessment, LagTracker, Verdict
from workbench_kafka import KafkaAdapter

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
PARTITIONS = 2
REFRESH_S = 0.5
WINDOW = 4


class Production(threading.Thread):
    """20 events every 0.2 s, alternating partitions, at most ``rounds`` times or until stopped."""

    def __init__(self, topic: str, rounds: int = 300) -> None:
        super().__init__(daemon=True, name="lag-verdicts-producer")
        self.topic, self.rounds = topic, rounds
        self.stop = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
            for _ in range(self.rounds):
                if self.stop.is_set():
                    break
                for i in range(20):
                    producer.produce(self.topic, b'{"n": %d}' % self.sent, partition=i % PARTITIONS)
                    self.sent += 1
                producer.poll(0)
                self.stop.wait(0.2)
            producer.flush(10)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class GroupConsumer(threading.Thread):
    """A real group member: subscribe, consume, commit synchronously after each batch; close on stop."""

    def __init__(self, topic: str, group: str) -> None:
        super().__init__(daemon=True, name="lag-verdicts-consumer")
        self.topic, self.group = topic, group
        self.stop = threading.Event()
        self.consumed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = Consumer(
                {
                    "bootstrap.servers": BOOTSTRAP,
                    "group.id": self.group,
                    "client.id": "it-lag-verdicts",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
            try:
                consumer.subscribe([self.topic])
                while not self.stop.is_set():
                    msgs = consumer.consume(500, 0.1)
                    good = [m for m in msgs if m.error() is None]
                    if good:
                        self.consumed += len(good)
                        consumer.commit(asynchronous=False)
            finally:
                consumer.close()  # leaves the group: it becomes Empty
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.join(15)
        assert not self.is_alive(), "the consumer did not close within 15 s"
        assert self.error is None, self.error


@pytest.fixture
async def conn():
    endpoints.require_kafka()  # raises: a missing broker fails the test
    connection = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        yield connection
    finally:
        await connection.close()


async def test_verdicts_follow_a_consumer_stopped_and_restarted(conn):
    tag = uuid.uuid4().hex[:8]
    topic, group = f"it-lag-verdicts-{tag}", f"it-lag-verdicts-{tag}"
    await conn.create_topic(topic, PARTITIONS)
    production = Production(topic)
    consumers: list[GroupConsumer] = []
    tracker = LagTracker(window=WINDOW)
    history: list[tuple[str, str, Assessment]] = []  # (phase, state, assessment), shown on failure

    async def refresh(phase: str) -> Assessment | None:
        """One lag refresh fed to the tracker, then wait out the rest of the refresh interval."""
        started = time.monotonic()
        try:
            lags = await conn.lag([group])
        except NotFound:  # the group is not there until the consumer has joined
            lags = []
        assessment = None
        if lags and lags[0].partitions:
            tracker.observe(lags)
            assessment = tracker.assess_group(group)
            history.append((phase, lags[0].state, assessment))
        await asyncio.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))
        return assessment

    def shown() -> str:
        return "\n".join(
            f"  {p:8} {s:12} {a.label:7} lag={a.lag} time_lag_ms={a.time_lag_ms} ({a.rule})" for p, s, a in history
        )

    def check_threads() -> None:
        assert production.error is None, production.error
        for c in consumers:
            assert c.error is None, c.error

    try:
        production.start()
        consumers.append(GroupConsumer(topic, group))
        consumers[-1].start()

        # 1. consuming: OK on 3 refreshes in a row, within 30 refreshes (joining the group included)
        in_a_row = 0
        for _ in range(30):
            check_threads()
            a = await refresh("consume")
            in_a_row = in_a_row + 1 if a is not None and a.verdict == Verdict.OK and consumers[-1].consumed else 0
            if in_a_row == 3:
                break
        assert in_a_row == 3, f"no steady OK while consuming:\n{shown()}"

        # 2. stopped while production goes on: STOP within 16 refreshes, STALL allowed on the way
        consumers[-1].close()
        lag_at_stop = None
        stopped: list[Assessment] = []
        for _ in range(16):
            check_threads()
            a = await refresh("stopped")
            assert a is not None
            assert a.verdict in (Verdict.OK, Verdict.WARN, Verdict.STALL, Verdict.STOP), f"{a}\n{shown()}"
            stopped.append(a)
            if a.verdict == Verdict.STOP:
                break
        assert stopped[-1].verdict == Verdict.STOP, f"no STOP after the consumer left:\n{shown()}"
        assert "no live member" in stopped[-1].rule
        assert history[-1][1].lower() == "empty", history[-1]
        # a few more refreshes stopped: the estimated time lag is known and grows
        for _ in range(3):
            a = await refresh("stopped")
            assert a is not None and a.verdict == Verdict.STOP, f"{a}\n{shown()}"
            stopped.append(a)
        lag_at_stop = stopped[-1].lag
        assert lag_at_stop and lag_at_stop > 0
        time_lags = [a.time_lag_ms for a in stopped if a.verdict == Verdict.STOP]
        assert all(t is not None for t in time_lags), f"time lag unknown while stopped:\n{shown()}"
        assert time_lags[-1] > time_lags[0] > 0, f"time lag does not grow while stopped:\n{shown()}"
        assert stopped[-1].lag > stopped[0].lag  # production went on

        # 3. a consumer again: back to OK within 30 refreshes, with the lag shrunk
        consumers.append(GroupConsumer(topic, group))
        consumers[-1].start()
        recovered = None
        for _ in range(30):
            check_threads()
            a = await refresh("restart")
            if a is not None and a.verdict == Verdict.OK and consumers[-1].consumed:
                recovered = a
                break
        assert recovered is not None, f"not back to OK after a consumer restarted:\n{shown()}"
        assert recovered.lag < lag_at_stop, f"lag did not shrink:\n{shown()}"
        assert recovered.time_lag_ms is not None and recovered.time_lag_ms < time_lags[-1]
        check_threads()
        print(f"\nlag verdicts over {len(history)} refreshes:\n{shown()}")  # shown with -s
    finally:
        production.stop.set()
        for c in consumers:
            c.stop.set()
        production.join(15)
        for c in consumers:
            c.join(15)
        try:
            await conn.delete_topic(topic)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})  # kept referenced until the answer
        try:
            admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
        except Exception:  # noqa: BLE001 - best-effort cleanup (a member may still be leaving)
            pass
