"""The pump under a flood: while each notification carries many events, they come less often."""

from __future__ import annotations

import asyncio

from workbench.broker import Connection, Event, NotFound, Position
from workbench.pump import Pump, RingBuffer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Live(Connection):
    """A follow read that yields whatever batch is put into ``queue``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()

    async def close(self) -> None: ...

    async def list_topics(self):
        return []

    async def describe_topic(self, name):
        raise NotFound(name)

    async def publish(self, topic, events):
        return []

    def read(self, topic, start, *, partitions=None, follow=False, batch_size=1000, on_outage=None):
        return self._read()

    async def _read(self):
        while True:
            yield await self.queue.get()


async def test_after_a_notification_that_carried_a_flood_the_next_waits_the_flood_interval():
    clock = Clock()
    buffer = RingBuffer(1000, clock=clock)
    conn = Live()
    told: list[int] = []
    pump = Pump(
        buffer,
        conn,
        "t",
        Position.end(),
        notify=lambda: told.append(buffer.received),
        interval=0.1,
        flood=100,
        flood_interval=0.3,
        clock=clock,
    )
    pump.start()

    async def arrive(n: int, at: float) -> None:
        clock.now = at
        before = buffer.received
        conn.queue.put_nowait([Event("t", 0, before + i, 0, None, b"v") for i in range(n)])
        for _ in range(2000):
            if buffer.received == before + n:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("the batch was not appended")

    await arrive(150, 0.0)
    assert told == [150]  # the first batch at once: a flood
    await arrive(10, 0.15)
    assert told == [150]  # past the interval, but not past the flood interval
    await arrive(5, 0.31)
    assert told == [150, 165]  # it carried 15 events: no flood, the usual interval again
    await arrive(5, 0.42)
    assert told == [150, 165, 170]
    await pump.stop()


def test_the_flood_interval_is_never_shorter_than_the_interval():
    pump = Pump(RingBuffer(10), Live(), "t", Position.end(), interval=0.5, flood_interval=0.2)
    assert pump.flood_interval == 0.5
