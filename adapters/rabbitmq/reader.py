"""Reading without taking anything from a real consumer: streams, and taps on exchanges.

Every read has its own channel on the connection, so a channel error ends that read only.

Streams (``x-queue-type=stream``)
    A consumer with QoS (prefetch) set and ``x-stream-offset`` from the Position, acknowledging
    every delivery (a stream consumer gets new deliveries only as it acknowledges: that is also
    the backpressure). Offsets come from each delivery's ``x-stream-offset`` header.

    RabbitMQ 3.x has no AMQP 0-9-1 call that says where a stream ends, and its statistics are
    refreshed only every ~5 s. A bounded read therefore first *probes* the end: a short consumer
    at ``x-stream-offset=last`` receives the last chunk; the end is the offset after the last
    delivery once deliveries pause (:data:`PROBE_GAP_S`), or after :data:`PROBE_BUSY_S` on a stream
    that keeps receiving (then the end is "about now"). A stream is never emptied by
    retention, so when the (stale) message count says it has messages, or this connection
    published to it, the probe waits as long as ``timeout_s`` for the first delivery; otherwise
    only :data:`PROBE_EMPTY_WAIT_S` (a stream filled by someone else less than ~5 s ago whose
    first delivery takes longer than that would be taken for empty).

    Attaching is chunk-granular: the broker starts at the beginning of the chunk that holds the
    requested offset, so deliveries below it are acknowledged and skipped. A timestamp position
    seeks by *chunk* time (when the broker stored it, whole seconds) and then skips events until
    the first whose own timestamp (the AMQP ``timestamp`` property) is at or after the position:
    exact as long as events are not stamped later than the broker stored them.

Exchanges
    A tap: a queue ``workbench.tap.<random>`` declared exclusive and auto-delete (so it vanishes
    with the connection, even when the process is killed), capped with ``x-max-length`` and
    ``x-overflow=drop-head`` (a slow viewer loses its oldest unread events instead of growing the
    broker or refusing the real publishers' messages), bound with the key that catches everything
    for the exchange type, and deleted on close. While a tap exists, messages that no other queue
    would take become routable, so a publisher's ``mandatory`` flag stops reporting them.

    Drops are reported, never silent: every :data:`TAP_CHECK_S` the tap compares what was routed
    into its queue (the management API's ``publish`` count) with what it received and what waits
    in the queue (exact, from a passive declare). The difference is what the cap dropped; the
    first event of the next batch carries the running total in ``metadata["dropped_before"]``.
    It errs low ("at least"), never high: the routed count is refreshed by the broker every few
    seconds, and deliveries on their way to the reader (up to a prefetch window) count as received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiormq import Channel
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp import commands as spec

from workbench.broker import BrokerError, Event, NotFound, Timeout, Unsupported

from .codec import STREAM_OFFSET_HEADER, make_event, stream_offset
from .errors import map_error
from .management import TAP_PREFIX

POLL_S = 0.5  # how often an idle read checks that its consumer was not cancelled by the broker
PROBE_GAP_S = 0.15  # a pause this long (plus a few round trips) ends a probe's burst
PROBE_EMPTY_WAIT_S = 1.0  # how long a probe waits for a stream that may be empty
PROBE_BUSY_S = 1.5  # a probe that keeps receiving (a busy stream) stops this long after it began
PROBE_PREFETCH = 2000
STREAM_PREFETCH_MAX = 500  # measured: larger windows make a 3.10 broker slower to start sending
TAP_PREFETCH_MAX = 1000
TAP_CHECK_S = 5.0  # how often a tap compares what was routed to it with what it received
_STREAM_SKIP = frozenset({STREAM_OFFSET_HEADER})


class ConsumerGone(BrokerError):
    """The channel of a read was closed (by the broker, or with the connection)."""


class Consumer:
    """One ``basic.consume`` on its own channel: deliveries wait in a buffer until taken."""

    def __init__(self, channel: AbstractChannel, prefetch: int, what: str) -> None:
        self.channel = channel
        self.prefetch = prefetch
        self.what = what
        self.tag: str | None = None
        self._buffer: deque[DeliveredMessage] = deque()
        self._arrived = asyncio.Event()
        self._acked = 0

    async def _on_message(self, message: DeliveredMessage) -> None:
        self._buffer.append(message)
        self._arrived.set()

    async def start(self, queue: str, arguments: dict[str, Any] | None) -> None:
        await self.channel.basic_qos(prefetch_count=self.prefetch)
        ok = await self.channel.basic_consume(queue, self._on_message, no_ack=False, arguments=arguments)
        self.tag = ok.consumer_tag

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _check_alive(self) -> None:
        if self.channel.is_closed:
            exc = _closing_exception(self.channel)
            raise ConsumerGone(f"{self.what}: the channel was closed" + (f" ({exc})" if exc else ""))
        # aiormq's AbstractChannel omits ``consumers``; its Channel (what connections open) has it.
        if self.tag is not None and self.tag not in cast(Channel, self.channel).consumers:
            raise NotFound(f"{self.what}: the broker cancelled the read (was the queue deleted?)")

    async def wait(self, timeout: float | None) -> bool:
        """True once a delivery is buffered; False after ``timeout`` s without one (None: forever)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            self._check_alive()
            self._arrived.clear()
            wait_s = POLL_S if deadline is None else min(POLL_S, deadline - loop.time())
            if wait_s <= 0:
                return False
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_s)
            except TimeoutError:
                pass
        return True

    def take(self, n: int) -> list[DeliveredMessage]:
        buffer = self._buffer
        count = min(n, len(buffer))
        return [buffer.popleft() for _ in range(count)]

    async def ack_through(self, message: DeliveredMessage) -> None:
        """Acknowledge everything up to ``message``, one of this consumer's deliveries."""
        delivery = message.delivery
        # basic.consume delivers Basic.Deliver frames only, and the broker always sets their tag.
        assert isinstance(delivery, spec.Basic.Deliver) and delivery.delivery_tag is not None
        await self.ack(delivery.delivery_tag)

    async def ack(self, delivery_tag: int) -> None:
        """Acknowledge everything up to ``delivery_tag`` (never after the channel closed)."""
        if delivery_tag > self._acked and not self.channel.is_closed:
            self._acked = delivery_tag
            await self.channel.basic_ack(delivery_tag, multiple=True)

    async def close(self, timeout: float) -> None:
        if self.channel.is_closed:
            return
        try:
            await asyncio.wait_for(self.channel.close(), timeout)
        except Exception:  # noqa: BLE001  (the connection may be gone already: nothing to free)
            pass


