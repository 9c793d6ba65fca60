"""Helpers shared by the conformance tests: bounded reads, publishing, grouping."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from workbench.broker import Connection, Event, OutgoingEvent, Position, PublishResult

WAIT = 5.0  # seconds: the bound on any wait for events (no test sleeps a fixed time)


async def publish_ok(conn: Connection, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
    """Publish and insist that every event was confirmed, one result per event, in order."""
    results = await conn.publish(topic, list(events))
    assert [r.index for r in results] == list(range(len(events)))
    failed = [r for r in results if not r.ok]
    assert not failed, f"publish failed: {failed}"
    return results


async def read_all(
    conn: Connection,
    topic: str,
    start: Position,
    *,
    partitions: Sequence[int] | None = None,
    batch_size: int = 1000,
    timeout: float = WAIT,
) -> list[Event]:
    """A bounded read (follow=False) drained to its end; fails if it does not end within timeout."""
    events: list[Event] = []
    it = conn.read(topic, start, partitions=partitions, follow=False, batch_size=batch_size)

    async def drain() -> None:
        async for batch in it:
            assert isinstance(batch, list)
            assert len(batch) <= batch_size, f"batch of {len(batch)} > batch_size {batch_size}"
            assert all(isinstance(e, Event) for e in batch)
            events.extend(batch)

    try:
        await asyncio.wait_for(drain(), timeout)
    finally:
        await it.aclose()
    return events


async def read_raising(conn: Connection, topic: str, start: Position, **kw) -> None:
    """Start a read and pull one batch: the typed error of a read is raised eagerly or lazily."""
    it = conn.read(topic, start, **kw)
    try:
        await asyncio.wait_for(anext(it, None), WAIT)
    finally:
        await it.aclose()


def by_partition(events: Sequence[Event]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        out[e.partition].append(e)
    return dict(out)


def values(events: Sequence[Event]) -> list[bytes | None]:
    return [e.value for e in events]


def spread(
    partitions: int,
    per_partition: int,
    *,
    prefix: str = "e",
    timestamps: Sequence[int] | None = None,
) -> list[OutgoingEvent]:
    """``per_partition`` events to each partition, explicitly placed, value b"<prefix>-<p>-<i>"."""
    return [
        OutgoingEvent(
            value=f"{prefix}-{p}-{i}".encode(),
            partition=p,
            timestamp=None if timestamps is None else timestamps[i],
        )
        for i in range(per_partition)
        for p in range(partitions)
    ]


class Follower:
    """A follow read running in its own task, collecting what it sees (bounded waits only)."""

    def __init__(self, conn: Connection, topic: str, start: Position, *, wait: float = WAIT, **kw) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.wait = wait
        self._it = conn.read(topic, start, follow=True, **kw)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for batch in self._it:
            self.events.extend(batch)
            self.changed.set()

    async def wait_for(self, predicate: Callable[[list[Event]], bool]) -> None:
        async def loop() -> None:
            while not predicate(self.events):
                if self._task.done():
                    self._task.result()  # re-raise what ended the read
                    raise AssertionError("the follow read ended")
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), self.wait)

    async def until_live(self, probe: Callable[[int], Awaitable[object]]) -> int:
        """Call ``await probe(n)`` until the reader shows an event: then it is surely past its
        start. Returns how many probes were sent."""
        sent = 0

        async def loop() -> None:
            nonlocal sent
            while not self.events:
                await probe(sent)
                sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.25)

        await asyncio.wait_for(loop(), self.wait)
        return sent

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._it.aclose()
