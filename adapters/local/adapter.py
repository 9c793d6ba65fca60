"""The ``local`` adapter: the async face of :class:`workbench_local.store.Store`.

Threading: each connection owns a small thread pool; every blocking SQLite call runs there, and
each worker thread has its own sqlite3 connection. ``close()`` waits for the workers, then closes
their sqlite connections, so nothing stays open after it.

Follow reads poll the partitions' end offsets every :data:`POLL_INTERVAL` seconds while they are
caught up (one tiny indexed query in a WAL snapshot: never a busy loop); a publish through the same
connection wakes them at once. Events from other processes are therefore seen within ~50 ms.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workbench.broker import (
    Adapter,
    BrokerError,
    Capabilities,
    Connection,
    Event,
    GroupInfo,
    GroupLag,
    InvalidRequest,
    Option,
    OutageCallback,
    OutgoingEvent,
    Position,
    PublishResult,
    TopicInfo,
    Unsupported,
)

from .store import Store

POLL_INTERVAL = 0.05  # seconds between two looks at the end offsets while a follow read is idle
WORKERS = 4  # threads (and sqlite connections) per connection: reads go on while a write waits


class LocalConnection(Connection):
    """An open event log file."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._executor = executor
        self._closed = False
        self._closing: asyncio.Future[None] | None = None  # the shutdown, once started
        self._waiters: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LocalConnection local:{self._store.path} {state}>"

    # ------------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"local:{self._store.path}: the connection is closed")

    async def _call(self, fn: Any, *args: Any) -> Any:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            job = functools.partial(self._store.call, fn, *args)
            return await loop.run_in_executor(self._executor, job)
        except RuntimeError as exc:  # the executor was shut down under us
            if self._closed:
                raise BrokerError(f"local:{self._store.path}: the connection is closed") from exc
            raise

    def _wake_followers(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if this connection publishes (or closes) meanwhile."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait((waiter,), timeout=seconds)
        finally:
            self._waiters.discard(waiter)
            waiter.cancel()

    async def close(self) -> None:
        """Idempotent. Jobs already running finish first (a publish commits whole or not at all);
        then every sqlite connection is closed. Cancelling the caller does not stop the closing."""
        if self._closing is None:
            self._closed = True
            self._wake_followers()
            self._closing = asyncio.ensure_future(asyncio.to_thread(self._shutdown))
        await asyncio.shield(self._closing)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._store.close()  # (the last connection to close checkpoints the WAL: not on the loop)

    # ------------------------------------------------------------------ topics

    async def list_topics(self) -> list[TopicInfo]:
        return await self._call(self._store.list_topics)

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self._call(self._store.describe_topic, name)

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        if replication_factor not in (None, 1):
            raise Unsupported(
                f"a local event log has no replicas (replication factor {replication_factor})",
                hint="--replication-factor applies to Kafka",
            )
        return await self._call(self._store.create_topic, name, partitions, config)

    async def delete_topic(self, name: str) -> None:
        await self._call(self._store.delete_topic, name)

    async def local_truncate(self, topic: str, partition: int, before_offset: int) -> int:
        """LOCAL-ONLY, not part of the contract: retention by hand.

        Drops the events of ``topic``/``partition`` before ``before_offset`` (clamped to the log
        end) and moves the partition's start offset there; returns the new start offset.
        """
        return await self._call(self._store.truncate, topic, partition, before_offset)

    async def local_restore(
        self,
        topic: str,
        partitions: int,
        events: Sequence[Event] = (),
        *,
        starts: Mapping[int, int] | None = None,
        ends: Mapping[int, int] | None = None,
    ) -> None:
        """LOCAL-ONLY, not part of the contract: write events read elsewhere at their original
        partitions, offsets and timestamps (captures for offline use; see Store.restore)."""
        await self._call(self._store.restore, topic, partitions, list(events), starts, ends)
        self._wake_followers()

    # ------------------------------------------------------------------ events

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        results = await self._call(self._store.publish, topic, list(events))
        self._wake_followers()
        return results

    def read(
        self,
        topic: str,
        start: Position,
        *,
        partitions: Sequence[int] | None = None,
        follow: bool = False,
        batch_size: int = 1000,
        on_outage: OutageCallback | None = None,  # a local file has no outage to report
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        parts = None if partitions is None else list(partitions)
        return self._read(topic, start, parts, follow, batch_size, on_live if follow else None)

    async def _read(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        # Nothing is fetched before the first batch is asked for, nor between two requests.
        cursor = await self._call(self._store.open_cursor, topic, start, partitions, follow, batch_size)
        if on_live is not None:  # the cursor holds its start offsets: every later publish is read
            on_live()
        while True:
            batch = await self._call(self._store.next_batch, cursor)
            if batch is None:
                return
            if batch:
                yield batch
            else:
                await self._idle(POLL_INTERVAL)

    # ------------------------------------------------------------------ groups

    async def groups(self) -> list[GroupInfo]:
        return await self._call(self._store.groups)

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        if group_ids is None:
            ids = None
        elif isinstance(group_ids, str):
            ids = [group_ids]
        else:
            ids = list(group_ids)
        return await self._call(self._store.lag, ids)

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        await self._call(self._store.commit_offsets, group_id, dict(offsets))


class LocalAdapter(Adapter):
    """An event log in one SQLite file: no server, several processes may share it."""

    name = "local"
    description = "Embedded event log in a single SQLite file (no broker needed)"
    capabilities = Capabilities(
        history=True,
        partitions=True,
        consumer_groups=True,
        offsets_reset=True,
        publisher_confirms=True,
        headers=True,
        publish_timestamp=True,
        non_destructive_tap=True,
        topic_admin=True,
    )
    options = (
        Option("path", str, None, help="the event log file"),
        Option("create", bool, True, help="create the file when it is missing (false: a missing file is NotFound)"),
        Option("busy_timeout_ms", int, 5000, help="how long to wait for another writer's lock"),
        Option("stable_window_ms", int, 30_000, help="a group that committed within this window is Stable, else Empty"),
    )

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        path = self.settings["path"]
        if not path:
            raise InvalidRequest(f"adapter {self.name!r}: option 'path' is required")
        if self.settings["busy_timeout_ms"] < 0:
            raise InvalidRequest(f"adapter {self.name!r}: option 'busy_timeout_ms' must be >= 0")
        if self.settings["stable_window_ms"] < 0:
            raise InvalidRequest(f"adapter {self.name!r}: option 'stable_window_ms' must be >= 0")

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """``local:PATH`` or ``local://PATH`` -> ``{"path": PATH}``; ``local:`` alone -> ``{}``."""
        scheme, sep, rest = url.partition(":")
        if not sep or scheme.lower() != "local":
            raise InvalidRequest(f"not a local URL: {url!r} (expected local:PATH)")
        if rest.startswith("//"):
            rest = rest[2:]
        return {"path": rest} if rest else {}

    def describe(self) -> str:
        return f"local:{self.settings['path']}"

    async def connect(self) -> LocalConnection:
        store = Store(
            self.settings["path"],
            self.settings["busy_timeout_ms"],
            self.settings["stable_window_ms"],
            create=self.settings["create"],
        )
        executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="workbench-local")
        try:
            await asyncio.get_running_loop().run_in_executor(executor, store.open)
        except BaseException:
            executor.shutdown(wait=False)
            await asyncio.shield(asyncio.to_thread(_discard, executor, store))
            raise
        return LocalConnection(store, executor)


def _discard(executor: ThreadPoolExecutor, store: Store) -> None:
    executor.shutdown(wait=True)
    store.close()
