"""The pump and its ring buffer: capacity and drops, coalesced notifications, pause/resume, rate."""

from __future__ import annotations

import asyncio

import pytest

from workbench.broker import Connection, Event, NotFound, Position, Unreachable
from workbench.pump import DEFAULT_BATCH, Pump, RingBuffer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def events(n: int, start: int = 0, partition: int = 0) -> list[Event]:
    return [Event("t", partition, i, 1_000 + i, None, b"v%d" % i) for i in range(start, start + n)]


class FakeConnection(Connection):
    """``read`` yields the queued batches, recording what the consumer had appended at each pull."""

    def __init__(
        self,
        batches: list[list[Event]] | None = None,
        *,
        follow_forever: bool = False,
        error: Exception | None = None,
        on_pull=None,
    ) -> None:
        self.batches = list(batches or [])
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()
        self.follow_forever = follow_forever
        self.error = error
        self.on_pull = on_pull
        self.pulls = 0
        self.closed = False
        self.batch_sizes: list[int] = []  # what each read() was asked for
        self.on_outage = None  # what the last read() was given, to report an outage through

    async def close(self) -> None: ...
    async def list_topics(self):
        return []

    async def describe_topic(self, name):
        raise NotFound(name)

    async def publish(self, topic, events):
        return []

    def read(self, topic, start, *, partitions=None, follow=False, batch_size=1000, on_outage=None):
        self.batch_sizes.append(batch_size)
        self.on_outage = on_outage
        return self._read()

    async def _read(self):
        try:
            for batch in self.batches:
                self.pulls += 1
                if self.on_pull:
                    self.on_pull(self.pulls)
                yield batch
            if self.error is not None:
                raise self.error
            while self.follow_forever:
                batch = await self.queue.get()
                self.pulls += 1
                yield batch
        finally:
            self.closed = True


async def until(condition, what: str, tries: int = 2000) -> None:
    """Yield to the loop until ``condition()`` holds (bounded)."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------- ring buffer


def test_capacity_drops_the_oldest_and_counts_them():
    buf = RingBuffer(5)
    buf.extend(events(3))
    assert [e.offset for e in buf] == [0, 1, 2]
    assert (buf.received, buf.dropped, buf.first_seq) == (3, 0, 0)
    buf.extend(events(4, start=3))
    assert [e.offset for e in buf] == [2, 3, 4, 5, 6]
    assert (len(buf), buf.received, buf.dropped, buf.first_seq) == (5, 7, 2, 2)
    assert buf[0].offset == 2 and buf[-1].offset == 6
    assert buf.by_seq(1) is None and buf.by_seq(6).offset == 6 and buf.by_seq(7) is None


def test_a_batch_larger_than_the_buffer_keeps_its_newest_events():
    buf = RingBuffer(4)
    buf.extend(events(2))
    buf.extend(events(10, start=2))
    assert [e.offset for e in buf] == [8, 9, 10, 11]
    assert (buf.received, buf.dropped) == (12, 8)


def test_wraparound_many_small_appends():
    buf = RingBuffer(7)
    for i in range(0, 50, 3):
        buf.extend(events(3, start=i))
    assert [e.offset for e in buf] == list(range(44, 51))
    assert buf.dropped == buf.received - 7
    with pytest.raises(IndexError):
        buf[7]


def test_version_grows_with_every_change_and_clear_resets_counters():
    buf = RingBuffer(3)
    v0 = buf.version
    buf.extend([])
    assert buf.version == v0
    buf.extend(events(5))
    v1 = buf.version
    assert v1 > v0
    buf.clear()
    assert buf.version > v1 and len(buf) == 0 and buf.received == buf.dropped == 0


def test_rate_is_measured_over_a_sliding_window():
    clock = FakeClock()
    buf = RingBuffer(1000, clock=clock, rate_window=2.0)
    assert buf.rate() == 0
    buf.extend(events(100))
    clock.now = 1.0
    buf.extend(events(100))
    assert buf.rate() == 100.0  # 200 events in the last 2 s
    clock.now = 2.5
    assert buf.rate() == 50.0  # the first 100 left the window
    clock.now = 3.0
    assert buf.rate() == 0.0


# --------------------------------------------------------------------------- pump


async def test_pump_reads_everything_then_notifies_once_at_the_end():
    buf = RingBuffer(100)
    conn = FakeConnection([events(10), events(10, start=10)])
    seen = []
    pump = Pump(buf, conn, "t", Position.beginning(), follow=False, notify=lambda: seen.append(len(buf)))
    pump.start()
    await pump.wait()
    assert pump.state == "done" and pump.error is None
    assert len(buf) == 20 and pump.scanned == 20
    assert seen[-1] == 20  # the final notification sees everything
    assert conn.closed


async def test_the_pump_asks_the_adapter_for_big_batches_or_its_default():
    """A turn of the UI's event loop takes in about one batch: big ones keep a fast topic up."""
    conn = FakeConnection([events(3)])
    await Pump(RingBuffer(10), conn, "t", Position.beginning(), follow=False).start().wait()
    assert conn.batch_sizes == [DEFAULT_BATCH] and DEFAULT_BATCH >= 5000
    conn = FakeConnection([events(3)])
    await Pump(RingBuffer(10), conn, "t", Position.beginning(), follow=False, batch_size=None).start().wait()
    assert conn.batch_sizes == [1000]  # the adapter's own default


