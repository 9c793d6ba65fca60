"""The demo on the broker: its steps as CloudEvents, published and checked; its topics and groups.

Events are CloudEvents in binary mode (``ce_*`` headers, JSON values) with a ``correlation_id``
and a W3C ``traceparent`` header; the key is the order id, which picks the partition. A failed
publish keeps the kind of its cause, so exit codes still tell AccessDenied from Unreachable.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from workbench.broker import (
    BrokerError,
    Connection,
    NotFound,
    OutgoingEvent,
    Position,
    TopicInfo,
    Unsupported,
)
from workbench.demo.scenario import SOURCES, TOPICS, Step

Ends = dict[tuple[str, int], int]  # (topic, partition) -> end offset
_CE_NAMESPACE = uuid.UUID("9b0c6d7e-3f4a-5b21-8c9d-0e1f2a3b4c5d")


def outgoing(step: Step, ts: int, partitions: Mapping[str, int]) -> OutgoingEvent:
    ce_id = uuid.uuid5(_CE_NAMESPACE, f"{step.correlation_id}/{step.topic}/{step.type}")
    iso = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
    headers = (
        ("ce_specversion", "1.0"),
        ("ce_type", step.type),
        ("ce_source", SOURCES[step.topic]),
        ("ce_id", str(ce_id)),
        ("ce_time", iso.replace("+00:00", "Z")),
        ("ce_subject", step.key),
        ("content-type", "application/json"),
        ("correlation_id", step.correlation_id),
        ("traceparent", f"00-{uuid.UUID(step.correlation_id).hex}-{ce_id.hex[:16]}-01"),
    )
    key, n = step.key.encode(), partitions.get(step.topic, 1)
    return OutgoingEvent(
        value=json.dumps(step.data, separators=(",", ":")).encode(),
        key=key,
        headers=tuple((k, v.encode()) for k, v in headers),
        partition=zlib.crc32(key) % n if n > 1 else None,
        timestamp=ts,
    )


async def publish(conn: Connection, items: Sequence[tuple[str, OutgoingEvent]]) -> Ends:
    """Publish per topic, keeping order; every result is checked. Returns the new end offsets."""
    by_topic: dict[str, list[OutgoingEvent]] = defaultdict(list)
    for topic, event in items:
        by_topic[topic].append(event)
    ends: Ends = {}
    for topic, events in by_topic.items():
        results = await conn.publish(topic, events)
        failed = [r.error for r in results if r.error is not None]
        if failed or len(results) != len(events):
            cause = failed[0] if failed else BrokerError("results missing")
            what = f"{len(failed) or 'some'} of {len(events)} events"
            raise _same_kind(cause, f"demo: publishing to {topic!r} failed for {what}: {cause}") from cause
        for r in results:
            if r.partition is not None and r.offset is not None:
                ends[(topic, r.partition)] = max(ends.get((topic, r.partition), 0), r.offset + 1)
    return ends


def _same_kind(cause: BrokerError, message: str) -> BrokerError:
    """The cause's class with our message (so exit codes still tell AccessDenied from Unreachable)."""
    try:
        return type(cause)(message, hint=cause.hint)
    except TypeError:  # an adapter's own subclass with another signature
        return BrokerError(message, hint=cause.hint)


async def ensure_topics(conn: Connection) -> dict[str, TopicInfo]:
    infos = {}
    for name, partitions in TOPICS.items():
        try:
            infos[name] = await conn.describe_topic(name)
        except NotFound:
            try:
                await conn.create_topic(name, partitions)
            except Unsupported as exc:
                raise Unsupported(
                    f"demo: cannot create topic {name!r} here: {exc}",
                    hint="create the demo topics with the broker's own tools",
                ) from exc
            infos[name] = await conn.describe_topic(name)
    return infos


def partition_counts(infos: Mapping[str, TopicInfo]) -> dict[str, int]:
    return {name: max(len(info.partitions), 1) for name, info in infos.items()}


async def commit(conn: Connection, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
    try:
        await conn.commit_offsets(group, offsets)
    except Unsupported as exc:
        raise Unsupported(
            f"demo: cannot set consumer group offsets on this broker ({exc}), so the demo groups were not created",
            hint="the local and kafka adapters can",
        ) from exc


async def latest_timestamp(conn: Connection) -> int:
    latest = 0
    for topic in TOPICS:
        async for batch in conn.read(topic, Position.last(1)):
            latest = max([latest, *(e.timestamp or 0 for e in batch)])
    return latest


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