def _closing_exception(channel: AbstractChannel) -> str:
    closing = getattr(channel, "closing", None)
    try:
        if closing is not None and closing.done() and not closing.cancelled():
            exc = closing.exception()
            if exc is not None:
                return str(exc)
    except Exception:  # noqa: BLE001
        pass
    return ""


# --------------------------------------------------------------------------- stream plans


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """How to read a stream for a Position: where to attach, what to skip, where to stop."""

    argument: Any  # the x-stream-offset argument
    first: int | None = None  # skip deliveries below this offset
    end: int | None = None  # stop before this offset (bounded reads)
    min_timestamp: int | None = None  # skip until an event at or after this time (ms)


def needs_end(kind: str, follow: bool) -> bool:
    """Whether the Position needs the stream's end offset first (bounded reads stop there;
    ``last`` counts back from it; an offset is clamped to it)."""
    if kind == "end":
        return False
    return not follow or kind in ("last", "offset")


def plan_stream_read(kind: str, value: int, follow: bool, end: int | None) -> StreamPlan | None:
    """The plan for a Position; None when a bounded read has nothing to return. Pure."""
    bounded_end = None if follow else end
    if kind == "end":
        return StreamPlan("next") if follow else None
    if not follow and (end is None or end <= 0):
        return None  # an empty stream
    if kind == "beginning":
        return StreamPlan("first", end=bounded_end)
    if kind == "offset":
        # Clamped to the end: a follow read from past the end starts at the end (nothing
        # published after the read began is skipped). Below the stream's start the broker
        # attaches at its first chunk.
        start = max(int(value), 0)
        if end is not None:
            start = min(start, end)
        if bounded_end is not None and start >= bounded_end:
            return None
        return StreamPlan(start, first=start, end=bounded_end)
    if kind == "last":
        n = int(value)
        if n <= 0:
            return StreamPlan("next") if follow else None
        start = max((end or 0) - n, 0)
        return StreamPlan(start, first=start, end=bounded_end)
    if kind == "timestamp":
        # x-stream-offset timestamps are whole seconds: floor, then skip what is earlier.
        seconds = int(value) // 1000
        when = dt.datetime.fromtimestamp(max(seconds, 0), dt.UTC)
        return StreamPlan(when, end=bounded_end, min_timestamp=int(value))
    raise ValueError(f"unknown position kind {kind!r}")


