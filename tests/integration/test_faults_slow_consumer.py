"""Slow consumers of a live stream: memory stays bounded; nothing is lost where the design holds
back (a blocked stdout), and drops are counted where it drops (the TUI's ring buffer, a
RabbitMQ tap's capped queue).

* ``tail --follow -o jsonl`` on Kafka into a pipe nobody reads, while a producer pushes ~100 MB:
  the workbench's RSS (``/proc/PID/status`` VmRSS) grows by far less than what was pushed, and
  once the pipe is read every event is there, in order.
* The pump behind the TUI (``workbench.pump``) over a real Kafka follow read: paused, it stops
  asking for more (nothing lost on resume); with a ring smaller than the burst, it keeps the
  newest events and counts every drop.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import json
import termios
import threading
import uuid

import pytest

from tests.brokers import endpoints
from tests.integration.faults_support import (
    KAFKA_URL,
    Workbench,
    require_kafka,
    rss_kb,
    seq_value,
    until,
)
from workbench.broker import OutgoingEvent, Position
from workbench.pump import Pump, RingBuffer
from workbench_kafka import KafkaAdapter

pytestmark = pytest.mark.kafka

PUSHED = 100_000
VALUE_BYTES = 1000  # ~100 MB pushed in all
RSS_GROWTH_LIMIT_MB = 64  # librdkafka's prefetch cap is 16 MB (queued.max.messages.kbytes)


def padded(n: int) -> bytes:
    text = seq_value("slow", n)
    return (text[:-1] + ',"pad":"' + "x" * (VALUE_BYTES - len(text) - 9) + '"}').encode()


def pipe_bytes(proc) -> int:
    """Bytes waiting unread in the child's stdout pipe."""
    buf = array.array("i", [0])
    fcntl.ioctl(proc.stdout.fileno(), termios.FIONREAD, buf)
    return buf[0]


class RssSampler:
    """Samples a process's VmRSS every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (FileNotFoundError, AssertionError):
                return
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


async def kafka_conn():
    require_kafka()
    return await KafkaAdapter({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "timeout_s": 10}).connect()


async def test_blocked_stdout_keeps_memory_bounded_and_loses_nothing():
    topic = f"it-faults-slow-{uuid.uuid4().hex[:8]}"
    conn = await kafka_conn()
    try:
        await conn.create_topic(topic, 1)
        # The first events fill the pipe (64 kB), so the workbench blocks writing before the push.
        first = 200
        assert all(r.ok for r in await conn.publish(topic, [OutgoingEvent(padded(n)) for n in range(first)]))
        tail = Workbench(
            "-b", KAFKA_URL, "tail", topic, "--from", "beginning", "--follow", "-o", "jsonl", read_stdout=False
        )
        try:
            await until(lambda: pipe_bytes(tail.proc) >= 60_000, "a full stdout pipe", 60)
            baseline = rss_kb(tail.pid)
            sampler = RssSampler(tail.pid)
            for start in range(first, PUSHED, 10_000):
                batch = [OutgoingEvent(padded(n)) for n in range(start, min(start + 10_000, PUSHED))]
                results = await conn.publish(topic, batch)
                assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
            # Give the blocked reader's prefetch time to fill up to its cap (librdkafka fetches
            # in the background): this is a measuring window, nothing waits on it.
            await asyncio.sleep(3)
            peak = sampler.stop()
            assert tail.proc.poll() is None, tail.stderr_text()
            growth_mb = (peak - baseline) / 1024
            print(
                f"\nblocked stdout: {PUSHED * VALUE_BYTES / 1e6:.0f} MB pushed, RSS {baseline / 1024:.0f} MB "
                f"-> peak {peak / 1024:.0f} MB (+{growth_mb:.1f} MB)"
            )
            assert growth_mb < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth_mb:.1f} MB while stdout was blocked"

            tail.start_reading()
            await asyncio.to_thread(tail.wait_lines, PUSHED, 120)
            assert tail.interrupt() == 130
        finally:
            tail.close()
    finally:
        try:
            await conn.delete_topic(topic)
        finally:
            await conn.close()
    records = tail.records()
    assert len(records) == PUSHED, f"{len(records)} printed"
    assert [json.loads(r["value"])["seq"] for r in records] == list(range(PUSHED))
    assert [r["offset"] for r in records] == list(range(PUSHED))


async def publish_seq(conn, topic: str, start: int, count: int) -> None:
    events = [OutgoingEvent(seq_value("pump", n).encode()) for n in range(start, start + count)]
    results = await conn.publish(topic, events)
    assert all(r.ok for r in results)


def seqs(events) -> list[int]:
    return [json.loads(e.value)["seq"] for e in events]


async def test_paused_pump_holds_back_and_loses_nothing():
    topic = f"it-faults-pump-{uuid.uuid4().hex[:8]}"
    conn = await kafka_conn()
    try:
        await conn.create_topic(topic, 1)
        ring = RingBuffer(50_000)
        pump = Pump(ring, conn, topic, Position.beginning(), follow=True).start()
        try:
            await publish_seq(conn, topic, 0, 1000)
            await until(lambda: ring.received == 1000, "the first events", 60)
            pump.pause()
            await publish_seq(conn, topic, 1000, 20_000)
            # Paused: the pump holds one batch and appends nothing.
            await until(lambda: pump.held > 0, "the pump to hold a batch", 30)
            assert ring.received == 1000 and ring.dropped == 0
            # Only the held batch was taken from the adapter (which fetches one more, no further).
            assert pump.scanned - 1000 == pump.held, f"read {pump.scanned - 1000} while paused, held {pump.held}"
            pump.resume()
            await until(lambda: ring.received == 21_000, "every event after resume", 60)
        finally:
            await pump.stop()
    finally:
        try:
            await conn.delete_topic(topic)
        finally:
            await conn.close()
    assert ring.dropped == 0
    assert seqs(ring) == list(range(21_000))


async def test_small_ring_counts_every_drop_and_keeps_the_newest():
    topic = f"it-faults-ring-{uuid.uuid4().hex[:8]}"
    conn = await kafka_conn()
    capacity, total = 1000, 25_000
    try:
        await conn.create_topic(topic, 1)
        ring = RingBuffer(capacity)
        pump = Pump(ring, conn, topic, Position.beginning(), follow=True).start()
        try:
            for start in range(0, total, 5000):
                await publish_seq(conn, topic, start, 5000)
            await until(lambda: ring.received == total, "every event in the ring", 60)
        finally:
            await pump.stop()
    finally:
        try:
            await conn.delete_topic(topic)
        finally:
            await conn.close()
    assert len(ring) == capacity
    assert ring.dropped == total - capacity
    assert seqs(ring) == list(range(total - capacity, total))
