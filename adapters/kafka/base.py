"""What every part of a Kafka connection shares: its state and the admin-request plumbing.

``KafkaConnection`` (``connection.py``) is composed of mixins, one module per family of verbs
(``topology.py``, ``publisher.py``, ``lag.py``), all built on :class:`KafkaBase`. They share one
object's state (the AdminClient, the producer, the readers, the timeouts) rather than holding
references to each other, so a verb in one part may use another's helper (``describe_topic`` after
``create_topic``, ``_describe_topics`` everywhere) and the connection still has one ``_admin`` to
replace or close.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

from confluent_kafka import (
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from workbench.broker import BrokerError, Connection, InvalidRequest, NotFound, Timeout

from .errors import describe_error, kafka_error, map_error
from .groups import GroupFetcher
from .reader import PartitionReader

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

#: How long a request sent to the node named controller is given at first (a live node answers in
#: milliseconds): one that died is waited for only this long (see KafkaBase._ask_controller).
CONTROLLER_TRY_S = 2.0
#: How long a node that failed a controller request is avoided, and how long after any such failure
#: metadata is asked first, to know which node a controller request goes to.
SILENT_MEMORY_S = 30.0
#: Metadata requests made at most, one after the other, for a controller other than a dead one.
RENAME_TRIES = 8

#: Errors that say the node a request was sent to did not answer: asking another may help.
_NODE_GONE = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER}

#: What a failed admin request raises. confluent_kafka's stub declares KafkaError a plain class, but
#: its C type is flagged as an exception type (it can be raised and caught): hence the cast.
_ADMIN_FAILURES = cast(tuple[type[BaseException], ...], (KafkaException, KafkaError))


class ClosedAdmin:
    """Stands in for the AdminClient after close(): any use is a clear error."""

    def __init__(self, where: str) -> None:
        self._where = where

    def poll(self, timeout: float = 0) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        raise BrokerError(f"{self._where}: the connection is closed")


class KafkaBase(Connection):
    """A Kafka connection's state and the admin requests its parts share (not used alone)."""

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
        self._admin: AdminClient | ClosedAdmin = admin  # a ClosedAdmin once closed
        self._timeout = timeout_s
        self._delivery_timeout = delivery_timeout_s
        self._scrub = scrub
        self._producer: Producer | None = None
        self._producer_lock = threading.Lock()
        self._partition_counts: dict[str, tuple[float, int]] = {}
        self._silent_nodes: dict[int, float] = {}  # node id -> when it last failed a controller request
        self._doubt_until = 0.0  # until then, controller requests ask first which node is named
        self._controller_lock = asyncio.Lock()  # controller requests one at a time while in doubt
        self._readers: dict[PartitionReader, ThreadPoolExecutor] = {}
        self._closed = False
        self._in_flight: set[Future] = set()  # admin requests not settled yet
        self._group_fetcher = GroupFetcher(base_conf, timeout_s, where, scrub)

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
        except _ADMIN_FAILURES as exc:
            raise self._error(exc, what) from None
        finally:
            self._admin.poll(0)  # serve the admin client's log and error callbacks

    async def _gather(self, futures: Mapping[Any, Future]) -> dict[Any, Any]:
        """Wait for many futures of one request; each value is a result or the exception."""
        keys = list(futures)
        self._track(futures.values())
        wrapped = [asyncio.wrap_future(futures[k]) for k in keys]
        try:
            done = await asyncio.wait_for(asyncio.gather(*wrapped, return_exceptions=True), self._timeout + 5)
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

    async def _describe_topics(self, names: Sequence[str], *, operations: bool = False) -> dict[str, Any]:
        """TopicDescription per name (one request); NotFound for the first unknown one.
        ``operations``: with the operations the connected user may do on each topic."""
        what = f"describing topic {names[0]!r}" if len(names) == 1 else "describing topics"
        results = await self._ask_controller(
            lambda wait: self._admin.describe_topics(
                TopicCollection(list(names)), request_timeout=wait, include_authorized_operations=operations
            ),
            what,
            topic=names[0] if names else None,
        )
        for name, result in results.items():
            if isinstance(result, BaseException):
                error = self._error(result, f"topic {name!r}")
                if isinstance(error, NotFound):
                    raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
                raise error
        return results

    async def _ask_controller(
        self, ask: Callable[[float], Mapping[Any, Future]], what: str, *, topic: str | None = None
    ) -> dict[Any, Any]:
        """The results of ``ask(request_timeout)``, an admin request librdkafka sends to the node its
        last metadata answer named controller (DescribeTopics, DescribeConfigs), like ``_gather``.

        librdkafka does not look again by itself when that node dies: each such request waits for
        it until it times out, again and again, while the other nodes serve everything else. So a
        try is given CONTROLLER_TRY_S at first (a live node answers in milliseconds). When the node
        asked did not answer (or its connection broke), metadata is asked of any live node (about
        ``topic``, to keep the answer small) until the answer names as controller the node that gave
        it (KRaft names any registered node at random, a dead one too until the controller fences
        it: ``broker.session.timeout.ms``, 9 s by default), and the request is tried again. The first
        two tries get CONTROLLER_TRY_S, each later one twice the one before (a slow link), all
        within ``timeout_s``. For SILENT_MEMORY_S after a failed try, controller requests go one at a
        time, each naming its node that way first, avoiding the nodes that failed (a healthy
        connection never does)."""
        deadline = time.monotonic() + self._timeout
        tries = 0
        if time.monotonic() >= self._doubt_until:  # the usual case: one request, as it is
            results = await self._try_controller(ask, what, CONTROLLER_TRY_S)
            if not _any_gone(results):
                return results
            self._doubt_until = time.monotonic() + SILENT_MEMORY_S
            tries = 1
        # One request at a time from here: each metadata answer changes the node librdkafka asks
        # next, so naming a node and asking it must not interleave with another request's naming.
        async with self._controller_lock:
            while True:
                now = time.monotonic()
                failed = {node for node, when in self._silent_nodes.items() if now - when < SILENT_MEMORY_S}
                named = await self._name_controller(failed, topic, deadline)
                wait = max(min(CONTROLLER_TRY_S * 2 ** max(tries - 1, 0), deadline - time.monotonic()), 0.1)
                results = await self._try_controller(ask, what, wait)
                tries += 1
                if not _any_gone(results) or time.monotonic() >= deadline:
                    return results
                self._doubt_until = time.monotonic() + SILENT_MEMORY_S
                if named is not None:
                    self._silent_nodes[named] = time.monotonic()

    async def _try_controller(self, ask: Callable[[float], Mapping[Any, Future]], what: str, wait: float) -> dict:
        """One try of ``ask`` given ``wait`` seconds: its results, like ``_gather``."""
        try:
            futures = ask(wait)
        except KafkaException as exc:
            raise self._error(exc, what) from None
        return await self._gather(futures)

    async def _name_controller(self, avoid: set[int], topic: str | None, deadline: float) -> int | None:
        """Ask any live node for metadata (librdkafka takes its answer's controller for the next
        controller request) until it names itself, the one node known to be alive, as controller;
        failing that, the first node named that is not in ``avoid``, or the last one named. None
        when no node answered (the request tried next says why)."""
        named: int | None = None
        fallback: int | None = None
        for _ in range(RENAME_TRIES):
            wait = max(min(deadline - time.monotonic(), CONTROLLER_TRY_S), 0.1)
            try:
                metadata = await asyncio.to_thread(self._admin.list_topics, topic, timeout=wait)
            except KafkaException:
                return None
            named = metadata.controller_id
            if named == metadata.orig_broker_id:
                return named
            if fallback is None and named not in avoid:
                fallback = named
        # The answer names a controller at random (KRaft): a try is left to the one named last.
        return named if fallback is None else fallback

    async def _metadata(self) -> Any:
        try:
            return await asyncio.to_thread(self._admin.list_topics, timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, "listing topics") from None


def _any_gone(results: Mapping[Any, Any]) -> bool:
    """Whether a request's results say the node asked did not answer (asking another may help)."""
    for result in results.values():
        err = kafka_error(result) if isinstance(result, BaseException) else None
        if err is not None and err.code() in _NODE_GONE:
            return True
    return False


def check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"a topic name must be a non-empty string, got {name!r}")