# --------------------------------------------------------------------------- probes


ChannelFactory = Callable[[], Awaitable[AbstractChannel]]


async def probe_offsets(
    open_channel: ChannelFactory,
    stream: str,
    *,
    argument: str,
    first_wait: float,
    gap: float,
    limit_s: float,
    only_first: bool,
    what: str,
) -> int | None:
    """The offset of the first delivery (``only_first``) or of the last one of the burst that
    ``x-stream-offset=argument`` delivers; None when nothing came within ``first_wait``."""
    channel = await open_channel()
    consumer = Consumer(channel, 1 if only_first else PROBE_PREFETCH, what)
    loop = asyncio.get_running_loop()
    try:
        await consumer.start(stream, {"x-stream-offset": argument})
        if not await consumer.wait(first_wait):
            return None
        started = loop.time()
        last: int | None = None
        received = 0
        while True:
            batch = consumer.take(consumer.buffered)
            for message in batch:
                offset = stream_offset(message.header.properties)
                if offset is not None:
                    if only_first:
                        return offset
                    last = offset if last is None else max(last, offset)
            if batch:
                received += len(batch)
                await consumer.ack_through(batch[-1])
            if loop.time() - started > limit_s:
                return last  # deliveries keep coming (a busy stream): the end is a moment anyway
            # Once a whole window came, the broker may have paused for our ack: wait longer.
            wait_s = max(gap, 1.0) if received >= consumer.prefetch else gap
            if not await consumer.wait(wait_s):
                return last
    finally:
        await consumer.close(limit_s)


# --------------------------------------------------------------------------- reads


async def read_stream(
    open_channel: ChannelFactory,
    stream: str,
    plan: StreamPlan,
    *,
    follow: bool,
    batch_size: int,
    idle_timeout: float,
    close_timeout: float,
    what: str,
    on_live: Callable[[], None] | None = None,
) -> AsyncGenerator[list[Event], None]:
    """``on_live()`` is told once the consumer is registered (every later publish reaches it)."""
    channel = await open_channel()
    prefetch = min(max(batch_size, 100), STREAM_PREFETCH_MAX)
    consumer = Consumer(channel, prefetch, what)
    first, end = plan.first, plan.end
    seek_ts = plan.min_timestamp  # skip events stamped before it; None once one is not
    try:
        try:
            await consumer.start(stream, {"x-stream-offset": plan.argument})
        except Exception as exc:
            raise _consume_error(exc, what) from None
        if on_live is not None:
            on_live()
        while True:
            if not await consumer.wait(None if follow else idle_timeout):
                raise Timeout(
                    f"{what}: no delivery for {idle_timeout:g} s before the end offset {end} seen when the read began"
                )
            messages = consumer.take(batch_size)
            events: list[Event] = []
            done = False
            for message in messages:
                properties = message.header.properties
                offset = stream_offset(properties)
                if offset is None:
                    continue
                if end is not None and offset >= end:
                    done = True
                    break
                wanted = first is None or offset >= first
                if wanted and seek_ts is not None:
                    stamp = properties.timestamp
                    if stamp is not None and stamp.timestamp() * 1000 < seek_ts:
                        wanted = False
                    else:
                        seek_ts = None
                if wanted:
                    events.append(
                        make_event(stream, offset, message.delivery, properties, message.body, skip=_STREAM_SKIP)
                    )
                if end is not None and offset >= end - 1:
                    done = True  # (also when the last event before the end was skipped)
                    break
            if messages:
                await consumer.ack_through(messages[-1])
            if events:
                yield events
            if done:
                return
    finally:
        await consumer.close(close_timeout)


@dataclass(frozen=True, slots=True)
class TapBinding:
    routing_key: str
    arguments: dict[str, Any] | None = None


def tap_bindings(exchange: str, exchange_type: str | None, existing_keys: Sequence[str]) -> list[TapBinding]:
    """The bindings that catch every message an exchange routes; raises Unsupported. Pure."""
    if exchange in ("", "amq.default"):
        raise Unsupported(
            "the default exchange cannot be bound, so it cannot be tapped",
            hint="tail the stream the messages go to, or tap the exchange the publishers use",
        )
    if exchange_type == "topic":
        return [TapBinding("#")]
    if exchange_type == "fanout":
        return [TapBinding("")]
    if exchange_type == "headers":
        # x-match=all with no header to match: every message matches.
        return [TapBinding("", {"x-match": "all"})]
    if exchange_type == "direct":
        keys = sorted(set(existing_keys))
        if not keys:
            raise Unsupported(
                f"direct exchange {exchange!r} has no bindings: there is no routing key to tap",
                hint="a direct exchange routes by exact key; bind a stream to it and tail that",
            )
        return [TapBinding(k) for k in keys]
    raise Unsupported(
        f"tapping exchange {exchange!r} of type {exchange_type or 'unknown'!r} is not supported",
        hint="bind a stream to it and tail the stream",
    )


