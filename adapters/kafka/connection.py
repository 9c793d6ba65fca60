"""An open connection to a Kafka cluster (confluent-kafka / librdkafka).

Threading
    * AdminClient calls return concurrent futures resolved by librdkafka's background thread; they
      are awaited with ``asyncio.wrap_future`` (the calls themselves only enqueue a request).
    * Blocking calls (metadata, the produce loop, flush) run in ``asyncio.to_thread``.
    * Each ``read()`` has its own Consumer on its own single-worker executor (see ``reader.py``).

Batched requests
    Offsets are always fetched with ONE ``AdminClient.list_offsets`` call per offset kind for every
    partition involved (earliest, latest, or for a timestamp): never one request per partition.
    ``groups()`` and ``lag()`` describe groups and fetch committed offsets (one request per group:
    librdkafka takes one group per OffsetFetch) in a worker process, a batch of groups at a time,
    never all at once: see ``groups.py`` for why.

Topic configs
    ``TopicInfo.config`` holds only the values that are not Kafka's built-in default (whatever set
    them: the topic itself or the broker's configuration). ``TopicInfo.metadata["config_source"]``
    says where each came from (``DYNAMIC_TOPIC_CONFIG``, ``STATIC_BROKER_CONFIG`` ...); defaults
    are left out. Sensitive values (the broker hides them) are left out too.

Internal topics
    Topics whose names start with ``__`` (``__consumer_offsets``, ``__transaction_state``,
    ``__share_group_state`` ...) are listed with ``internal=True``; ``describe_topic`` uses the
    broker's own flag.

Reading (see ``reader.py``)
    ``assign()`` at explicit offsets, never ``subscribe()``, never a commit; ``read_committed``
    (aborted transactions are not shown), so a bounded read ends at the last stable offset.
    Null header values are returned as ``b""`` and named in ``Event.metadata["null_headers"]``;
    ``Event.metadata["timestamp_type"]`` is ``CreateTime`` or ``LogAppendTime``.

Publishing
    One producer per connection, made on the first publish: idempotent, ``acks=all``,
    ``linger.ms=5`` (a profile may override it), ``message.max.bytes`` raised to the broker's
    default so the broker decides what is too large. Delivery reports give each event its
    partition and offset, or its error; what is not confirmed within ``delivery_timeout_s`` fails
    with Timeout (librdkafka's own message timeout, so no late delivery follows). When the broker
    refuses a whole batch because one event exceeds the topic's ``max.message.bytes``, the events
    of that batch are re-sent one by one: only the too large ones fail (InvalidRequest), the
    others are written after the rest of the publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from workbench.broker import (
    BrokerError,
    Connection,
    Event,
    GroupInfo,
    GroupLag,
    InvalidRequest,
    NotFound,
    Outage,
    OutageCallback,
    OutgoingEvent,
    PartitionInfo,
    PartitionLag,
    Position,
    PublishResult,
    Timeout,
    TopicInfo,
    Unreachable,
)

from .errors import describe_error, kafka_error, map_error
from .groups import GroupFetcher, group_state_name
from .reader import PartitionReader, start_offsets

log = logging.getLogger("adapters.kafka")

POLL_EVERY = 1000  # serve delivery reports every N produced events
BROKER_MAX_MESSAGE_BYTES = 1048588  # Kafka's default message.max.bytes / max.message.bytes
METADATA_TTL_S = 5.0  # how long publish() trusts a topic's partition count
IDLE_CHECK_S = 10.0  # a follow read idle this long checks that its topic still exists
OUTAGE_PROBE_S = 1.0  # while the broker is away, a follow read looks this often whether it is back
SOLO_RETRY_LIMIT = 10_000  # events re-sent one by one after the broker refused their batch

#: Errors after which a ListOffsets request is worth repeating (leader moving, topic just made).
_RETRIABLE = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.OFFSET_NOT_AVAILABLE,
    KafkaError._TRANSPORT,
}

#: What the group coordinator answers when an admin commit meets a group with live members.
_ACTIVE_GROUP_ERRORS = (
    "UNKNOWN_MEMBER_ID",
    "ILLEGAL_GENERATION",
    "REBALANCE_IN_PROGRESS",
    "NON_EMPTY_GROUP",
    "STALE_MEMBER_EPOCH",
    "GROUP_SUBSCRIBED_TO_TOPIC",
)

def _ms_now() -> int:
    return time.time_ns() // 1_000_000


class KafkaConnection(Connection):
    def __init__(
        self,
        *,
        where: str,
        base_conf: Mapping[str, Any],
        admin: AdminClient,
        timeout_s: float,
        delivery_timeout_s: float,
        scrub: Callable[[str], str],
    ) -> None:
        self._where = where  # "Kafka at host:9092": what every message starts with
        self._base_conf = dict(base_conf)  # never shown: may hold secrets
        self._admin = admin
        self._timeout = timeout_s
        self._delivery_timeout = delivery_timeout_s
        self._scrub = scrub
        self._producer: Producer | None = None
        self._producer_lock = threading.Lock()
        self._producer_broken = False
        self._partition_counts: dict[str, tuple[float, int]] = {}
        self._readers: dict[PartitionReader, ThreadPoolExecutor] = {}
        self._closed = False
        self._in_flight: set[Future] = set()  # admin requests not settled yet
        self._group_fetcher = GroupFetcher(base_conf, timeout_s, where, scrub)

    def __repr__(self) -> str:
        return f"<KafkaConnection {self._where} {'closed' if self._closed else 'open'}>"

    # ------------------------------------------------------------------ plumbing

    def _track(self, futures: Iterable[Future]) -> None:
        """Remember admin requests in flight until they settle (close() must not free the client)."""
        for future in futures:
            self._in_flight.add(future)
            future.add_done_callback(self._in_flight.discard)

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"{self._where}: the connection is closed")

    def _error(self, exc: BaseException | KafkaError, what: str) -> BrokerError:
        error = map_error(exc, f"{self._where}: {what}")
        message = self._scrub(str(error))
        return error if message == str(error) else type(error)(message, hint=error.hint)

    async def _wait(self, future: Future, what: str) -> Any:
        """Await one admin future, typed errors out, bounded even if librdkafka never answers."""
        self._track([future])
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._timeout + 5)
        except TimeoutError:
            raise Timeout(f"{self._where}: {what}: no answer within {self._timeout:g} s") from None
        except (KafkaException, KafkaError) as exc:
            raise self._error(exc, what) from None
        finally:
            self._admin.poll(0)  # serve the admin client's log and error callbacks

    async def _gather(self, futures: Mapping[Any, Future]) -> dict[Any, Any]:
        """Wait for many futures of one request; each value is a result or the exception."""
        keys = list(futures)
        self._track(futures.values())
        wrapped = [asyncio.wrap_future(futures[k]) for k in keys]
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*wrapped, return_exceptions=True), self._timeout + 5
            )
        except TimeoutError:
            raise Timeout(f"{self._where}: no answer within {self._timeout:g} s") from None
        finally:
            self._admin.poll(0)
        return dict(zip(keys, done, strict=True))

    async def _list_offsets(
        self,
        partitions: Iterable[tuple[str, int]],
        spec: OffsetSpec,
        *,
        committed_only: bool = False,
        tolerate_missing: bool = False,
    ) -> dict[tuple[str, int], int]:
        """ONE ListOffsets request (per partition leader) for all ``partitions``.

        ``committed_only``: the last stable offset instead of the high watermark.
        ``tolerate_missing``: leave out partitions of unknown topics instead of raising NotFound.
        """
        wanted = list(dict.fromkeys(partitions))
        if not wanted:
            return {}
        kwargs: dict[str, Any] = {"request_timeout": self._timeout}
        if committed_only:
            kwargs["isolation_level"] = IsolationLevel.READ_COMMITTED
        offsets: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + self._timeout
        delay = 0.05
        while True:
            request = {TopicPartition(t, p): spec for t, p in wanted}
            try:
                futures = self._admin.list_offsets(request, **kwargs)
            except KafkaException as exc:
                raise self._error(exc, "listing offsets") from None
            results = await self._gather(futures)
            retry: list[tuple[str, int]] = []
            for tp, result in results.items():
                key = (tp.topic, tp.partition)
                if not isinstance(result, BaseException):
                    offsets[key] = result.offset
                    continue
                err = kafka_error(result)
                if err is not None and err.code() in _RETRIABLE:
                    if time.monotonic() < deadline:
                        retry.append(key)  # a leader moving, or a topic just created
                        continue
                    raise Timeout(  # still not settled: the broker is slow (e.g. just unfenced)
                        f"{self._where}: offsets of {tp.topic!r} partition {tp.partition}: "
                        f"{self._scrub(describe_error(err))} for {self._timeout:g} s"
                    )
                error = self._error(result, f"offsets of {tp.topic!r} partition {tp.partition}")
                if tolerate_missing and isinstance(error, NotFound):
                    continue
                raise error
            if not retry:
                return offsets
            wanted = retry
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            # librdkafka sends the leader epochs it has cached; after a leader change (or a broker
            # fenced and back) they stay stale until metadata is asked for again.
            for topic in sorted({t for t, _ in retry}):
                with contextlib.suppress(KafkaException):
                    await asyncio.to_thread(self._admin.list_topics, topic, timeout=min(self._timeout, 5))

    async def _describe_topics(self, names: Sequence[str]) -> dict[str, Any]:
        """TopicDescription per name (one request); NotFound for the first unknown one."""
        try:
            futures = self._admin.describe_topics(
                TopicCollection(list(names)), request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise self._error(exc, "describing topics") from None
        results = await self._gather(futures)
        for name, result in results.items():
            if isinstance(result, BaseException):
                error = self._error(result, f"topic {name!r}")
                if isinstance(error, NotFound):
                    raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
                raise error
        return results

    async def _metadata(self) -> Any:
        try:
            return await asyncio.to_thread(self._admin.list_topics, timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, "listing topics") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Each reader's consumer is closed on its own thread, after any fetch in flight there.
        closing = [
            asyncio.wrap_future(executor.submit(reader.close))
            for reader, executor in list(self._readers.items())
        ]
        self._readers.clear()
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            await asyncio.to_thread(producer.flush, min(self._delivery_timeout, 10.0))
        await asyncio.to_thread(self._group_fetcher.close)
        _retire(self._admin, self._in_flight)
        self._admin = _ClosedAdmin(self._where)

    # ------------------------------------------------------------------ topics

    async def list_topics(self) -> list[TopicInfo]:
        self._check_open()
        metadata = await self._metadata()
        pairs = [
            (name, p)
            for name, tm in metadata.topics.items()
            if tm.error is None
            for p in tm.partitions
        ]
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest(), tolerate_missing=True),
            self._list_offsets(pairs, OffsetSpec.latest(), tolerate_missing=True),
        )
        topics = []
        for name, tm in metadata.topics.items():
            if tm.error is not None:
                continue
            parts = tuple(
                PartitionInfo(
                    partition=p,
                    start=low.get((name, p), 0),
                    end=high.get((name, p), 0),
                    leader=None if pm.leader < 0 else pm.leader,
                    replicas=tuple(pm.replicas),
                    isr=tuple(pm.isrs),
                )
                for p, pm in sorted(tm.partitions.items())
            )
            topics.append(TopicInfo(name=name, partitions=parts, internal=name.startswith("__")))
        return sorted(topics, key=lambda t: t.name)

    async def describe_topic(self, name: str) -> TopicInfo:
        self._check_open()
        _check_name(name)
        described, config = await asyncio.gather(
            self._describe_topics([name]), self._topic_config(name), return_exceptions=True
        )
        if isinstance(described, BaseException):
            raise described
        if isinstance(config, BaseException):
            raise config
        desc = described[name]
        pairs = [(name, tp.id) for tp in desc.partitions]
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest()),
            self._list_offsets(pairs, OffsetSpec.latest()),
        )
        values, sources = config
        parts = tuple(
            PartitionInfo(
                partition=tp.id,
                start=low[(name, tp.id)],
                end=high[(name, tp.id)],
                leader=None if tp.leader is None else tp.leader.id,
                replicas=tuple(n.id for n in tp.replicas),
                isr=tuple(n.id for n in tp.isr),
            )
            for tp in sorted(desc.partitions, key=lambda tp: tp.id)
        )
        metadata: dict[str, Any] = {"config_source": sources}
        if getattr(desc, "topic_id", None) is not None:
            metadata["topic_id"] = str(desc.topic_id)
        return TopicInfo(
            name=name,
            partitions=parts,
            config=values,
            internal=bool(getattr(desc, "is_internal", False)),
            metadata=metadata,
        )

    async def _topic_config(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        resource = ConfigResource(ResourceType.TOPIC, name)
        try:
            futures = self._admin.describe_configs([resource], request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, f"configs of topic {name!r}") from None
        (entries,) = (await self._gather(futures)).values()
        if isinstance(entries, BaseException):
            error = self._error(entries, f"configs of topic {name!r}")
            if isinstance(error, NotFound):
                raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
            raise error
        values: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key, entry in sorted(entries.items()):
            source = getattr(entry.source, "name", None) or ConfigSource(entry.source).name
            if entry.is_default or source == "DEFAULT_CONFIG":
                continue
            if entry.is_sensitive or entry.value is None:
                continue
            values[key] = entry.value
            sources[key] = source
        return values, sources

    async def create_topic(
        self, name: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> TopicInfo:
        self._check_open()
        _check_name(name)
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidRequest(f"{self._where}: topic {name!r}: partitions must be an int >= 1")
        config = dict(config or {})
        for key, value in config.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidRequest(f"{self._where}: topic {name!r}: config keys and values must be str")
        new = NewTopic(name, num_partitions=partitions, config=config)
        try:
            futures = self._admin.create_topics(
                [new], operation_timeout=self._timeout, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise self._error(exc, f"creating topic {name!r}") from None
        try:
            await self._wait(futures[name], f"creating topic {name!r}")
        except InvalidRequest as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc):
                raise InvalidRequest(f"{self._where}: topic {name!r} already exists") from None
            raise
        await self._await_topic(name, present=True)
        return await self.describe_topic(name)

    async def delete_topic(self, name: str) -> None:
        self._check_open()
        _check_name(name)
        try:
            futures = self._admin.delete_topics(
                [name], operation_timeout=self._timeout, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise self._error(exc, f"deleting topic {name!r}") from None
        try:
            await self._wait(futures[name], f"deleting topic {name!r}")
        except NotFound:
            raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
        self._partition_counts.pop(name, None)
        await self._await_topic(name, present=False)

    async def _await_topic(self, name: str, *, present: bool) -> None:
        """Wait (bounded by timeout_s) until metadata shows the topic with leaders, or not at all."""
        deadline = time.monotonic() + self._timeout
        delay = 0.02
        while True:
            try:
                described = await self._describe_topics([name])
                ready = present and all(
                    tp.leader is not None for tp in described[name].partitions
                )
            except NotFound:
                ready = not present
            if ready:
                return
            if time.monotonic() >= deadline:
                state = "appear" if present else "disappear"
                raise Timeout(
                    f"{self._where}: topic {name!r} did not {state} in metadata "
                    f"within {self._timeout:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

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
    ) -> AsyncIterator[list[Event]]:
        parts = None if partitions is None else list(partitions)
        return self._read(topic, start, parts, follow, batch_size, on_outage)

    async def _read(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
        on_outage: OutageCallback | None,
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
        try:
            await loop.run_in_executor(executor, reader.open)
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
                    try:
                        await self._describe_topics([topic])
                    except (Unreachable, Timeout) as exc:
                        if not follow:
                            raise
                        outage.begin(self._error(lost, f"reading {topic!r}") if lost else exc)
                    else:
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
        _check_name(topic)
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
                    raise NotFound(
                        f"{where}: topic {topic!r} has no partition {p!r} "
                        f"(partitions 0..{len(known) - 1})"
                    )
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

    # ------------------------------------------------------------------ publish

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        self._check_open()
        _check_name(topic)
        events = list(events)
        count = await self._partition_count(topic)
        if not events:
            return []
        return await asyncio.to_thread(self._publish_sync, topic, events, count)

    async def _partition_count(self, topic: str) -> int:
        cached = self._partition_counts.get(topic)
        now = time.monotonic()
        if cached is not None and now - cached[0] < METADATA_TTL_S:
            return cached[1]
        desc = (await self._describe_topics([topic]))[topic]
        count = len(desc.partitions)
        self._partition_counts[topic] = (now, count)
        return count

    def _get_producer(self) -> Producer:
        if self._producer is None or self._producer_broken:
            old = self._producer
            conf = dict(self._base_conf)
            conf.setdefault("linger.ms", 5)
            # librdkafka's own default (1000000) is below the broker's (1048588): an event the
            # broker would take must not be refused here. The broker still has the last word.
            conf.setdefault("message.max.bytes", BROKER_MAX_MESSAGE_BYTES)
            conf.update(
                {
                    "enable.idempotence": True,
                    "acks": "all",
                    # librdkafka fails what is not confirmed by then: results stay exact.
                    "message.timeout.ms": int(self._delivery_timeout * 1000),
                }
            )
            try:
                self._producer = Producer(conf)
            except KafkaException as exc:
                raise self._error(exc, "creating the producer") from None
            self._producer_broken = False
            if old is not None:
                old.flush(0)
        return self._producer

    def _publish_sync(
        self, topic: str, events: list[OutgoingEvent], partitions: int
    ) -> list[PublishResult]:
        where = f"{self._where}: topic {topic!r}"
        with self._producer_lock:
            if self._closed:
                raise BrokerError(f"{self._where}: the connection is closed")
            producer = self._get_producer()
            results: list[PublishResult | None] = [None] * len(events)
            scrub = self._scrub

            refused_batches: list[int] = []

            def delivered(index: int, err: KafkaError | None, msg: Any) -> None:
                if err is None:
                    results[index] = PublishResult(index, msg.partition(), msg.offset())
                    return
                if err.fatal():
                    self._producer_broken = True
                if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    refused_batches.append(index)
                results[index] = PublishResult(
                    index, error=_publish_error(err, f"{where}: event {index}", scrub)
                )

            produce = producer.produce
            poll = producer.poll
            partial = functools.partial
            for index, event in enumerate(events):
                key, value = event.key, event.value
                callback = partial(delivered, index)
                if (
                    (value is None or type(value) is bytes)
                    and (key is None or type(key) is bytes)
                    and not event.headers
                    and event.partition is None
                    and event.timestamp is None
                ):
                    args = None  # the common case, checked inline
                else:
                    try:
                        args = _produce_args(event, partitions)
                    except (AttributeError, TypeError, ValueError) as exc:
                        results[index] = PublishResult(
                            index, error=InvalidRequest(f"{where}: event {index}: {exc}")
                        )
                        continue
                while True:
                    try:
                        if args is None:
                            produce(topic, value, key, -1, callback)
                        else:
                            produce(topic, on_delivery=callback, **args)
                        break
                    except BufferError:
                        poll(0.05)  # the local queue is full: let deliveries drain it
                    except KafkaException as exc:
                        results[index] = PublishResult(
                            index, error=_publish_error(exc, f"{where}: event {index}", scrub)
                        )
                        break
                if index % POLL_EVERY == POLL_EVERY - 1:
                    poll(0)
            left = producer.flush(self._delivery_timeout + 5)
            if left:
                producer.purge(in_queue=True, in_flight=False, blocking=False)
                producer.poll(0)
            elif len(refused_batches) > 1:
                # The broker refuses a whole batch when one event in it is larger than the
                # topic's max.message.bytes: nothing of it was written. Send those events one by
                # one so that only the too large ones fail (they land after the others).
                for index in sorted(refused_batches)[:SOLO_RETRY_LIMIT]:
                    results[index] = None
                    args = _produce_args(events[index], partitions)
                    produce(topic, on_delivery=partial(delivered, index), **args)
                    producer.flush(self._delivery_timeout + 5)
            return [
                result
                if result is not None
                else PublishResult(
                    index,
                    error=Timeout(
                        f"{where}: event {index} was not confirmed within "
                        f"{self._delivery_timeout:g} s"
                    ),
                )
                for index, result in enumerate(results)
            ]

    # ------------------------------------------------------------------ groups

    async def _group_listing(self) -> dict[str, Any]:
        try:
            future = self._admin.list_consumer_groups(request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, "listing consumer groups") from None
        listing = await self._wait(future, "listing consumer groups")
        if listing.errors:  # a broker that did not answer: its groups are missing from `valid`
            raise self._error(listing.errors[0], "listing consumer groups")
        return {g.group_id: g for g in listing.valid}

    async def _fetch_groups(
        self,
        group_ids: Sequence[str],
        *,
        with_offsets: bool,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[dict[str, GroupInfo | None], dict[str, dict[tuple[str, int], int | None]]]:
        """Groups' infos (None where describing one failed) and committed offsets, from the worker
        process that makes the coordinator-bound requests (see ``groups.py``)."""
        loop = asyncio.get_running_loop()
        report = None
        if on_progress is not None:
            report = lambda done, total: loop.call_soon_threadsafe(on_progress, done, total)  # noqa: E731
        return await asyncio.to_thread(
            self._group_fetcher.fetch, list(group_ids), with_offsets=with_offsets, on_batch=report
        )

    async def groups(self) -> list[GroupInfo]:
        self._check_open()
        listing = await self._group_listing()
        infos, _ = await self._fetch_groups(sorted(listing), with_offsets=False)
        return [
            infos.get(group_id)
            or GroupInfo(group_id, group_state_name(getattr(listing[group_id], "state", None)))
            for group_id in sorted(listing)
        ]

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        self._check_open()
        listing = await self._group_listing()
        if group_ids is None:
            wanted = sorted(listing)
        elif isinstance(group_ids, str):
            wanted = [group_ids]
        else:
            wanted = list(dict.fromkeys(group_ids))
        infos, offsets = await self._fetch_groups(wanted, with_offsets=True, on_progress=on_progress)
        per_group: dict[str, dict[tuple[str, int], int | None]] = {}
        states: dict[str, str] = {}
        unknown = []
        for group_id in wanted:
            commits = offsets[group_id]
            info = infos.get(group_id)
            members = info.members if info is not None else ()
            if group_id not in listing and not commits and not members:
                unknown.append(group_id)
                continue
            parts = dict(commits)
            for member in members:  # assigned but never committed: committed None ("-")
                for tp in member.assignment:
                    parts.setdefault(tp, None)
            per_group[group_id] = parts
            if info is not None:
                states[group_id] = info.state
            else:
                states[group_id] = group_state_name(getattr(listing.get(group_id), "state", None))
        if unknown:
            names = ", ".join(repr(g) for g in unknown)
            raise NotFound(f"{self._where}: consumer group {names} does not exist")
        pairs = {tp for parts in per_group.values() for tp in parts}
        observed = _ms_now()
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest(), tolerate_missing=True),
            self._list_offsets(pairs, OffsetSpec.latest(), tolerate_missing=True),
            return_exceptions=True,
        )
        for answer in (low, high):
            if isinstance(answer, BaseException):
                raise answer
        result = []
        for group_id in wanted:
            if group_id not in per_group:
                continue
            rows = tuple(
                PartitionLag(topic, p, committed, low[(topic, p)], high[(topic, p)])
                for (topic, p), committed in sorted(per_group[group_id].items())
                if (topic, p) in low and (topic, p) in high  # topics deleted since are left out
            )
            result.append(GroupLag(group_id, states[group_id], rows, observed))
        return result

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        self._check_open()
        where = self._where
        if not isinstance(group_id, str) or not group_id:
            raise InvalidRequest(f"{where}: a group id must be a non-empty string")
        offsets = dict(offsets)
        if not offsets:
            return
        for (topic, partition), offset in offsets.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise InvalidRequest(
                    f"{where}: group {group_id!r}: offset for {topic!r}/{partition} must be "
                    f"an int >= 0, got {offset!r}"
                )
        topics = sorted({t for t, _ in offsets})
        for t in topics:
            _check_name(t)
        described, (infos, _) = await asyncio.gather(
            self._describe_topics(topics), self._fetch_groups([group_id], with_offsets=False)
        )
        for (topic, partition) in offsets:
            known = {tp.id for tp in described[topic].partitions}
            if partition not in known:
                raise NotFound(f"{where}: topic {topic!r} has no partition {partition!r}")
        info = infos.get(group_id)
        if info is not None and info.members:
            raise InvalidRequest(
                f"{where}: group {group_id!r} has {len(info.members)} active member(s) "
                f"(state {info.state}); stop its consumers before changing its offsets",
            )
        request = ConsumerGroupTopicPartitions(
            group_id, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        )
        try:
            futures = self._admin.alter_consumer_group_offsets(
                [request], request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise self._error(exc, f"committing offsets of group {group_id!r}") from None
        try:
            answer = await self._wait(futures[group_id], f"committing offsets of group {group_id!r}")
        except InvalidRequest as exc:
            if any(code in str(exc) for code in _ACTIVE_GROUP_ERRORS):
                raise InvalidRequest(
                    f"{where}: group {group_id!r} has active members; stop its consumers "
                    "before changing its offsets"
                ) from None
            raise
        for tp in answer.topic_partitions or ():
            if tp.error is None:
                continue
            if tp.error.name() in _ACTIVE_GROUP_ERRORS:
                raise InvalidRequest(
                    f"{where}: group {group_id!r} has active members; stop its consumers "
                    "before changing its offsets"
                )
            raise self._error(tp.error, f"committing {tp.topic!r}/{tp.partition} of group {group_id!r}")


# ---------------------------------------------------------------------- helpers


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


class _ClosedAdmin:
    """Stands in for the AdminClient after close(): any use is a clear error."""

    def __init__(self, where: str) -> None:
        self._where = where

    def poll(self, timeout: float = 0) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        raise BrokerError(f"{self._where}: the connection is closed")


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"a topic name must be a non-empty string, got {name!r}")


_BYTES = (bytes, bytearray, memoryview)


def _produce_args(event: OutgoingEvent, partitions: int) -> dict[str, Any]:
    key, value = event.key, event.value
    if key is not None and not isinstance(key, _BYTES):
        raise TypeError(f"key must be bytes or None, got {type(key).__name__}")
    if value is not None and not isinstance(value, _BYTES):
        raise TypeError(f"value must be bytes or None, got {type(value).__name__}")
    args: dict[str, Any] = {"value": value, "key": key}
    if event.headers:
        headers = []
        for item in event.headers:
            name, data = item
            if not isinstance(name, str) or not isinstance(data, _BYTES):
                raise TypeError("headers must be (str, bytes) pairs")
            headers.append((name, bytes(data)))
        args["headers"] = headers
    partition = event.partition
    if partition is not None:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be int or None, got {type(partition).__name__}")
        if not 0 <= partition < partitions:
            raise ValueError(f"the topic has no partition {partition} (partitions 0..{partitions - 1})")
        args["partition"] = partition
    ts = event.timestamp
    if ts is not None:
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise TypeError(f"timestamp must be int milliseconds >= 0, got {ts!r}")
        args["timestamp"] = ts
    return args


def _publish_error(exc: BaseException | KafkaError, where: str, scrub: Callable[[str], str]) -> BrokerError:
    err = kafka_error(exc)
    if err is not None and err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
        return Timeout(f"{where}: not confirmed in time (purged from the send queue)")
    error = map_error(exc, where)
    message = scrub(str(error))
    return error if message == str(error) else type(error)(message)
