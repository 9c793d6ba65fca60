"""An open connection to a Kafka cluster (confluent-kafka / librdkafka).

:class:`KafkaConnection` is composed of one mixin per family of verbs, all built on
:class:`~.base.KafkaBase` (the state they share and the admin-request plumbing: threading and
batched requests are explained there):

    ``topology.py``   list_topics, describe_topic (with configs and permissions), create_topic, delete_topic
    ``authorization.py``  publish and commit_offsets checked against the ACLs (a refusal named)
    ``publisher.py``  publish: the producer, delivery reports, the one-by-one resend
    ``lag.py``        groups, lag, commit_offsets (``groups.py`` is the worker process they use)
    this module       the class itself, close(), and read(), whose consumers belong to the
                      connection (close() closes them)

Reading (see ``reader.py``)
    ``assign()`` at explicit offsets, never ``subscribe()``, never a commit; ``read_committed``
    (aborted transactions are not shown), so a bounded read ends at the last stable offset.
    Null header values are returned as ``b""`` and named in ``Event.metadata["null_headers"]``;
    ``Event.metadata["timestamp_type"]`` is ``CreateTime`` or ``LogAppendTime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, OffsetSpec

from workbench.broker import (
    BrokerError,
    Event,
    InvalidRequest,
    NotFound,
    Outage,
    OutageCallback,
    Position,
    Timeout,
    Unreachable,
)

from .authorization import AuthorizationMixin
from .base import ClosedAdmin, KafkaBase, check_name
from .lag import GroupsMixin
from .publisher import PublisherMixin
from .reader import PartitionReader, start_offsets
from .topology import TopologyMixin

log = logging.getLogger("workbench_kafka")

IDLE_CHECK_S = 10.0  # a follow read idle this long checks that its topic still exists
OUTAGE_PROBE_S = 1.0  # while the broker is away, a follow read looks this often whether it is back
LOOK_S = 3.0  # longest such look (it holds the reader's thread, and so a close, that long)


class KafkaConnection(AuthorizationMixin, TopologyMixin, PublisherMixin, GroupsMixin, KafkaBase):
    """The contract's Connection for Kafka: the parts above, plus close() and read()."""

    def __repr__(self) -> str:
        return f"<KafkaConnection {self._where} {'closed' if self._closed else 'open'}>"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Each reader's consumer is closed on its own thread, after any fetch in flight there.
        closing = [
            asyncio.wrap_future(executor.submit(reader.close)) for reader, executor in list(self._readers.items())
        ]
        self._readers.clear()
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            # A producer whose fatal error came after its last publish raises it here: it has
            # nothing left to deliver, and closing must not fail for it.
            with contextlib.suppress(KafkaException):
                await asyncio.to_thread(producer.flush, min(self._delivery_timeout, 10.0))
        await asyncio.to_thread(self._group_fetcher.close)
        _retire(self._admin, self._in_flight)
        self._admin = ClosedAdmin(self._where)

    # ------------------------------------------------------------------ read

    def read(
        self,
        topic: str,
        start: Position,
        *,
        partitions: Sequence[int] | None = None,
        follow: bool = False,
        batch_size: int = 1000,
        on_outage: OutageCallback | None = None,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        parts = None if partitions is None else list(partitions)
        return self._read(topic, start, parts, follow, batch_size, on_outage, on_live)

    async def _read(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
        on_outage: OutageCallback | None,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        # An async generator: nothing below runs before the first batch is asked for.
        self._check_open()
        reader = await self._open_reader(topic, start, partitions, follow, batch_size)
        if reader is None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-kafka-read")
        loop = asyncio.get_running_loop()
        self._readers[reader] = executor
        outage = Outage(on_outage)
        lost: KafkaError | None = None  # librdkafka said every broker is down: look whether so
        unanswered = 0  # looks in a row that no broker answered
        try:
            await loop.run_in_executor(executor, reader.open)
            if follow and on_live is not None:  # assigned at offsets from the end seen: nothing newer is missed
                on_live()
            idle_since = time.monotonic()
            while True:
                if self._closed:
                    raise BrokerError(f"{self._where}: the connection is closed")
                batch = await loop.run_in_executor(executor, reader.next_batch)
                if batch is None:
                    return
                lost = reader.take_lost() or lost
                if batch:
                    outage.end()
                    lost = None
                    yield batch
                    idle_since = time.monotonic()
                elif lost or time.monotonic() - idle_since > (OUTAGE_PROBE_S if outage.active else IDLE_CHECK_S):
                    # librdkafka says nothing when an assigned topic is deleted: look now and then.
                    # The same request tells whether the broker is away (librdkafka reconnects by
                    # itself: a follow read waits, and looks more often) and when it is back. A
                    # "brokers down" report is confirmed this way first: it may be an old one.
                    # Any broker may answer (reader.look): one node of a cluster dying is no outage.
                    # One look unanswered is no outage by itself: right after a cluster node dies,
                    # librdkafka may send it there; the next look goes to a live one. Two in a
                    # row, or librdkafka saying every broker is down, is one.
                    try:
                        await loop.run_in_executor(executor, reader.look, min(self._timeout, LOOK_S))
                    except (Unreachable, Timeout) as exc:
                        if not follow:
                            raise
                        unanswered += 1
                        if lost or unanswered > 1 or outage.active:
                            outage.begin(self._error(lost, f"reading {topic!r}") if lost else exc)
                        else:
                            lost = None
                            idle_since = time.monotonic() - IDLE_CHECK_S + OUTAGE_PROBE_S  # look again soon
                            continue
                    else:
                        unanswered = 0
                        outage.end()
                    lost = None
                    idle_since = time.monotonic()
        finally:
            self._readers.pop(reader, None)
            # Queued behind any consume() in flight on the same thread: never concurrent with it.
            done = loop.run_in_executor(executor, reader.close)
            executor.shutdown(wait=False)
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                pass

    async def _open_reader(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
    ) -> PartitionReader | None:
        where = self._where
        check_name(topic)
        if not isinstance(start, Position):
            raise InvalidRequest(f"{where}: start must be a Position, got {type(start).__name__}")
        if start.kind not in ("beginning", "end", "offset", "timestamp", "last"):
            raise InvalidRequest(f"{where}: unknown position kind {start.kind!r}")
        if start.kind == "last" and start.value < 0:
            raise InvalidRequest(f"{where}: Position.last needs N >= 0, got {start.value}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidRequest(f"{where}: batch_size must be an int >= 1, got {batch_size!r}")
        desc = (await self._describe_topics([topic]))[topic]
        known = sorted(tp.id for tp in desc.partitions)
        if partitions is None:
            chosen = known
        else:
            chosen = list(dict.fromkeys(partitions))
            for p in chosen:
                if not isinstance(p, int) or isinstance(p, bool) or p not in known:
                    raise NotFound(f"{where}: topic {topic!r} has no partition {p!r} (partitions 0..{len(known) - 1})")
        pairs = [(topic, p) for p in chosen]
        requests = [
            self._list_offsets(pairs, OffsetSpec.earliest()),
            # The consumer reads committed data (read_committed): its end is the last stable offset.
            self._list_offsets(pairs, OffsetSpec.latest(), committed_only=True),
        ]
        if start.kind == "timestamp":
            requests.append(self._list_offsets(pairs, OffsetSpec.for_timestamp(start.value)))
        found = await asyncio.gather(*requests)
        low = {p: found[0][(topic, p)] for p in chosen}
        high = {p: found[1][(topic, p)] for p in chosen}
        at_time = {p: found[2][(topic, p)] for p in chosen} if len(found) > 2 else None
        pos = start_offsets(start.kind, start.value, chosen, low, high, at_time)
        reader = PartitionReader(
            conf=self._consumer_conf(batch_size),
            topic=topic,
            start=pos,
            end=None if follow else high,
            batch_size=batch_size,
            where=f"{where}: reading {topic!r}",
            scrub=self._scrub,
        )
        return None if reader.done else reader

    def _consumer_conf(self, batch_size: int) -> dict[str, Any]:
        conf = dict(self._base_conf)
        conf.update(
            {
                # A throwaway id: with assign() and no commit, no group ever exists on the broker.
                "group.id": f"workbench-tail-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # Modest prefetch (backpressure): librdkafka stops fetching when this much
                # waits unread (16 MB in all, 20k events per partition), and looks again
                # 20 ms later (its default, 1 s, would throttle a fast reader 7x).
                "queued.max.messages.kbytes": 16384,
                "queued.min.messages": max(20 * batch_size, 20000),
                "fetch.queue.backoff.ms": 20,
            }
        )
        return conf


# ---------------------------------------------------------------------- closing

#: Admin clients of closed connections whose requests had not settled: freeing a librdkafka
#: client with requests in flight (a reconnect after a slow refresh) is what aborts the process.
_retired: list[tuple[AdminClient, set[Future]]] = []


def _retire(admin: Any, in_flight: set[Future]) -> None:
    """Keep ``admin`` alive while any of its requests is in flight; free those that settled.

    Freeing happens here, on the caller's thread: never in a future's done-callback, which runs on
    librdkafka's own background thread (destroying a client from its own thread deadlocks).
    """
    _retired[:] = [(a, f) for a, f in _retired if any(not x.done() for x in f)]
    if any(not future.done() for future in in_flight):
        _retired.append((admin, in_flight))
