"""An open connection to one RabbitMQ vhost: AMQP 0-9-1 (aio-pika) plus the management HTTP API.

Names
    A topic name is an exchange, a queue or a stream of the vhost. RabbitMQ lets an exchange and
    a queue share a name: then the queue (or stream) is meant, and ``exchange:NAME`` names the
    exchange (``queue:NAME`` / ``stream:NAME`` work too). The nameless default exchange is
    ``amq.default``; it is not listed.

Channels
    Anything that may fail (passive declares, declare, delete, bind) runs on a throwaway channel,
    so a channel error never poisons the connection. Publishing has one confirm channel, opened
    again when an error closed it. Every read has its own channel (see ``reader.py``).

Lag (``groups()`` / ``lag()``): a group is a classic or quorum queue that has consumers. The
    contract's figures are offsets; a queue has a depth and counters, mapped as::

        committed = messages consumed from the queue (acked + auto-acked + got without ack,
                    cumulative since the broker started counting)
        end       = committed + depth (ready + unacknowledged)     start = committed

    so ``lag`` is the depth (what is in flight counts as lag), ``committed`` moves exactly when
    consumers make progress (which ``workbench.lag`` turns into STALL / OK verdicts) and the
    end's history gives the time-lag estimate. The counters come from the management
    statistics (refreshed every ~5 s); a broker restart resets them, and messages that leave
    a queue otherwise (expired, dropped by a length limit, purged) lower the end. The raw figures
    (ready, unacknowledged, consumers, consumer capacity, per-second rates) are in
    :attr:`GroupLag.metadata`. Streams have no group: their readers' offsets are not visible over
    AMQP 0-9-1, so they are not listed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import aio_pika
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp import commands as spec

from workbench.broker import (
    AccessDenied,
    BrokerError,
    Connection,
    Event,
    GroupInfo,
    GroupLag,
    GroupMember,
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
    Unroutable,
    Unsupported,
)

from . import codec
from .errors import map_error
from .management import (
    TAP_PREFIX,
    Management,
    arguments_config,
    binding_dict,
    counters,
    depth,
    exchange_info,
    exchange_metadata,
    is_internal_name,
    queue_info,
    queue_metadata,
    rates,
)
from .options import Endpoint
from .reader import (
    PROBE_BUSY_S,
    PROBE_EMPTY_WAIT_S,
    PROBE_GAP_S,
    StreamPlan,
    needs_end,
    plan_stream_read,
    probe_offsets,
    read_stream,
    read_tap,
    tap_bindings,
)

log = logging.getLogger("adapters.rabbitmq")

#: What _passive_queue() says of another connection's exclusive queue.
LOCKED = spec.Queue.DeclareOk(queue="", message_count=0, consumer_count=0)
RESOLVE_TTL_S = 5.0  # how long publish() trusts what a name is
RECOVER_FIRST_S = 0.5  # a follow read that lost the broker tries to reconnect after this long,
RECOVER_MAX_S = 2.0  # then every 1 s, 2 s, 2 s ... until the broker is back
MAX_NAME_BYTES = 255
DEFAULT_FRAME_MAX = 131_072  # RabbitMQ's default, when the negotiated value is not at hand
DEFAULT_EXCHANGE_NAMES = ("", "amq.default")
#: Stream arguments create_topic() accepts in ``config`` (strings converted to the broker's types).
STREAM_INT_ARGS = {"x-max-length-bytes", "x-stream-max-segment-size-bytes", "x-initial-cluster-size"}
STREAM_STR_ARGS = {"x-max-age", "x-queue-leader-locator"}
_PREFIXES = {"exchange:": "exchange", "queue:": "queue", "stream:": "queue"}


@dataclass(frozen=True, slots=True)
class Target:
    """What a name resolved to."""

    kind: str  # exchange | queue | stream
    name: str
    type: str | None = None  # exchange type, or queue type (classic, quorum, stream)
    item: Mapping[str, Any] | None = None  # the management API's object, when known

    @property
    def label(self) -> str:
        if self.kind == "exchange" and self.name in DEFAULT_EXCHANGE_NAMES:
            return "the default exchange"
        return f"{self.kind} {self.name!r}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RabbitMQConnection(Connection):
    def __init__(
        self,
        *,
        endpoint: Endpoint,
        amqp: aio_pika.abc.AbstractConnection,
        management: Management | None,
        warnings: Sequence[str],
        settings: Mapping[str, Any],
        rtt_s: float,
        scrub: Any,
        reconnect: Callable[[], Awaitable[aio_pika.abc.AbstractConnection]] | None = None,
    ) -> None:
        self._ep = endpoint
        self._where = endpoint.where
        self._amqp = amqp
        self._reconnect = reconnect
        self._recover_lock = asyncio.Lock()
        self._mgmt = management
        self.warnings: tuple[str, ...] = tuple(warnings)
        self._timeout = settings["timeout_s"]
        self._delivery_timeout = settings["delivery_timeout_s"]
        self._tap_max_length = settings["tap_max_length"]
        self._window = settings["publish_window"]
        self._max_bytes = settings["max_message_bytes"]
        self._rtt = rtt_s
        self._scrub = scrub
        self._publisher: AbstractChannel | None = None
        self._publisher_lock = asyncio.Lock()
        self._resolved: dict[str, tuple[float, Target]] = {}
        self._taps: set[str] = set()
        self._filled: set[str] = set()  # streams this connection published to
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<RabbitMQConnection {self._ep.display()} {'closed' if self._closed else 'open'}>"

    @property
    def degraded(self) -> bool:
        """True when the management API is not usable (listing, groups, lag, reads are not)."""
        return self._mgmt is None

    # ------------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"{self._where}: the connection is closed")
        if self._amqp.is_closed:
            raise Unreachable(f"{self._where}: the AMQP connection was lost", hint="connect again")

    async def _recover(self) -> None:
        """Open a new AMQP connection after the broker was lost (follow reads resume on it; the
        publisher's channel is opened again when needed). Raises while the broker stays away."""
        async with self._recover_lock:
            if self._closed or self._reconnect is None:
                raise BrokerError(f"{self._where}: the connection is closed")
            if await self._alive():
                return  # another read recovered it already
            old, self._amqp = self._amqp, await self._reconnect()  # type: ignore[misc]
            self._publisher = None
            try:
                await asyncio.wait_for(old.close(), self._timeout)
            except Exception:  # noqa: BLE001 - it is gone already
                pass

    async def _alive(self) -> bool:
        """Whether the AMQP connection still works: it opens a channel. (aio-pika may not mark
        a connection closed when the broker shuts down, and the broker closes channels first.)"""
        if self._amqp.is_closed:
            return False
        try:
            channel = await self._channel()
        except BrokerError:
            return False
        await _close_channel(channel, self._timeout)
        return True

    async def _resume(self, error: BrokerError, outage: Outage) -> None:
        """After a follow read lost the broker: report it, reconnect until the broker is back."""
        outage.begin(error)
        delay = RECOVER_FIRST_S
        while True:
            await asyncio.sleep(delay)
            try:
                await self._recover()
                return
            except BrokerError:
                if self._closed:
                    raise
            delay = min(delay * 2, RECOVER_MAX_S)

    async def _lost(self, exc: BaseException, follow: bool) -> BrokerError | None:
        """The error when a follow read may resume after it (the connection failed, not just the
        read's channel), else None. The broker closes channels before the connection when it
        shuts down, so a closed channel is checked by opening another one."""
        if not follow or self._closed or self._reconnect is None or await self._alive():
            return None
        said = exc if isinstance(exc, BrokerError) else map_error(exc, f"{self._where}: reading", self._scrub)
        return Unreachable(str(said), hint="the read reconnects by itself")

    def _error(self, exc: BaseException, what: str) -> BrokerError:
        if self._closed:
            return BrokerError(f"{self._where}: {what}: the connection is closed")
        if self._amqp.is_closed:
            return Unreachable(f"{self._where}: {what}: the AMQP connection was lost", hint="connect again")
        if isinstance(exc, BrokerError):
            return exc
        return map_error(exc, f"{self._where}: {what}", self._scrub)

    async def _channel(self, **kwargs: Any) -> AbstractChannel:
        """A fresh channel (aio-pika's transport, aiormq) on the connection."""
        self._check_open()
        transport = self._amqp.transport
        if transport is None:
            raise Unreachable(f"{self._where}: the AMQP connection was lost", hint="connect again")
        kwargs.setdefault("publisher_confirms", False)
        try:
            return await asyncio.wait_for(
                transport.connection.channel(timeout=self._timeout, **kwargs), self._timeout + 1
            )
        except TimeoutError:
            raise Timeout(f"{self._where}: opening a channel: no answer within {self._timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, "opening a channel") from None

    async def _throwaway(self, what: str, op: Any) -> Any:
        """Run ``await op(channel)`` on a channel of its own, closed afterwards."""
        channel = await self._channel()
        try:
            return await asyncio.wait_for(op(channel), self._timeout)
        except TimeoutError:
            raise Timeout(f"{self._where}: {what}: no answer within {self._timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, what) from None
        finally:
            if not channel.is_closed:
                try:
                    await asyncio.wait_for(channel.close(), self._timeout)
                except Exception:  # noqa: BLE001
                    pass

    async def _passive_queue(self, name: str) -> spec.Queue.DeclareOk | None:
        """The queue's DeclareOk (exact ready and consumer counts), None when there is none.

        An exclusive queue of another connection cannot be declared, not even passively
        (RESOURCE_LOCKED): it exists, its counts are unknown here (:data:`LOCKED`).
        """

        async def op(ch: AbstractChannel) -> Any:
            return await ch.queue_declare(name, passive=True)

        try:
            return await self._throwaway(f"looking up queue {name!r}", op)
        except NotFound:
            return None
        except AccessDenied as exc:
            if "RESOURCE_LOCKED" in str(exc):
                return LOCKED
            raise

    async def _passive_exchange(self, name: str) -> bool:
        async def op(ch: AbstractChannel) -> Any:
            return await ch.exchange_declare(name, passive=True)

        try:
            await self._throwaway(f"looking up exchange {name!r}", op)
            return True
        except NotFound:
            return False

    def _need_management(self, what: str) -> Management:
        if self._mgmt is None:
            raise Unsupported(
                f"{self._where}: {what} needs the management API, which is not available: "
                + "; ".join(self.warnings),
                hint="enable the rabbitmq_management plugin, or set management_url / management_user",
            )
        return self._mgmt

    async def _mgmt_call(self, coro: Any) -> Any:
        try:
            return await coro
        except BrokerError as exc:
            raise type(exc)(self._scrub(str(exc)), hint=exc.hint) from None

    # ------------------------------------------------------------------ names

    async def _resolve(self, name: str, *, cached: bool = False) -> Target:
        """What ``name`` is (queue or stream first, then exchange); NotFound otherwise."""
        self._check_open()
        if not isinstance(name, str):
            raise InvalidRequest(f"{self._where}: a topic name must be str, got {type(name).__name__}")
        if cached:
            hit = self._resolved.get(name)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        target = await self._lookup(name)
        self._resolved[name] = (time.monotonic() + RESOLVE_TTL_S, target)
        return target

    async def _lookup(self, name: str) -> Target:
        if name in DEFAULT_EXCHANGE_NAMES:
            return Target("exchange", "", "direct", {"name": "", "type": "direct", "durable": True})
        target = await self._find_queue(name) or await self._find_exchange(name)
        if target is not None:
            return target
        for prefix, kind in _PREFIXES.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                rest = name[len(prefix) :]
                found = await (self._find_exchange(rest) if kind == "exchange" else self._find_queue(rest))
                if found is not None:
                    return found
        raise NotFound(
            f"{self._where}: no exchange, queue or stream named {name!r} in vhost {self._ep.vhost!r}"
        )

    async def _find_queue(self, name: str) -> Target | None:
        if self._mgmt is not None:
            item = await self._mgmt_call(self._mgmt.queue(name))
            if item is not None:
                qtype = item.get("type") or "classic"
                return Target("stream" if qtype == "stream" else "queue", name, qtype, item)
        if await self._passive_queue(name) is None:
            return None
        if self._mgmt is not None:  # the statistics database may lag behind a fresh declare
            for _ in range(10):
                await asyncio.sleep(0.1)
                item = await self._mgmt_call(self._mgmt.queue(name))
                if item is not None:
                    qtype = item.get("type") or "classic"
                    return Target("stream" if qtype == "stream" else "queue", name, qtype, item)
        return Target("queue", name, None, None)  # type unknown

    async def _find_exchange(self, name: str) -> Target | None:
        if self._mgmt is not None:
            item = await self._mgmt_call(self._mgmt.exchange(name))
            if item is not None:
                return Target("exchange", name, item.get("type"), item)
        if not await self._passive_exchange(name):
            return None
        return Target("exchange", name, None, None)

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

    # ------------------------------------------------------------------ topics

    async def list_topics(self) -> list[TopicInfo]:
        self._check_open()
        mgmt = self._need_management("listing exchanges, queues and streams")
        exchanges, queues = await asyncio.gather(
            self._mgmt_call(mgmt.exchanges()), self._mgmt_call(mgmt.queues())
        )
        infos = [exchange_info(x) for x in exchanges if x.get("name")]
        infos.extend(queue_info(q) for q in queues)
        infos.sort(key=lambda t: (t.name, t.kind))
        return infos

    async def describe_topic(self, name: str) -> TopicInfo:
        target = await self._resolve(name)
        if target.kind == "exchange":
            return await self._describe_exchange(target)
        if target.kind == "stream":
            return await self._describe_stream(target)
        return await self._describe_queue(target)

    def _warning_meta(self) -> dict[str, Any]:
        return {"warning": "; ".join(self.warnings)} if self.warnings else {}

    async def _describe_exchange(self, target: Target) -> TopicInfo:
        item = dict(target.item or {"name": target.name, "type": target.type})
        meta = exchange_metadata(item)
        if target.name == "":
            meta["note"] = (
                "the default exchange routes to the queue named by the routing key; it cannot be "
                "bound or tapped"
            )
        elif self._mgmt is not None:
            source, dest = await asyncio.gather(
                self._mgmt_call(self._mgmt.exchange_bindings(target.name, "source")),
                self._mgmt_call(self._mgmt.exchange_bindings(target.name, "destination")),
            )
            meta["bindings"] = [binding_dict(b) for b in source]
            meta["bound_from"] = [binding_dict(b) for b in dest]
            try:
                keys = [b.get("routing_key", "") for b in source]
                meta["tap"] = [
                    {"routing_key": b.routing_key, "arguments": b.arguments or {}}
                    for b in tap_bindings(target.name, target.type, keys)
                ]
                meta["read_notice"] = (
                    "while a tap is bound, messages no other queue takes become routable "
                    "(a publisher's mandatory flag stops reporting them)"
                )
            except Unsupported as exc:
                meta["tap"] = None
                meta["read_notice"] = str(exc)
        if meta.get("rates"):
            meta["statistics"] = "rates are management statistics, refreshed every ~5 s: up to ~5 s old"
        meta.update(self._warning_meta())
        return TopicInfo(
            name=target.name or "amq.default",
            kind="exchange",
            partitions=(),
            config=arguments_config(item.get("arguments")),
            internal=is_internal_name(target.name or "amq.default") or bool(item.get("internal")),
            metadata=meta,
        )

    async def _describe_queue(self, target: Target) -> TopicInfo:
        declared = await self._passive_queue(target.name)
        if declared is None:
            raise NotFound(f"{self._where}: queue {target.name!r} does not exist")
        item = dict(target.item or {"name": target.name, "type": target.type})
        meta = queue_metadata(item)
        if declared is LOCKED:
            meta["note"] = "exclusive to another connection: figures from the statistics"
            count = depth(item)
        else:
            # Fresh figures from the declare (the statistics can be ~5 s old).
            meta["messages_ready"] = declared.message_count
            meta["consumers"] = declared.consumer_count
            unacked = item.get("messages_unacknowledged")
            count = declared.message_count + (unacked if isinstance(unacked, int) else 0)
        meta["messages"] = count
        meta["offsets"] = "0..depth: the messages in the queue now (ready + unacknowledged)"
        meta["statistics"] = (
            "messages_unacknowledged, message_bytes, rates and counters are management statistics, "
            "refreshed every ~5 s: up to ~5 s old"
            + ("" if declared is LOCKED else "; messages_ready and consumers are exact (a passive declare)")
        )
        meta["peek_notice"] = _peek_notice(item.get("type"))
        meta.update(await self._queue_bindings_meta(target.name))
        return TopicInfo(
            name=target.name,
            kind="queue",
            partitions=(PartitionInfo(0, 0, count),),
            config=arguments_config(item.get("arguments")),
            internal=is_internal_name(target.name),
            metadata=meta,
        )

    async def _queue_bindings_meta(self, name: str) -> dict[str, Any]:
        """A queue's or stream's bindings (when the management API is there) and any warnings."""
        meta: dict[str, Any] = {}
        if self._mgmt is not None:
            meta["bindings"] = [binding_dict(b) for b in await self._mgmt_call(self._mgmt.queue_bindings(name))]
        meta.update(self._warning_meta())
        return meta

    async def _describe_stream(self, target: Target) -> TopicInfo:
        declared = await self._passive_queue(target.name)
        if declared is None:
            raise NotFound(f"{self._where}: stream {target.name!r} does not exist")
        hint = self._known_nonempty(target.name, declared)
        start, end = await asyncio.gather(
            self._probe(target.name, "first", nonempty=hint, only_first=True),
            self._probe(target.name, "last", nonempty=hint, only_first=False),
        )
        first = 0 if start is None else start
        nxt = first if end is None else end + 1
        item = dict(target.item or {"name": target.name, "type": "stream"})
        meta = queue_metadata(item)
        meta["offsets"] = "probed: the first delivery at 'first', the last one of the chunk at 'last'"
        meta["statistics"] = (
            "messages, rates and counters are management statistics, refreshed every ~5 s: up to ~5 s old; "
            "the offsets are exact (probed)"
        )
        meta.update(await self._queue_bindings_meta(target.name))
        return TopicInfo(
            name=target.name,
            kind="stream",
            partitions=(PartitionInfo(0, first, max(nxt, first)),),
            config=arguments_config(item.get("arguments")),
            internal=is_internal_name(target.name),
            metadata=meta,
        )

    def _known_nonempty(self, stream: str, declared: spec.Queue.DeclareOk) -> bool:
        """Whether the stream surely holds events: its message count (a statistic, up to ~5 s
        old, but a stream never shrinks to empty) or a publish through this connection."""
        if stream in self._filled:
            return True
        return declared is not LOCKED and declared.message_count > 0

    async def _probe(self, stream: str, argument: str, *, nonempty: bool, only_first: bool) -> int | None:
        first_wait = self._timeout if nonempty else max(PROBE_EMPTY_WAIT_S, 10 * self._rtt)
        try:
            return await probe_offsets(
                self._channel,
                stream,
                argument=argument,
                first_wait=first_wait,
                gap=PROBE_GAP_S + 4 * self._rtt,
                limit_s=min(PROBE_BUSY_S + 10 * self._rtt, self._timeout),
                only_first=only_first,
                what=f"{self._where}: stream {stream!r}",
            )
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, f"probing the offsets of stream {stream!r}") from None

    async def _stream_end(self, stream: str) -> int:
        """The offset after the last event of ``stream`` now (0 when it is empty)."""
        declared = await self._passive_queue(stream)
        if declared is None:
            raise NotFound(f"{self._where}: stream {stream!r} does not exist")
        nonempty = self._known_nonempty(stream, declared)
        last = await self._probe(stream, "last", nonempty=nonempty, only_first=False)
        return 0 if last is None else last + 1

    async def create_topic(
        self, name: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> TopicInfo:
        """Declare a durable stream (``x-queue-type=stream``); config: stream arguments."""
        self._check_open()
        where = self._where
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"{where}: a stream name must be a non-empty string, got {name!r}")
        try:
            raw = name.encode()
        except UnicodeEncodeError:
            raise InvalidRequest(f"{where}: invalid stream name {name!r}") from None
        if len(raw) > MAX_NAME_BYTES or name.startswith("amq.") or any(ord(c) < 32 for c in name):
            raise InvalidRequest(
                f"{where}: invalid stream name {name!r} (at most {MAX_NAME_BYTES} bytes, no control "
                "characters, not starting with 'amq.')"
            )
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidRequest(f"{where}: partitions must be an int >= 1, got {partitions!r}")
        if partitions != 1:
            raise InvalidRequest(
                f"{where}: a RabbitMQ stream has exactly one partition (asked for {partitions})",
                hint="super streams (partitioned streams) are not supported yet",
            )
        arguments: dict[str, Any] = {"x-queue-type": "stream"}
        for key, value in (config or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidRequest(f"{where}: stream {name!r}: config keys and values must be str")
            if key in STREAM_INT_ARGS:
                try:
                    arguments[key] = int(value)
                except ValueError:
                    raise InvalidRequest(f"{where}: stream argument {key} must be an integer") from None
            elif key in STREAM_STR_ARGS:
                arguments[key] = value
            else:
                known = ", ".join(sorted(STREAM_INT_ARGS | STREAM_STR_ARGS))
                raise InvalidRequest(f"{where}: unknown stream argument {key!r} (known: {known})")
        if await self._passive_queue(name) is not None:
            raise InvalidRequest(f"{where}: a queue or stream named {name!r} already exists")

        async def declare(ch: AbstractChannel) -> Any:
            return await ch.queue_declare(name, durable=True, arguments=arguments)

        await self._throwaway(f"creating stream {name!r}", declare)
        item = {"name": name, "type": "stream", "durable": True, "arguments": arguments}
        self._resolved[name] = (time.monotonic() + RESOLVE_TTL_S, Target("stream", name, "stream", item))
        return TopicInfo(
            name=name,
            kind="stream",
            partitions=(PartitionInfo(0, 0, 0),),
            config=arguments_config(arguments),
            metadata={"type": "stream", "durable": True, "arguments": arguments},
        )

    async def delete_topic(self, name: str) -> None:
        """Delete a queue or stream (messages included). Exchanges are not deleted."""
        target = await self._resolve(name)
        self._resolved.pop(name, None)
        self._filled.discard(target.name)
        if target.kind == "exchange":
            raise Unsupported(
                f"{self._where}: {target.label} is an exchange; only queues and streams are deleted here"
            )

        async def delete(ch: AbstractChannel) -> Any:
            return await ch.queue_delete(target.name)

        await self._throwaway(f"deleting {target.label}", delete)

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
        return self._read(topic, start, parts, follow, batch_size, Outage(on_outage))

    async def _read(
        self,
        topic: str,
        start: Position,
        partitions: list[int] | None,
        follow: bool,
        batch_size: int,
        outage: Outage,
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
        if target.kind == "exchange":
            async with aclosing(self._read_exchange(target, start, follow, batch_size, outage)) as batches:
                async for batch in batches:
                    yield batch
            return
        if target.kind == "queue":
            if target.type is None:
                self._need_management(f"telling whether {target.name!r} is a stream or a queue")
            raise await self._queue_not_read(target)
        async with aclosing(self._read_stream(target, start, follow, batch_size, outage)) as batches:
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
        self, target: Target, start: Position, follow: bool, batch_size: int, outage: Outage
    ) -> AsyncIterator[list[Event]]:
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
            )
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
        self, target: Target, start: Position, follow: bool, batch_size: int, outage: Outage
    ) -> AsyncIterator[list[Event]]:
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

    # ------------------------------------------------------------------ peek

    async def peek(self, topic: str, count: int) -> list[Event]:
        """Up to ``count`` messages of a classic or quorum queue, through the management API.

        The broker takes them and requeues them at once (``ack_requeue_true``): RabbitMQ puts a
        requeued message back at its place (closer to the head if other consumers took messages
        meanwhile), so the order stays; what changes is the redelivered flag (and a quorum
        queue's delivery count).
        """
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidRequest(f"{self._where}: peek count must be an int >= 1, got {count!r}")
        target = await self._resolve(topic)
        if target.kind != "queue":
            raise Unsupported(
                f"{self._where}: {target.label} cannot be peeked: only classic and quorum queues are",
                hint=f"read it with `workbench tail {topic}{' --follow' if target.kind == 'exchange' else ''}`",
            )
        mgmt = self._need_management(f"peeking queue {target.name!r}")
        messages = await self._mgmt_call(mgmt.get_messages(target.name, count, self._max_bytes))
        return [codec.management_event(target.name, i, m) for i, m in enumerate(messages)]

    # ------------------------------------------------------------------ publish

    async def _publish_channel(self) -> AbstractChannel:
        async with self._publisher_lock:
            channel = self._publisher
            if channel is None or channel.is_closed:
                channel = await self._channel(publisher_confirms=True, on_return_raises=False)
                self._publisher = channel
            return channel

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        """Confirmed publishing with ``mandatory`` set; one result per event, in order.

        To a queue or stream through the default exchange (routing key = its name), to an
        exchange with the event's key as routing key. Offsets: None (confirms carry none).
        """
        self._check_open()
        events = list(events)
        if not events:
            return []
        target = await self._resolve(topic, cached=True)
        to_exchange = target.kind == "exchange"
        exchange = target.name if to_exchange else ""
        results: list[PublishResult | None] = [None] * len(events)
        jobs: list[tuple[int, bytes, str, spec.Basic.Properties]] = []
        for i, event in enumerate(events):
            try:
                jobs.append((i, *self._prepare(i, event, target, to_exchange)))
            except InvalidRequest as exc:
                results[i] = PublishResult(i, error=exc)
        if jobs:
            channel = await self._publish_channel()
            failure: list[BrokerError] = []
            queue = iter(jobs)

            async def worker() -> None:
                for i, body, routing_key, properties in queue:
                    if failure and channel.is_closed:
                        results[i] = PublishResult(i, error=failure[0])
                        continue
                    results[i] = await self._publish_one(
                        channel, i, target, exchange, routing_key, body, properties, failure
                    )

            await asyncio.gather(*(worker() for _ in range(min(self._window, len(jobs)))))
            if target.kind == "stream" and any(r is not None and r.ok for r in results):
                self._filled.add(target.name)
        return [r if r is not None else PublishResult(i, error=BrokerError("not published")) for i, r in enumerate(results)]

    def _prepare(
        self, i: int, event: OutgoingEvent, target: Target, to_exchange: bool
    ) -> tuple[bytes, str, spec.Basic.Properties]:
        where = self._where
        if not isinstance(event, OutgoingEvent):
            raise InvalidRequest(f"{where}: event {i} is not an OutgoingEvent")
        if event.partition not in (None, 0):
            raise InvalidRequest(
                f"{where}: event {i}: {target.label} has one partition (0), not {event.partition!r}"
            )
        value = event.value
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidRequest(f"{where}: event {i}: the value must be bytes or None")
        body = b"" if value is None else bytes(value)
        if len(body) > self._max_bytes:
            raise InvalidRequest(
                f"{where}: event {i}: {len(body)} bytes is larger than the broker accepts "
                f"({self._max_bytes} bytes)",
                hint="the max_message_bytes option should match the broker's max_message_size",
            )
        key = event.key
        if key is not None and not isinstance(key, (bytes, bytearray, memoryview)):
            raise InvalidRequest(f"{where}: event {i}: the key must be bytes or None")
        if to_exchange:
            routing_key = ""
            if key:
                routing_key = _routing_key(bytes(key), i, where)
            key_header = key is not None and not key
        else:
            routing_key = target.name
            key_header = True
        properties = codec.properties_for(event, key_header=key_header)
        self._check_header_frame(i, event, len(body), properties)
        return body, routing_key, properties

    def _frame_max(self) -> int:
        """The largest frame the broker accepts on this connection (0: no limit), as negotiated."""
        transport = self._amqp.transport
        tune = getattr(getattr(transport, "connection", None), "connection_tune", None)
        value = getattr(tune, "frame_max", None)
        return value if isinstance(value, int) else DEFAULT_FRAME_MAX

    def _check_header_frame(
        self, i: int, event: OutgoingEvent, body_size: int, properties: spec.Basic.Properties
    ) -> None:
        """AMQP sends an event's properties and headers in one frame, which may not exceed the
        frame_max; the broker answers a larger one by closing the whole connection (frame_too_large),
        so refuse such an event here, alone, naming the limit."""
        frame_max = self._frame_max()
        if not frame_max or not codec.may_exceed_frame(event, frame_max):
            return
        size = codec.header_frame_size(body_size, properties)
        if size > frame_max:
            headers = len(event.headers or ())
            raise InvalidRequest(
                f"{self._where}: event {i}: its {headers:,} header(s) and properties take {size:,} bytes "
                f"in AMQP's header frame, more than the broker's frame_max ({frame_max:,} bytes): "
                "AMQP cannot split that frame",
                hint="send fewer or smaller headers (or move them into the value); frame_max is set in rabbitmq.conf",
            )

    async def _publish_one(
        self,
        channel: AbstractChannel,
        i: int,
        target: Target,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        failure: list[BrokerError],
    ) -> PublishResult:
        try:
            confirm = await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
                timeout=self._delivery_timeout,
            )
        except TimeoutError:
            return PublishResult(
                i,
                error=Timeout(
                    f"{self._where}: event {i} to {target.label}: no confirm within "
                    f"{self._delivery_timeout:g} s",
                    hint="the broker may be blocking publishers (memory or disk alarm)",
                ),
            )
        except Exception as exc:  # noqa: BLE001
            error = self._error(exc, f"publishing to {target.label}")
            if channel.is_closed and not failure:
                failure.append(error)
            return PublishResult(i, error=error)
        if isinstance(confirm, DeliveredMessage) and isinstance(confirm.delivery, spec.Basic.Return):
            frame = confirm.delivery
            return PublishResult(
                i,
                error=Unroutable(
                    f"{self._where}: event {i} to {target.label} (routing key {routing_key!r}) was "
                    f"returned: {frame.reply_code} {frame.reply_text}",
                    hint="no queue is bound for this routing key",
                ),
            )
        if isinstance(confirm, spec.Basic.Nack):
            return PublishResult(i, error=BrokerError(f"{self._where}: event {i}: the broker refused it (nack)"))
        return PublishResult(i, partition=0, offset=None)

    # ------------------------------------------------------------------ groups and lag

    async def groups(self) -> list[GroupInfo]:
        self._check_open()
        mgmt = self._need_management("listing consumers")
        queues, consumers = await asyncio.gather(
            self._mgmt_call(mgmt.queues()), self._mgmt_call(mgmt.consumers())
        )
        by_queue = _consumers_by_queue(consumers)
        out = []
        for item in queues:
            name = item.get("name", "")
            members = by_queue.get(name, [])
            if not _is_group_queue(item) or not _consumer_count(item, by_queue):
                continue
            out.append(
                GroupInfo(
                    group_id=name,
                    state="Stable",
                    protocol=f"amqp-0-9-1 {item.get('type') or 'classic'} queue",
                    members=tuple(_member(name, c) for c in members),
                )
            )
        out.sort(key=lambda g: g.group_id)
        return out

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        self._check_open()
        mgmt = self._need_management("queue depths and rates")
        observed = _now_ms()
        consumers = _consumers_by_queue(await self._mgmt_call(mgmt.consumers()))
        if group_ids is None:
            queues = await self._mgmt_call(mgmt.queues())
            items = [q for q in queues if _is_group_queue(q) and _consumer_count(q, consumers) > 0]
        else:
            ids = [group_ids] if isinstance(group_ids, str) else list(group_ids)
            found = await asyncio.gather(*(self._mgmt_call(mgmt.queue(g)) for g in ids))
            items = []
            for gid, item in zip(ids, found, strict=True):
                if item is None:
                    raise NotFound(
                        f"{self._where}: no queue named {gid!r} in vhost {self._ep.vhost!r} "
                        "(for RabbitMQ a group is a queue with consumers)"
                    )
                if item.get("type") == "stream":
                    raise Unsupported(
                        f"{self._where}: {gid!r} is a stream: its readers' offsets are not visible over AMQP 0-9-1"
                    )
                items.append(item)
        return [_queue_lag(item, observed, _consumer_count(item, consumers)) for item in items]


