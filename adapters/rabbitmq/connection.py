"""An open connection to one RabbitMQ vhost: AMQP 0-9-1 (aio-pika) plus the management HTTP API.

:class:`RabbitMQConnection` is composed of one mixin per family of verbs, all built on
:class:`~.base.RabbitMQBase` (the state they share, channels, reconnecting, and what a name
means: see ``base.py``):

    ``topology.py``   list_topics, describe_topic, create_topic (streams), delete_topic
    ``publisher.py``  publish: confirms, ``mandatory``, the frame_max check
    ``lag.py``        groups, lag: queues with consumers, their depths and rates
    ``peek.py``       peek: a queue's head, taken and requeued at once
    this module       the class itself, close(), and read(), whose taps belong to the connection
                      (close() removes them)

Reading (the AMQP side is in ``reader.py``) never takes a message from a consumer: a stream is read
at any Position, an exchange is tapped live through a temporary queue, a classic or quorum queue is
refused (its feeding exchange, or ``peek``, is named instead). A follow read of a stream outlives
a broker restart (it reconnects and attaches right after the last event it delivered); a tap
does not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing

from aiormq.abc import AbstractChannel

from workbench.broker import (
    BrokerError,
    Event,
    InvalidRequest,
    NotFound,
    Outage,
    OutageCallback,
    Position,
    Unsupported,
)

from .base import DEFAULT_EXCHANGE_NAMES, RECOVER_FIRST_S, RabbitMQBase, Target
from .lag import GroupsMixin
from .peek import PeekMixin
from .publisher import PublisherMixin
from .reader import (
    StreamPlan,
    needs_end,
    plan_stream_read,
    read_stream,
    read_tap,
    tap_bindings,
)
from .topology import TopologyMixin

log = logging.getLogger("workbench_rabbitmq")


class RabbitMQConnection(TopologyMixin, PublisherMixin, GroupsMixin, PeekMixin, RabbitMQBase):
    """The contract's Connection for RabbitMQ: the parts above, plus close() and read()."""

    def __repr__(self) -> str:
        return f"<RabbitMQConnection {self._ep.display()} {'closed' if self._closed else 'open'}>"

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            if not self._amqp.is_closed and self._taps:
                taps = list(self._taps)

                async def drop(ch: AbstractChannel) -> None:
                    for queue in taps:
                        await ch.queue_delete(queue)

                try:
                    await self._throwaway("removing taps", drop)
                except BrokerError:
                    pass  # exclusive queues: they go with the connection below anyway
            self._closed = True
            try:
                await asyncio.wait_for(self._amqp.close(), self._timeout)
            except Exception:  # noqa: BLE001
                pass
            if self._mgmt is not None:
                await self._mgmt.aclose()
        finally:
            self._closed = True
            self._closing.set_result(None)

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
        return self._read(topic, start, parts, follow, batch_size, Outage(on_outage), on_live if follow else None)

    async def _read(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
        outage: Outage,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidRequest(f"{self._where}: batch_size must be an int >= 1, got {batch_size!r}")
        target = await self._resolve(topic)
        if partitions is not None:
            bad = [p for p in partitions if p != 0]
            if bad:
                raise NotFound(f"{self._where}: {target.label} has no partition {bad[0]!r} (only partition 0)")
            if not partitions:
                return
        if target.kind == "queue":
            if target.type is None:
                self._need_management(f"telling whether {target.name!r} is a stream or a queue")
            raise await self._queue_not_read(target)
        reader = self._read_exchange if target.kind == "exchange" else self._read_stream  # one signature
        async with aclosing(reader(target, start, follow, batch_size, outage, on_live)) as batches:
            async for batch in batches:
                yield batch

    async def _queue_not_read(self, target: Target) -> Unsupported:
        """Why a classic or quorum queue is not read, and what shows its messages instead:
        peek, or a tap on the exchange that feeds it (named when the bindings say which)."""
        feeders: list[str] = []
        if self._mgmt is not None:
            try:
                bindings = await self._mgmt_call(self._mgmt.queue_bindings(target.name))
                feeders = sorted({b.get("source") for b in bindings if b.get("source")})
            except BrokerError:
                pass  # the refusal stands without the name
        exchange = feeders[0] if len(feeders) == 1 else "EXCHANGE"
        return Unsupported(
            f"{self._where}: reading {target.type or ''} queue {target.name!r} would take its "
            "messages from its consumers",
            hint=f"`workbench peek {target.name}` shows the messages at its head (taken and requeued at "
            f"once); `workbench tail {exchange} --follow` taps the exchange that feeds it; or use a stream",
        )

    async def _read_stream(
        self,
        target: Target,
        start: Position,
        follow: bool,
        batch_size: int,
        outage: Outage,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        """A stream read; a follow read that loses the broker reconnects and attaches again
        right after the last event it delivered (no gap, no duplicate). One that delivered
        nothing yet attaches as it first did (from ``end``: at the end as it is then)."""
        end = await self._stream_end(target.name) if needs_end(start.kind, follow) else None
        plan = plan_stream_read(start.kind, start.value, follow, end)
        what = f"{self._where}: stream {target.name!r}"
        recovered_at: float | None = None
        while plan is not None:
            batches = read_stream(
                self._channel,
                target.name,
                plan,
                follow=follow,
                batch_size=batch_size,
                idle_timeout=self._timeout,
                close_timeout=self._timeout,
                what=what,
                on_live=on_live,
            )
            on_live = None  # told once: a reattach after an outage is not news
            try:
                async with aclosing(batches):  # closing this read closes the consumer's channel at once
                    async for batch in batches:
                        yield batch
                        after = batch[-1].offset + 1
                        plan = StreamPlan(after, first=after)
                return
            except Exception as exc:  # noqa: BLE001
                lost = await self._lost(exc, follow)
                error = lost or self._error(exc, f"reading stream {target.name!r}")
                # A restarted broker recovers its streams a moment after it accepts connections.
                settling = recovered_at is not None and time.monotonic() - recovered_at < self._timeout
                if lost is None and not (settling and isinstance(error, NotFound)):
                    raise error from None
            if lost is None:
                await asyncio.sleep(RECOVER_FIRST_S)
                continue
            await self._resume(lost, outage)
            recovered_at = time.monotonic()
            outage.end()

    async def _read_exchange(
        self,
        target: Target,
        start: Position,
        follow: bool,
        batch_size: int,
        outage: Outage,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        """A tap. It does not outlive the broker (``outage`` stays unused): a new tap would miss
        what was routed while none existed, so the read ends with the error instead."""
        if target.name in DEFAULT_EXCHANGE_NAMES:
            tap_bindings(target.name, "direct", ())  # raises Unsupported, with the alternatives
        if start.kind != "end":
            raise Unsupported(
                f"{self._where}: exchanges have no history: use --follow from end, or tail a stream",
                hint=f"{target.label} can only be tapped live (Position end, follow)",
            )
        if not follow:
            return  # nothing old, and a bounded read from the end ends at once
        if target.type is None:
            self._need_management(f"tapping exchange {target.name!r} (its type decides the binding)")
        keys: list[str] = []
        if target.type == "direct" and self._mgmt is not None:
            source = await self._mgmt_call(self._mgmt.exchange_bindings(target.name, "source"))
            keys = [b.get("routing_key", "") for b in source]
        bindings = tap_bindings(target.name, target.type, keys)

        mine: set[str] = set()

        def track(queue: str | None) -> None:
            """Remember the tap queue while it exists, so close() can remove it."""
            if queue is None:
                self._taps.difference_update(mine)
                mine.clear()
            else:
                mine.add(queue)
                self._taps.add(queue)

        batches = read_tap(
            self._channel,
            target.name,
            bindings,
            batch_size=batch_size,
            max_length=self._tap_max_length,
            close_timeout=self._timeout,
            what=f"{self._where}: tap on {target.label}",
            on_queue=track,
            routed=self._routed_into if self._mgmt is not None else None,
            on_live=on_live,
        )
        try:
            async with aclosing(batches):  # closing this read removes the tap at once
                async for batch in batches:
                    yield batch
        except BrokerError as exc:
            raise self._error(exc, "tapping") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, f"tapping {target.label}") from None

    async def _routed_into(self, queue: str) -> int | None:
        """How many messages were routed into a queue (the management statistics: seconds old)."""
        assert self._mgmt is not None
        item = await self._mgmt.get(self._mgmt.queue_path(queue), {"columns": "message_stats"}, missing_ok=True)
        stats = (item or {}).get("message_stats") or {}
        return stats.get("publish") if isinstance(stats.get("publish"), int) else None
