"""Reading a topic without a consumer group: ``assign()`` at explicit offsets, never a commit.

One :class:`PartitionReader` per ``read()``. Its Consumer lives on one dedicated thread (a
single-worker executor): every call on it (assign, consume, pause, close) is serialised there, so
closing never races a fetch in flight and the event loop never blocks.

Fetching happens only inside :meth:`PartitionReader.next_batch`, i.e. when the caller asks for the
next batch; in between librdkafka prefetches at most ``queued.min.messages`` /
``queued.max.messages.kbytes`` per partition and then stops (backpressure).

End of a bounded read: the end offsets are captured once, before the first fetch (last stable
offsets, as the consumer reads committed data). A partition is done when its position reaches its
end: position = last offset delivered + 1, or the offset of a partition-EOF event, whichever is
larger. EOF events matter when the last offsets before the end hold no deliverable record
(transaction markers, aborted or compacted-away records): the position still moves past them.

Broker restarts during a follow read: librdkafka reconnects and continues from its own fetch
position; the reader never seeks after the initial assign(). As a guard, any record at an offset
below the next expected one is dropped, so a reset can never deliver a duplicate. The consumer's
error callback notes when every broker is down (:meth:`PartitionReader.take_lost`), so the read
can say so (``workbench.broker.Outage``) instead of just going quiet; :meth:`PartitionReader.look`
confirms it, and finds a deleted topic, by asking any broker that answers.

A partition's leader failing over (its node killed) is librdkafka's business too: the fetcher
finds the new leader, validates its position against the new leader's epoch and goes on from it.
Nothing is skipped or repeated (the failover tests on the three-node cluster count every event).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from workbench.broker import BrokerError, Event, NotFound

from .errors import map_error

#: Event.metadata by timestamp type: shared read-only mappings (no dict per event).
_META = {
    TIMESTAMP_CREATE_TIME: MappingProxyType({"timestamp_type": "CreateTime"}),
    TIMESTAMP_LOG_APPEND_TIME: MappingProxyType({"timestamp_type": "LogAppendTime"}),
    TIMESTAMP_NOT_AVAILABLE: MappingProxyType({}),
}
_EOF = KafkaError._PARTITION_EOF
#: Errors a consumer reports while the broker is away; librdkafka retries by itself.
_TRANSIENT = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError._MAX_POLL_EXCEEDED,
    KafkaError.OFFSET_OUT_OF_RANGE,  # auto.offset.reset handles it
}

WAIT_S = 0.5  # longest blocking consume(): bounds how long close() waits for a fetch in flight


def make_event(topic: str, msg: Any) -> Event:
    """An Event from a confluent_kafka Message. Null header values become b"" (listed in
    ``metadata["null_headers"]``), so headers stay ``(str, bytes)`` pairs."""
    ts_type, ts = msg.timestamp()
    headers = msg.headers()
    meta: Mapping[str, Any] = _META.get(ts_type, _META[TIMESTAMP_NOT_AVAILABLE])
    if headers:
        if any(v is None for _, v in headers):
            nulls = tuple(k for k, v in headers if v is None)
            headers = tuple((k, b"" if v is None else v) for k, v in headers)
            meta = {**meta, "null_headers": nulls}
        else:
            headers = tuple(headers)
    else:
        headers = ()
    return Event(
        topic,
        msg.partition(),
        msg.offset(),
        None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
        msg.key(),
        msg.value(),
        headers,
        meta,
    )


class PartitionReader:
    """The blocking half of a read: owns one Consumer; every method runs on the reader's thread."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        topic: str,
        start: Mapping[int, int],
        end: Mapping[int, int] | None,
        batch_size: int,
        where: str,
        scrub: Callable[[str], str],
    ) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self.where = where
        self._scrub = scrub
        self._conf = dict(conf)
        self._log_error = self._conf.get("error_cb")
        self._conf["error_cb"] = self._on_error
        self._lost: KafkaError | None = None
        self._consumer: Consumer | None = None
        self._closed = False
        self._lock = threading.Lock()
        #: next offset expected per partition (records below it are duplicates and dropped)
        self.next_offset: dict[int, int] = dict(start)
        #: captured end offsets (bounded read) or None (follow)
        self.end = None if end is None else dict(end)
        self.pending: set[int] = set(start)
        if self.end is not None:
            self.pending = {p for p in start if start[p] < self.end[p]}

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (served inside consume(), on the reader's thread)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._lost = err
        if self._log_error is not None:
            self._log_error(err)

    def look(self, timeout: float) -> None:
        """Ask whichever broker answers whether the topic still exists (a metadata request of this
        reader's consumer): NotFound when it is gone, Unreachable or Timeout when no broker answers.

        Not an admin request: librdkafka sends DescribeTopics to the node the last metadata answer
        named controller (in KRaft, any node) and, when that node has died, waits for it until the
        request times out, while the other nodes serve the read: a leader failing over would then
        read as "the broker is unreachable" and hold the read up meanwhile."""
        consumer = self._consumer
        if consumer is None or self._closed:
            raise BrokerError(f"{self.where}: the read was closed")
        try:
            metadata = consumer.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            raise self._error(exc) from None
        found = metadata.topics.get(self.topic)
        if found is None or (found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise NotFound(self._scrub(f"{self.where}: the topic no longer exists"))

    def take_lost(self) -> KafkaError | None:
        """The "all brokers down" error seen since the last call, if any."""
        lost, self._lost = self._lost, None
        return lost

    @property
    def done(self) -> bool:
        return self.end is not None and not self.pending

    def open(self) -> None:
        """Create the consumer and assign the partitions at their start offsets."""
        if self.done:
            return
        try:
            consumer = Consumer(self._conf)
        except KafkaException as exc:
            raise self._error(exc) from None
        self._consumer = consumer
        parts = sorted(self.pending) if self.end is not None else sorted(self.next_offset)
        consumer.assign([TopicPartition(self.topic, p, self.next_offset[p]) for p in parts])

    def next_batch(self) -> list[Event] | None:
        """Up to ``batch_size`` events; [] when nothing arrived within WAIT_S; None when done."""
        if self.done:
            return None
        consumer = self._consumer
        if consumer is None or self._closed:
            raise BrokerError(f"{self.where}: the read was closed")
        msgs = consumer.consume(num_messages=self.batch_size, timeout=0)
        if not msgs:
            # Wait for the first one only, then take whatever else is already there.
            msgs = consumer.consume(num_messages=1, timeout=WAIT_S)
            if msgs and self.batch_size > 1:
                msgs.extend(consumer.consume(num_messages=self.batch_size - 1, timeout=0))
        return self._convert(msgs)

    def _convert(self, msgs: list[Any]) -> list[Event]:
        topic = self.topic
        nxt = self.next_offset
        end = self.end
        events: list[Event] = []
        append = events.append
        finished: list[int] = []
        for msg in msgs:
            err = msg.error()
            p = msg.partition()
            if err is not None:
                if err.code() == _EOF:
                    if end is not None and p in self.pending and msg.offset() >= end[p]:
                        finished.append(p)
                    continue
                if err.code() in _TRANSIENT or not err.fatal() and err.retriable():
                    continue
                raise self._error(err)
            offset = msg.offset()
            expected = nxt.get(p)
            if expected is None or offset < expected:
                continue  # not ours (cannot happen) or a duplicate after a reset: drop
            if end is not None:
                if offset >= end[p]:
                    if p in self.pending:
                        finished.append(p)
                    continue
                nxt[p] = offset + 1
                append(make_event(topic, msg))
                if offset + 1 >= end[p]:
                    finished.append(p)
            else:
                nxt[p] = offset + 1
                append(make_event(topic, msg))
        if finished:
            done = [p for p in dict.fromkeys(finished) if p in self.pending]
            self.pending.difference_update(done)
            if done and self.pending and self._consumer is not None:
                # Stop fetching what we no longer want (also drops its prefetched records).
                self._consumer.pause([TopicPartition(topic, p) for p in done])
        return events

    def _error(self, exc: BaseException | KafkaError) -> BrokerError:
        error = map_error(exc, self.where)
        return type(error)(self._scrub(str(error)), hint=error.hint)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()  # no commit: enable.auto.commit is off and we never commit
            except (KafkaException, RuntimeError):
                pass


def start_offsets(
    kind: str,
    value: int,
    partitions: Sequence[int],
    low: Mapping[int, int],
    high: Mapping[int, int],
    at_time: Mapping[int, int] | None = None,
) -> dict[int, int]:
    """Where each partition starts for a Position (pure: unit-testable)."""
    pos: dict[int, int] = {}
    for p in partitions:
        lo, hi = low[p], high[p]
        if kind == "beginning":
            pos[p] = lo
        elif kind == "end":
            pos[p] = hi
        elif kind == "offset":
            pos[p] = min(max(value, lo), hi)
        elif kind == "last":
            pos[p] = max(lo, hi - value)
        elif kind == "timestamp":
            found = -1 if at_time is None else at_time.get(p, -1)
            pos[p] = hi if found is None or found < 0 else min(max(found, lo), hi)
        else:
            raise ValueError(kind)
    return pos
