"""``workbench tail --follow -o jsonl`` (a real subprocess) while its broker is stopped and started.

The tail must say on stderr that the broker is unreachable and that it resumed, keep running, and
print exactly the events that were published - before the outage, by a publish attempted during
it (which fails: nothing of it may appear), and after it - with no gap and no duplicate, checked
by the sequence numbers in the values and by contiguous offsets.

One restart per broker (they are slow, and other tests share the brokers). RabbitMQ history is a
stream queue.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.brokers import endpoints
from tests.integration import rabbitmq_support
from tests.integration.faults_support import (
    KAFKA_URL,
    RABBIT_URL,
    Workbench,
    brokers,
    check_exactly,
    require_kafka,
    run_workbench,
    seq_value,
)
from workbench.broker import NotFound, OutgoingEvent
from workbench_kafka import KafkaAdapter
from workbench_rabbitmq import RabbitMQAdapter

PER_PHASE = 300  # events per phase (before / after), over all partitions
OUTAGE_SAID_S = 60  # the tail reports the outage within this long after the broker stopped
RESUMED_S = 120  # ... and that it resumed, after the broker answers again


def phase(name: str, partitions: int) -> tuple[list[OutgoingEvent], dict[int, list[str]]]:
    """Events with sequence numbers, spread over the partitions; and the values per partition."""
    events, expected = [], {p: [] for p in range(partitions)}
    for n in range(PER_PHASE):
        p = n % partitions
        value = seq_value(name, n)
        events.append(OutgoingEvent(value.encode(), partition=p if partitions > 1 else None))
        expected[p].append(value)
    return events, expected


def attempt_during_outage(url: str, topic: str) -> None:
    """A publish tried while the broker is down fails as Unreachable, having published nothing."""
    lines = "\n".join(seq_value("outage", n) for n in range(20)) + "\n"
    code, out, err, _ = run_workbench("-b", url, "publish", topic, "--file", "-", timeout=90, input_text=lines)
    assert code == 4, f"publish during the outage: exit {code}\n{out}\n{err}"


def run_outage(tail: Workbench, broker: str, url: str, topic: str, before: int) -> None:
    tail.wait_lines(before, timeout=60)
    brokers("down", broker)
    try:
        said = tail.wait_stderr("broker unreachable, retrying", OUTAGE_SAID_S)
        attempt_during_outage(url, topic)
    finally:
        brokers("up", broker)
    tail.wait_stderr("resumed", RESUMED_S, after=said)
    assert tail.proc.poll() is None, "the tail ended"


@pytest.mark.kafka
async def test_kafka_tail_follow_survives_a_restart():
    require_kafka()
    topic = f"it-faults-tail-{uuid.uuid4().hex[:8]}"
    partitions = 2
    conn = await KafkaAdapter({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "timeout_s": 10}).connect()
    try:
        await conn.create_topic(topic, partitions)
        events, expected = phase("before", partitions)
        assert all(r.ok for r in await conn.publish(topic, events))
    finally:
        await conn.close()

    url = f"{KAFKA_URL}?timeout_s=5"
    tail = Workbench("-b", url, "tail", topic, "--from", "beginning", "--follow", "-o", "jsonl")
    try:
        await asyncio.to_thread(run_outage, tail, "kafka", url, topic, PER_PHASE)
        # A new connection after the restart publishes the rest.
        conn = await KafkaAdapter({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "timeout_s": 30}).connect()
        try:
            after, more = phase("after", partitions)
            results = await conn.publish(topic, after)
            assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
            for p, values in more.items():
                expected[p] += values
            await asyncio.to_thread(tail.wait_lines, 2 * PER_PHASE, 90)
            # The end of the story: one more event per partition, so that nothing printed after
            # the expected ones (a late duplicate) can go unseen.
            closing = [OutgoingEvent(seq_value("last", p).encode(), partition=p) for p in range(partitions)]
            assert all(r.ok for r in await conn.publish(topic, closing))
            for p in range(partitions):
                expected[p].append(seq_value("last", p))
            await asyncio.to_thread(tail.wait_lines, 2 * PER_PHASE + partitions, 60)
        finally:
            try:
                await conn.delete_topic(topic)
            finally:
                await conn.close()
        assert tail.interrupt() == 130
    finally:
        tail.close()
    checked = check_exactly(tail.records(), expected)
    assert tail.stderr_text().count("broker unreachable") == 1, tail.stderr_text()
    print(f"\nKafka restart under tail --follow: {checked} events checked, 0 lost, 0 duplicated")


async def stream_back(conn, stream: str) -> bool:
    try:
        await conn.describe_topic(stream)
    except NotFound:
        return False
    return True


@pytest.mark.rabbitmq
async def test_rabbitmq_stream_tail_follow_survives_a_restart():
    rabbitmq_support.require_rabbitmq()
    stream = rabbitmq_support.unique("it-faults-tail")
    options = rabbitmq_support.options()
    conn = await RabbitMQAdapter(options).connect()
    try:
        await conn.create_topic(stream)
        events, expected = phase("before", 1)
        assert all(r.ok for r in await conn.publish(stream, events))
    finally:
        await conn.close()

    url = f"{RABBIT_URL}?timeout_s=5"
    tail = Workbench("-b", url, "tail", stream, "--from", "beginning", "--follow", "-o", "jsonl")
    try:
        await asyncio.to_thread(run_outage, tail, "rabbitmq", url, stream, PER_PHASE)
        conn = await RabbitMQAdapter({**options, "timeout_s": 30}).connect()
        try:
            # A restarted broker recovers its streams a moment after it accepts connections.
            await rabbitmq_support.eventually(lambda: stream_back(conn, stream), "the stream after the restart", 60)
            after, more = phase("after", 1)
            results = await conn.publish(stream, after)
            assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
            expected[0] += more[0] + [seq_value("last", 0)]
            assert all(r.ok for r in await conn.publish(stream, [OutgoingEvent(seq_value("last", 0).encode())]))
            await asyncio.to_thread(tail.wait_lines, 2 * PER_PHASE + 1, 90)
        finally:
            try:
                await conn.delete_topic(stream)
            finally:
                await conn.close()
        assert tail.interrupt() == 130
    finally:
        tail.close()
    checked = check_exactly(tail.records(), expected)
    assert tail.stderr_text().count("broker unreachable") == 1, tail.stderr_text()
    print(f"\nRabbitMQ restart under tail --follow (stream): {checked} events checked, 0 lost, 0 duplicated")
