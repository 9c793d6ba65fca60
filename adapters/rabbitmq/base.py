"""What every part of a RabbitMQ connection shares: its state, channels, and what names mean.

``RabbitMQConnection`` (``connection.py``) is composed of mixins, one module per family of verbs
(``topology.py``, ``publisher.py``, ``lag.py``, ``peek.py``), all built on :class:`RabbitMQBase`.
They share one object's state (the AMQP connection, the management client, the resolved names,
the publisher's channel) rather than holding references to each other, so a reconnect replaces the
AMQP connection for every part at once.

Names
    A topic name is an exchange, a queue or a stream of the vhost. RabbitMQ lets an exchange and
    a queue share a name: then the queue (or stream) is meant, and ``exchange:NAME`` names the
    exchange (``queue:NAME`` / ``stream:NAME`` work too). The nameless default exchange is
    ``amq.default``; it is not listed.

Channels
    Anything that may fail (passive declares, declare, delete, bind) runs on a throwaway channel,
    so a channel error never poisons the connection. Publishing has one confirm channel, opened
    again when an error closed it. Every read has its own channel (see ``reader.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aiormq.abc import AbstractChannel
from pamqp import commands as spec

from workbench.broker import (
    AccessDenied,
    BrokerError,
    Connection,
    InvalidRequest,
    NotFound,
    Outage,
    Timeout,
    Unreachable,
    Unsupported,
)

from .errors import map_error
from .management import Management
from .options import Endpoint

#: What _passive_queue() says of another connection's exclusive queue.
LOCKED = spec.Queue.DeclareOk(queue="", message_count=0, consumer_count=0)
RESOLVE_TTL_S = 5.0  # how long publish() trusts what a name is
RECOVER_FIRST_S = 0.5  # a follow read that lost the broker tries to reconnect after this long,
RECOVER_MAX_S = 2.0  # then every 1 s, 2 s, 2 s ... until the broker is back
MAX_NAME_BYTES = 255
DEFAULT_EXCHANGE_NAMES = ("", "amq.default")
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


class RabbitMQBase(Connection):
    """A RabbitMQ connection's state, its channels and name resolution (not used alone)."""

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
            old, self._amqp = self._amqp, await self._reconnect()
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
                f"{self._where}: {what} needs the management API, which is not available: " + "; ".join(self.warnings),
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
        raise NotFound(f"{self._where}: no exchange, queue or stream named {name!r} in vhost {self._ep.vhost!r}")

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


async def _close_channel(channel: AbstractChannel, timeout: float) -> None:
    try:
        await asyncio.wait_for(channel.close(), timeout)
    except Exception:  # noqa: BLE001 - the channel is of no more use either way
        pass
