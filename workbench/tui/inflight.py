"""The app's connection, with a count of the requests and reads in flight on it.

A reconnect must not close a client that still has work in flight (a lag refresh over thousands of
groups, a trace scan started from another screen): their callers would see "connection closed" for
a request the broker may still be answering. The app waits for :meth:`InFlight.idle` first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

from workbench.broker import (
    Connection,
    Event,
    GroupInfo,
    GroupLag,
    OutgoingEvent,
    Position,
    PublishResult,
    TopicInfo,
)

T = TypeVar("T")


class InFlight(Connection):
    """Passes everything through to ``inner``; counts what has not ended yet."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __getattr__(self, name: str) -> Any:  # an adapter's extras (e.g. the local log's restore)
        return getattr(self.inner, name)

    def _begin(self) -> None:
        self.count += 1
        self._idle.clear()

    def _end(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._idle.set()

    async def idle(self) -> None:
        """Until nothing is in flight."""
        await self._idle.wait()

    async def _run(self, request: Awaitable[T]) -> T:
        self._begin()
        try:
            return await request
        finally:
            self._end()

    async def close(self) -> None:
        await self.inner.close()

    async def list_topics(self) -> list[TopicInfo]:
        return await self._run(self.inner.list_topics())

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self._run(self.inner.describe_topic(name))

    def read(self, topic: str, start: Position, **kwargs: Any) -> AsyncIterator[list[Event]]:
        return self._read(self.inner.read(topic, start, **kwargs))

    async def _read(self, batches: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
        self._begin()
        try:
            async with aclosing(batches):  # type: ignore[type-var]
                async for batch in batches:
                    yield batch
        finally:
            self._end()

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        return await self._run(self.inner.publish(topic, events))

    async def groups(self) -> list[GroupInfo]:
        return await self._run(self.inner.groups())

    async def lag(self, group_ids: Sequence[str] | None = None, **kwargs: Any) -> list[GroupLag]:
        return await self._run(self.inner.lag(group_ids, **kwargs))

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        await self._run(self.inner.commit_offsets(group_id, offsets))

    async def peek(self, topic: str, count: int) -> list[Event]:
        return await self._run(self.inner.peek(topic, count))

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        return await self._run(self.inner.create_topic(name, partitions, config, replication_factor=replication_factor))

    async def delete_topic(self, name: str) -> None:
        await self._run(self.inner.delete_topic(name))