def tap_queue_name() -> str:
    return f"{TAP_PREFIX}{uuid.uuid4().hex[:16]}"


async def read_tap(
    open_channel: ChannelFactory,
    exchange: str,
    bindings: Sequence[TapBinding],
    *,
    batch_size: int,
    max_length: int,
    close_timeout: float,
    what: str,
    on_queue: Callable[[str | None], None] = lambda name: None,
    routed: Callable[[str], Awaitable[int | None]] | None = None,
    on_live: Callable[[], None] | None = None,
) -> AsyncGenerator[list[Event], None]:
    """``routed(queue)`` says how many messages were routed into the tap queue (None: unknown);
    without it, drops are not counted. ``on_live()`` is told once the queue is bound and consumed:
    from then on it receives every message the exchange routes."""
    channel = await open_channel()
    queue = tap_queue_name()
    consumer = Consumer(channel, min(max(batch_size, 100), TAP_PREFETCH_MAX), what)
    declared = False
    try:
        try:
            await channel.queue_declare(
                queue,
                exclusive=True,
                auto_delete=True,
                arguments={"x-max-length": max_length, "x-overflow": "drop-head", "x-queue-type": "classic"},
            )
            declared = True
            on_queue(queue)
            for binding in bindings:
                await channel.queue_bind(queue, exchange, routing_key=binding.routing_key, arguments=binding.arguments)
            await consumer.start(queue, None)
        except Exception as exc:
            raise _consume_error(exc, what) from None
        if on_live is not None:
            on_live()
        sequence = 0
        loop = asyncio.get_running_loop()
        dropped = told = 0  # dropped by the cap so far; the total the last mark told
        next_check = loop.time() + TAP_CHECK_S
        while True:
            await consumer.wait(None if routed is None else TAP_CHECK_S)
            messages = consumer.take(batch_size)
            events = []
            for message in messages:
                events.append(make_event(exchange, sequence, message.delivery, message.header.properties, message.body))
                sequence += 1
            if routed is not None and loop.time() >= next_check:
                next_check = loop.time() + TAP_CHECK_S
                # Deliveries on their way to us are in neither figure: at most a prefetch window
                # less what already arrived unacknowledged (the batch taken, the buffer).
                received = sequence + consumer.buffered
                in_flight = max(consumer.prefetch - len(messages) - consumer.buffered, 0)
                dropped = max(dropped, await _tap_dropped(channel, queue, routed, received + in_flight))
            if events and dropped > told:
                told = dropped
                events[0] = dataclasses.replace(events[0], metadata={**events[0].metadata, "dropped_before": told})
            if messages:
                await consumer.ack_through(messages[-1])
            if events:
                yield events
    finally:
        # Auto-delete: cancelling the only consumer deletes the queue (and the broker does not
        # cancel us first, which aiormq would log). Exclusive: it also goes with the connection.
        if declared and not channel.is_closed:
            try:
                if consumer.tag is not None:
                    await asyncio.wait_for(channel.basic_cancel(consumer.tag), close_timeout)
                else:
                    await asyncio.wait_for(channel.queue_delete(queue), close_timeout)
            except Exception:  # noqa: BLE001
                pass
        on_queue(None)
        await consumer.close(close_timeout)


async def _tap_dropped(
    channel: AbstractChannel, queue: str, routed: Callable[[str], Awaitable[int | None]], received: int
) -> int:
    """What the cap dropped from a tap queue so far, at least: routed into it - received (plus
    what may be on its way) - still in it. 0 when a figure is missing (the management API is
    away, the channel closed)."""
    try:
        into = await routed(queue)
        if into is None:
            return 0
        waiting = (await channel.queue_declare(queue, passive=True)).message_count or 0
    except Exception:  # noqa: BLE001 - a figure for a report; the read goes on without it
        return 0
    return max(into - received - waiting, 0)


def _consume_error(exc: BaseException, what: str) -> BrokerError:
    return map_error(exc, what)