async def test_many_batches_are_coalesced_into_few_notifications():
    clock = FakeClock()
    buf = RingBuffer(10_000, clock=clock)

    def tick(_pulls: int) -> None:
        clock.now += 0.001  # 1 ms of (fake) time per batch: 200 batches in 200 ms

    conn = FakeConnection([events(5, start=5 * i) for i in range(200)], on_pull=tick)
    pump = Pump(buf, conn, "t", Position.beginning(), follow=False, notify=lambda: None, interval=0.075, clock=clock)
    pump.start()
    await pump.wait()
    assert len(buf) == 1000
    # leading edge + one per 75 ms of clock + the final one (a timer may add one or two)
    assert 3 <= pump.notifications <= 8, pump.notifications


async def test_a_pending_notification_fires_when_the_source_goes_quiet():
    clock = FakeClock()
    buf = RingBuffer(100, clock=clock)
    conn = FakeConnection([events(1), events(1, start=1)], follow_forever=True)
    counts: list[int] = []
    pump = Pump(buf, conn, "t", Position.end(), notify=lambda: counts.append(len(buf)), interval=0.05, clock=clock)
    pump.start()
    await until(lambda: counts and counts[-1] == 2, "the trailing notification")
    assert counts == [1, 2]  # the first batch at once, the second after the interval
    await pump.stop()
    assert pump.state == "stopped" and conn.closed
    assert counts[-1] == 2 and len(counts) == 3  # a final notification when it stops


async def test_pause_stops_pulling_and_appending_resume_catches_up():
    buf = RingBuffer(100)
    conn = FakeConnection([events(3)], follow_forever=True)
    pump = Pump(buf, conn, "t", Position.end())
    pump.start()
    await until(lambda: len(buf) == 3, "the first batch")
    pump.pause()
    assert pump.state == "paused"
    conn.queue.put_nowait(events(2, start=3))
    conn.queue.put_nowait(events(2, start=5))
    await until(lambda: pump.held == 2, "the batch in flight to be held")
    assert len(buf) == 3  # nothing appended while paused
    assert conn.pulls == 3  # and nothing asked of the adapter beyond one batch ahead
    pump.resume()
    await until(lambda: len(buf) == 7, "catching up after resume")
    assert pump.state == "running" and pump.held == 0
    assert pump.toggle() is True and pump.toggle() is False
    await pump.stop()


async def test_the_adapter_is_asked_at_most_one_batch_ahead_of_what_was_appended():
    buf = RingBuffer(1000)
    appended_at_pull: list[int] = []
    conn = FakeConnection(
        [events(10, start=10 * i) for i in range(5)], on_pull=lambda _n: appended_at_pull.append(buf.received)
    )
    pump = Pump(buf, conn, "t", Position.beginning(), follow=False)
    pump.start()
    await pump.wait()
    # service.tail reads one batch ahead (the fetch overlaps the append), never more
    assert appended_at_pull == [0, 0, 10, 20, 30]


async def test_a_filter_applies_and_scanned_counts_everything():
    buf = RingBuffer(100)
    conn = FakeConnection([events(10)])
    pump = Pump(buf, conn, "t", Position.beginning(), follow=False, match=lambda e: e.offset % 2 == 0)
    pump.start()
    await pump.wait()
    assert [e.offset for e in buf] == [0, 2, 4, 6, 8] and pump.scanned == 10


async def test_an_adapter_error_ends_the_read_and_is_kept():
    buf = RingBuffer(100)
    conn = FakeConnection([events(2)], error=NotFound("topic 't' was deleted"))
    notified = []
    pump = Pump(buf, conn, "t", Position.beginning(), follow=True, notify=lambda: notified.append(pump.state))
    pump.start()
    await pump.wait()
    assert pump.state == "failed" and isinstance(pump.error, NotFound)
    assert len(buf) == 2 and notified[-1] == "failed" and conn.closed


async def test_drops_are_counted_while_pumping_into_a_small_buffer():
    buf = RingBuffer(10)
    conn = FakeConnection([events(7, start=7 * i) for i in range(3)])
    pump = Pump(buf, conn, "t", Position.beginning(), follow=False)
    pump.start()
    await pump.wait()
    assert (len(buf), buf.received, buf.dropped) == (10, 21, 11)
    assert [e.offset for e in buf] == list(range(11, 21))


async def test_events_the_broker_dropped_before_they_reached_us_are_counted_too():
    import dataclasses

    def marked(batch, total):  # a capped RabbitMQ tap marks the running total on a batch's first event
        return [dataclasses.replace(batch[0], metadata={"dropped_before": total}), *batch[1:]]

    conn = FakeConnection([marked(events(3), 5), events(3, start=3), marked(events(3, start=6), 12)])
    pump = Pump(RingBuffer(100), conn, "t", Position.beginning(), follow=False)
    pump.start()
    await pump.wait()
    assert pump.broker_dropped == 12 and pump.buffer.dropped == 0


async def test_an_outage_the_adapter_rides_out_is_shown_and_the_same_read_goes_on():
    conn = FakeConnection([events(3)], follow_forever=True)
    buffer = RingBuffer(100)
    shown: list[object] = []
    pump = Pump(buffer, conn, "t", Position.beginning(), notify=lambda: shown.append(pump.outage), interval=60)
    pump.start()
    await until(lambda: len(buffer) == 3, "the first batch")
    lost = Unreachable("localhost:9092: broker down")
    conn.on_outage(lost)  # as an adapter does from inside its read, then keeps retrying
    assert pump.outage is lost and pump.outages == 1 and pump.active and shown[-1] is lost  # told at once
    conn.on_outage(None)
    assert pump.outage is None and shown[-1] is None
    conn.queue.put_nowait(events(2, start=3))
    await until(lambda: len(buffer) == 5, "the batch after the outage")
    assert [e.offset for e in buffer] == [0, 1, 2, 3, 4] and len(conn.batch_sizes) == 1  # one read, no gap
    assert pump.state == "running" and pump.outages == 1
    await pump.stop()
    assert pump.outage is None and conn.closed
