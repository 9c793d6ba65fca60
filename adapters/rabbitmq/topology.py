"""Exchanges, queues and streams of a vhost: list, describe, create (streams) and delete.

A part of ``RabbitMQConnection`` (a mixin on :class:`~.base.RabbitMQBase`, see ``base.py``).

Listing needs the management API (figures from its statistics, up to ~5 s old: ``describe``
says which). Describing a queue adds exact figures from a passive declare; describing a stream
probes its first and last offsets (``reader.probe_offsets``), which a stream read from the end
uses too (``_stream_end``). ``create_topic`` declares a durable stream (one partition; config:
stream arguments); ``delete_topic`` deletes a queue or stream, never an exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiormq.abc import AbstractChannel
from pamqp import commands as spec

from workbench.broker import (
    InvalidRequest,
    NotFound,
    PartitionInfo,
    TopicInfo,
    Unsupported,
)

from .base import LOCKED, MAX_NAME_BYTES, RESOLVE_TTL_S, RabbitMQBase, Target
from .management import (
    arguments_config,
    binding_dict,
    depth,
    exchange_info,
    exchange_metadata,
    is_internal_name,
    queue_info,
    queue_metadata,
)
from .peek import peek_notice
from .reader import (
    PROBE_BUSY_S,
    PROBE_EMPTY_WAIT_S,
    PROBE_GAP_S,
    probe_offsets,
    tap_bindings,
)

#: Stream arguments create_topic() accepts in ``config`` (strings converted to the broker's types).
STREAM_INT_ARGS = {"x-max-length-bytes", "x-stream-max-segment-size-bytes", "x-initial-cluster-size"}
STREAM_STR_ARGS = {"x-max-age", "x-queue-leader-locator"}


def _ready_count(declared: spec.Queue.DeclareOk) -> int:
    """The ready count of a queue.declare-ok: always in the broker's frame (pamqp types it
    Optional only because its constructor defaults it to None)."""
    count = declared.message_count
    assert count is not None, "a queue.declare-ok without message_count"
    return count


class TopologyMixin(RabbitMQBase):
    """list_topics, describe_topic, create_topic, delete_topic."""

    async def list_topics(self) -> list[TopicInfo]:
        self._check_open()
        mgmt = self._need_management("listing exchanges, queues and streams")
        exchanges, queues = await asyncio.gather(self._mgmt_call(mgmt.exchanges()), self._mgmt_call(mgmt.queues()))
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
                "the default exchange routes to the queue named by the routing key; it cannot be bound or tapped"
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
            count = _ready_count(declared) + (unacked if isinstance(unacked, int) else 0)
        meta["messages"] = count
        meta["offsets"] = "0..depth: the messages in the queue now (ready + unacknowledged)"
        meta["statistics"] = (
            "messages_unacknowledged, message_bytes, rates and counters are management statistics, "
            "refreshed every ~5 s: up to ~5 s old"
            + ("" if declared is LOCKED else "; messages_ready and consumers are exact (a passive declare)")
        )
        meta["peek_notice"] = peek_notice(item.get("type"))
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
        return declared is not LOCKED and _ready_count(declared) > 0

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
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        """Declare a durable stream (``x-queue-type=stream``); config: stream arguments; the replication
        factor is the stream's ``x-initial-cluster-size`` (its replicas on a RabbitMQ cluster)."""
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
        if replication_factor is not None:
            if not isinstance(replication_factor, int) or replication_factor < 1:
                raise InvalidRequest(f"{where}: stream {name!r}: the replication factor must be an int >= 1")
            arguments["x-initial-cluster-size"] = replication_factor
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
            raise Unsupported(f"{self._where}: {target.label} is an exchange; only queues and streams are deleted here")

        async def delete(ch: AbstractChannel) -> Any:
            return await ch.queue_delete(target.name)

        await self._throwaway(f"deleting {target.label}", delete)
