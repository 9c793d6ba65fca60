"""Publishing to Kafka: the producer, its delivery reports, the one-by-one resend.

A part of ``KafkaConnection`` (a mixin on :class:`~.base.KafkaBase`, see ``base.py``).

One producer per connection, made on the first publish: idempotent, ``acks=all``,
``linger.ms=5`` (a profile may override it), ``message.max.bytes`` raised to the broker's
default so the broker decides what is too large. Delivery reports give each event its
partition and offset, or its error; what is not confirmed within ``delivery_timeout_s`` fails
with Timeout (librdkafka's own message timeout, so no late delivery follows). A leader failing
over (a node killed) is the producer's business: it retries, and being idempotent it writes each
event once; publish() only keeps its own metadata look-up from failing the batch meanwhile. When the broker
refuses a whole batch because one event exceeds the topic's ``max.message.bytes``, the events
of that batch are re-sent one by one: only the too large ones fail (InvalidRequest), the
others are written after the rest of the publish.

A fatal error of the producer (librdkafka can send nothing more with it: an idempotent producer
refused its producer id by the ACLs, a fenced producer) fails every event of the publish that was not
confirmed with that error, typed (AccessDenied for an authorization); when none was, the publish
raises it, like a batch refused whole. The dead producer is dropped: the next publish makes a new one.
librdkafka raises the fatal error from poll(), once, and flush() goes on serving delivery reports with
that exception pending (a SystemError in the first report's callback, whose result is lost): so the
publish waits for its delivery reports with poll(), never flush().

The produce loop and the wait block: they run in a thread (``asyncio.to_thread``), one publish
at a time per connection (the producer lock).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from workbench.broker import (
    AccessDenied,
    BrokerError,
    InvalidRequest,
    OutgoingEvent,
    PublishResult,
    Timeout,
    Unreachable,
)

from .base import KafkaBase, check_name
from .errors import describe_error, kafka_error, map_error

POLL_EVERY = 1000  # serve delivery reports every N produced events
BROKER_MAX_MESSAGE_BYTES = 1048588  # Kafka's default message.max.bytes / max.message.bytes
METADATA_TTL_S = 5.0  # how long publish() trusts a topic's partition count
REFRESH_WAIT_S = 2.0  # how long publish() waits to look it up again (it answers in milliseconds when well)
SOLO_RETRY_LIMIT = 10_000  # events re-sent one by one after the broker refused their batch
SERVE_S = 0.1  # longest single poll() while waiting for delivery reports
FATAL_DRAIN_S = 2.0  # after a fatal error, how long its purged events' reports are waited for
#: Delivery errors that say librdkafka dropped the event unsent (the fatal error or the Timeout says why).
_PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._FATAL}
#: What an idempotent producer refused its producer id (CLUSTER_AUTHORIZATION_FAILED) needs.
PRODUCER_ID_HINT = (
    "an idempotent producer needs Write on the topic (Kafka 3.0 and later; IdempotentWrite on the cluster "
    "before): ask the cluster's administrators, or use a profile that may"
)


class PublisherMixin(KafkaBase):
    """publish: one result per event (partition and offset, or the exact error)."""

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        self._check_open()
        check_name(topic)
        events = list(events)
        count = await self._partition_count(topic)
        if not events:
            return []
        return await asyncio.to_thread(self._publish_sync, topic, events, count)

    async def prepare_publish(self, topic: str) -> None:
        """Make the producer now: librdkafka asks for the idempotent producer's id at once, and the
        first delivery waits for it (0.5-1 s: its id is asked again on a 500 ms timer until a
        broker learnt from the metadata is up). ``publish --file`` calls this while it checks its input."""
        self._check_open()
        await asyncio.to_thread(self._prepare_producer)

    def _prepare_producer(self) -> None:
        with self._producer_lock:
            if not self._closed:
                self._get_producer()

    async def _partition_count(self, topic: str) -> int:
        """The topic's partition count (NotFound when it does not exist), looked up again after
        METADATA_TTL_S. A look-up that fails for want of an answer while the count is known keeps
        the known count: librdkafka sends DescribeTopics to the node it last saw as controller,
        and when that node dies (a leader failing over with it) the request waits for it until it
        times out, while the producer, which asks any node, carries on. Failing the batch then would
        stop a publish that the cluster could take."""
        cached = self._partition_counts.get(topic)
        now = time.monotonic()
        if cached is not None and now - cached[0] < METADATA_TTL_S:
            return cached[1]
        try:
            if cached is None:
                desc = (await self._describe_topics([topic]))[topic]
            else:
                desc = (await asyncio.wait_for(self._describe_topics([topic]), REFRESH_WAIT_S))[topic]
        except (TimeoutError, Timeout, Unreachable):
            if cached is None:
                raise
            self._partition_counts[topic] = (now, cached[1])  # not asked again for METADATA_TTL_S
            return cached[1]
        count = len(desc.partitions)
        self._partition_counts[topic] = (now, count)
        return count

    def _get_producer(self) -> Producer:
        if self._producer is None:
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
        return self._producer

    def _publish_sync(self, topic: str, events: list[OutgoingEvent], partitions: int) -> list[PublishResult]:
        where = f"{self._where}: topic {topic!r}"
        with self._producer_lock:
            if self._closed:
                raise BrokerError(f"{self._where}: the connection is closed")
            producer = self._get_producer()
            results: list[PublishResult | None] = [None] * len(events)
            scrub = self._scrub

            refused_batches: list[int] = []
            fatal: list[BrokerError] = []  # the producer's fatal error, once it has one
            dropped: set[int] = set()  # events librdkafka dropped unsent, or failed with the fatal error

            def delivered(index: int, err: KafkaError | None, msg: Any) -> None:
                if err is None:
                    results[index] = confirmed(index, msg.partition(), msg.offset())
                    return
                if err.code() in _PURGED or err.fatal():
                    dropped.add(index)  # the fatal error, or the Timeout below, says why
                    if not err.fatal():
                        return
                if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    refused_batches.append(index)
                results[index] = PublishResult(index, error=_publish_error(err, f"{where}: event {index}", scrub))

            def serve(timeout: float) -> None:
                """poll(): delivery reports, and the producer's fatal error (raised from here, once)."""
                try:
                    producer.poll(timeout)
                except KafkaException as exc:
                    if not fatal:
                        fatal.append(_fatal_error(exc, where, scrub))

            def wait(timeout: float) -> int:
                """Serve delivery reports until every event has one, for at most ``timeout`` s (shorter
                after a fatal error: librdkafka purges what it holds then); what is left."""
                deadline = time.monotonic() + timeout
                while len(producer):
                    if fatal:
                        deadline = min(deadline, time.monotonic() + FATAL_DRAIN_S)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    serve(min(left, SERVE_S))
                return len(producer)

            produce = producer.produce
            partial = functools.partial
            plain = _plain_event
            for index, event in enumerate(events):
                if fatal:
                    break  # the producer can send nothing more: the rest fail with its error
                callback = partial(delivered, index)
                if plain(event):  # the common case: tried once, at once
                    try:
                        produce(topic, event.value, event.key, -1, callback)
                    except (BufferError, KafkaException):
                        pass  # said again, and handled, below
                    else:
                        if not index % POLL_EVERY:
                            serve(0)
                        continue
                    args = None
                else:
                    try:
                        args = _produce_args(event, partitions)
                    except (AttributeError, TypeError, ValueError) as exc:
                        results[index] = PublishResult(index, error=InvalidRequest(f"{where}: event {index}: {exc}"))
                        continue
                while not fatal:
                    try:
                        if args is None:
                            produce(topic, event.value, event.key, -1, callback)
                        else:
                            produce(topic, on_delivery=callback, **args)
                        break
                    except BufferError:
                        serve(0.05)  # the local queue is full: let deliveries drain it
                    except KafkaException as exc:
                        err = kafka_error(exc)
                        if err is not None and (err.fatal() or err.code() == KafkaError._FATAL):
                            serve(0)  # librdkafka raises the fatal error itself from poll()
                            if not fatal:
                                fatal.append(_fatal_error(exc, where, scrub))
                            break
                        results[index] = PublishResult(
                            index, error=_publish_error(exc, f"{where}: event {index}", scrub)
                        )
                        break
                if not index % POLL_EVERY:
                    serve(0)
            left = wait(self._delivery_timeout + 5)
            if left:
                producer.purge(in_queue=True, in_flight=bool(fatal), blocking=False)
                serve(0)
            elif len(refused_batches) > 1 and not fatal:
                # The broker refuses a whole batch when one event in it is larger than the
                # topic's max.message.bytes: nothing of it was written. Send those events one by
                # one so that only the too large ones fail (they land after the others).
                for index in sorted(refused_batches)[:SOLO_RETRY_LIMIT]:
                    results[index] = None
                    args = _produce_args(events[index], partitions)
                    try:
                        produce(topic, on_delivery=partial(delivered, index), **args)
                    except KafkaException as exc:
                        results[index] = PublishResult(
                            index, error=_publish_error(exc, f"{where}: event {index}", scrub)
                        )
                        continue
                    wait(self._delivery_timeout + 5)
                    if fatal:
                        break
            if fatal:
                self._producer = None  # dead: the next publish makes a new one
                error = fatal[0]
                if all(result is None or index in dropped for index, result in enumerate(results)):
                    raise error  # the batch refused whole: no event confirmed, none failed otherwise
                return [
                    result if result is not None and index not in dropped else PublishResult(index, error=error)
                    for index, result in enumerate(results)
                ]
            if not left and not dropped:
                return results  # type: ignore[return-value] # every event has its delivery report
            return [
                result
                if result is not None
                else PublishResult(
                    index,
                    error=Timeout(f"{where}: event {index} was not confirmed within {self._delivery_timeout:g} s"),
                )
                for index, result in enumerate(results)
            ]