async def _close_channel(channel: AbstractChannel, timeout: float) -> None:
    try:
        await asyncio.wait_for(channel.close(), timeout)
    except Exception:  # noqa: BLE001 - the channel is of no more use either way
        pass


def _peek_notice(queue_type: str | None) -> str:
    """What peeking (take, then requeue at once) does to a queue's messages: RabbitMQ requeues a
    message at its place (checked on 3.10), and a quorum queue counts the delivery."""
    notice = "they keep their place in the queue, but are marked redelivered, so a consumer sees them as redeliveries"
    if queue_type == "quorum":
        notice += (
            "; a quorum queue also counts a delivery attempt for each (x-delivery-count, which a "
            "delivery-limit acts on)"
        )
    return notice


def _routing_key(key: bytes, i: int, where: str) -> str:
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise InvalidRequest(f"{where}: event {i}: a routing key must be UTF-8 text") from None
    if len(key) > MAX_NAME_BYTES:
        raise InvalidRequest(f"{where}: event {i}: a routing key is at most {MAX_NAME_BYTES} bytes")
    return text


def _consumers_by_queue(consumers: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    by_queue: dict[str, list[Mapping[str, Any]]] = {}
    for c in consumers:
        by_queue.setdefault((c.get("queue") or {}).get("name", ""), []).append(c)
    return by_queue


def _consumer_count(item: Mapping[str, Any], by_queue: Mapping[str, Sequence[Any]]) -> int:
    """The larger of the queue's ``consumers`` statistic and the consumer list: both come from
    the management database, either may lag the other by a few seconds."""
    stat = item.get("consumers")
    return max(stat if isinstance(stat, int) else 0, len(by_queue.get(item.get("name", ""), ())))


def _is_group_queue(item: Mapping[str, Any]) -> bool:
    return item.get("type") != "stream" and not str(item.get("name", "")).startswith(TAP_PREFIX)


def _member(queue: str, consumer: Mapping[str, Any]) -> GroupMember:
    details = consumer.get("channel_details") or {}
    host = details.get("peer_host") or ""
    port = details.get("peer_port")
    return GroupMember(
        client_id=str(consumer.get("consumer_tag", "")),
        host=f"{host}:{port}" if host and port else str(host),
        assignment=((queue, 0),),
    )


def _queue_lag(item: Mapping[str, Any], observed: int, consumers: int) -> GroupLag:
    stats = counters(item)
    consumed = stats.get("ack", 0) + stats.get("deliver_no_ack", 0) + stats.get("get_no_ack", 0)
    in_queue = depth(item)
    name = item["name"]
    per_second = rates(item)
    return GroupLag(
        group_id=name,
        state="Stable" if consumers > 0 else "Empty",
        partitions=(PartitionLag(topic=name, partition=0, committed=consumed, start=consumed, end=consumed + in_queue),),
        observed_at=observed,
        metadata={
            "type": item.get("type", "classic"),
            "messages_ready": item.get("messages_ready"),
            "messages_unacknowledged": item.get("messages_unacknowledged"),
            "consumers": consumers,
            "consumer_capacity": item.get("consumer_capacity"),
            "rates": per_second,
            # the rates every broker can give lag.seconds_to_drain(): messages in, messages done
            "in_rate": per_second.get("publish"),
            "out_rate": (
                sum(per_second[k] for k in ("ack", "deliver_no_ack") if k in per_second)
                if any(k in per_second for k in ("ack", "deliver_no_ack")) else None
            ),
            "head_message_timestamp": item.get("head_message_timestamp"),
            "mapping": "committed = messages consumed (statistics counters), end = committed + depth",
        },
    )