_BYTES = (bytes, bytearray, memoryview)


def _plain_event(event: OutgoingEvent) -> bool:
    """A value and key of bytes (or None), nothing else: produced as they are, no more checks."""
    value, key = event.value, event.key
    return (
        (value is None or type(value) is bytes)
        and (key is None or type(key) is bytes)
        and not event.headers
        and event.partition is None
        and event.timestamp is None
    )


def _confirmations() -> Callable[[int, int, int], PublishResult]:
    """``PublishResult(index, partition, offset)`` in half the time: a frozen dataclass's ``__init__``
    sets each field through ``object.__setattr__``, this sets the slots directly (the same object).
    One is made per confirmed event, in the delivery report's callback."""
    new = object.__new__
    slots = vars(PublishResult)
    set_index, set_partition, set_offset, set_error = (
        slots[name].__set__ for name in ("index", "partition", "offset", "error")
    )

    def confirmed(index: int, partition: int, offset: int) -> PublishResult:
        result = new(PublishResult)
        set_index(result, index)
        set_partition(result, partition)
        set_offset(result, offset)
        set_error(result, None)
        return result

    return confirmed


confirmed = _confirmations()


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


def _fatal_error(exc: KafkaException, where: str, scrub: Callable[[str], str]) -> BrokerError:
    """The producer's fatal error, typed, librdkafka's own words kept. Without Write on any topic (and
    IdempotentWrite on the cluster) the broker refuses an idempotent producer its producer id:
    CLUSTER_AUTHORIZATION_FAILED, fatal."""
    err = kafka_error(exc)
    if err is not None and err.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
        error: BrokerError = AccessDenied(
            f"{where}: not authorized to produce: the cluster refused this user a producer id ({describe_error(err)})",
            hint=PRODUCER_ID_HINT,
        )
    else:
        error = map_error(exc, f"{where}: the producer failed for good and was closed")
    message = scrub(str(error))
    return error if message == str(error) else type(error)(message, hint=error.hint)


def _publish_error(exc: BaseException | KafkaError, where: str, scrub: Callable[[str], str]) -> BrokerError:
    err = kafka_error(exc)
    if err is not None and err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
        return Timeout(f"{where}: not confirmed in time (purged from the send queue)")
    error = map_error(exc, where)
    message = scrub(str(error))
    return error if message == str(error) else type(error)(message)
