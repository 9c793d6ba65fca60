"""Capture: copy events from any broker into a local event log file, for offline triage.

The file is an ordinary ``local`` adapter file (``--broker local:FILE.db``): tail, describe,
trace and replay work on it as on the broker. Events keep their exact bytes and headers, their
original partitions, offsets and timestamps; each partition starts at the first captured offset
and ends where the source ended, so the consumer groups' committed offsets (the lag snapshot,
taken when the capture ends) give the same lag offline as they did on the broker.

The file is written beside its destination under a temporary name and renamed only when
complete: an error or Ctrl-C leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import config
from workbench.broker import (
    BrokerError,
    Connection,
    Event,
    Position,
    TopicInfo,
    Unsupported,
)
from workbench.errors import UsageError

__all__ = [
    "CaptureReport",
    "capture",
    "capture_events",
    "check_destination",
    "is_capture_file",
    "local_target",
    "open_capture",
]


@dataclass
class CaptureReport:
    """What went into the file."""

    events: dict[str, int] = field(default_factory=dict)  # per topic
    groups: list[str] = field(default_factory=list)  # groups in the lag snapshot
    lag_note: str | None = None  # why there is no (or only a partial) lag snapshot
    schemas: int = 0  # schemas kept in the file, so that it decodes offline

    @property
    def total(self) -> int:
        return sum(self.events.values())


def local_target(path: Path | str, name: str = "(capture)") -> config.Target:
    """A local event log file as a target, whatever the profile says."""
    profile = config.Profile(name=name, adapter=config.DEFAULT_ADAPTER, options={"path": str(path)}, source="--to")
    return config.Target(profile=profile, adapter=config.DEFAULT_ADAPTER, options={"path": str(path)})


@asynccontextmanager
async def open_capture(path: Path, *, force: bool = False) -> AsyncIterator[Connection]:
    """A connection to a new event log that becomes ``path`` only if the block ends without error.

    Refuses an existing ``path`` unless ``force``. Written to a temporary file beside it (same
    directory, so the final rename is atomic), removed on any error or cancellation.
    """
    from workbench import service

    path = check_destination(str(path), force)  # again: the file may have appeared since the CLI asked
    temp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    _remove(temp)
    done = False
    try:
        async with service.connect(local_target(temp)) as conn:
            if not hasattr(conn, "local_restore"):  # (the local adapter is the one that can)
                raise Unsupported("the local adapter cannot restore events at their positions")
            yield conn
        for suffix in ("-wal", "-shm"):  # the last connection checkpointed and removed them
            _remove(Path(f"{temp}{suffix}"))
        os.replace(temp, path)
        done = True
    finally:
        if not done:
            _remove(temp)
            for suffix in ("-wal", "-shm"):
                _remove(Path(f"{temp}{suffix}"))


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def capture(
    source: Connection,
    sink: Connection,
    topics: Sequence[str],
    start: Position,
    *,
    on_scanned: Callable[[int], None] | None = None,
) -> CaptureReport:
    """Copy ``topics`` from ``start`` to their ends (as seen when each read began), then the lag
    snapshot of the groups that consume them. An unreadable topic raises the broker's error."""
    report = CaptureReport()
    infos: list[TopicInfo] = []
    for name in dict.fromkeys(topics):
        info = await source.describe_topic(name)
        infos.append(info)
        report.events[name] = await _copy_topic(source, sink, info, start, on_scanned)
    await _snapshot_lag(source, sink, {i.name for i in infos}, report)
    report.schemas = await store_schemas(source, sink)
    return report


async def store_schemas(source: Connection, sink: Connection) -> int:
    """Keep the schemas the source's events were decoded with in the file (it then decodes offline)."""
    from workbench import publishing, service
    from workbench.events.schemas import stored

    decoder = service.decoder_of(source)
    if decoder is None or not decoder.used:
        return 0
    await sink.create_topic(stored.SCHEMAS_TOPIC, 1)
    events = stored.to_events(decoder.used)
    named = ((f"schema id {(e.key or b'').decode()}", e) for e in events)
    report = await publishing.send(sink, stored.SCHEMAS_TOPIC, publishing.pairs(named))
    if report.failures:
        raise report.failures[0].error
    return report.confirmed


async def _copy_topic(
    source: Connection, sink: Any, info: TopicInfo, start: Position, on_scanned: Callable[[int], None] | None
) -> int:
    partitions = max((p.partition for p in info.partitions), default=0) + 1
    started: set[int] = set()
    copied = 0
    async with aclosing(source.read(info.name, start)) as batches:  # type: ignore[type-var]
        async for batch in batches:
            starts = {e.partition: e.offset for e in reversed(batch) if e.partition not in started}
            started.update(starts)
            batch = sorted(batch, key=lambda e: (e.partition, e.offset))
            await sink.local_restore(info.name, partitions, batch, starts=starts)
            copied += len(batch)
            if on_scanned is not None:
                on_scanned(len(batch))
    # Where the source ended: empty partitions start there too, so offsets stay the broker's.
    ends = {p.partition: p.end for p in info.partitions}
    empty = {p: end for p, end in ends.items() if p not in started}
    await sink.local_restore(info.name, partitions, (), starts=empty, ends=ends)
    return copied


async def _snapshot_lag(source: Connection, sink: Connection, topics: set[str], report: CaptureReport) -> None:
    try:
        groups = await source.lag(None)
    except BrokerError as exc:
        report.lag_note = f"no lag snapshot: {exc}"
        return
    for group in groups:
        offsets = {
            (p.topic, p.partition): p.committed
            for p in group.partitions
            if p.topic in topics and p.committed is not None
        }
        if not offsets:
            continue
        try:
            await sink.commit_offsets(group.group_id, offsets)
        except BrokerError as exc:  # e.g. a partition the source no longer has
            report.lag_note = f"group {group.group_id!r} left out of the lag snapshot: {exc}"
            continue
        report.groups.append(group.group_id)


async def capture_events(sink: Any, events: Sequence[tuple[str, Event]]) -> int:
    """Write events found elsewhere (a trace's hops) at their original positions.

    With events from several profiles, topic names are prefixed with the profile when the same
    topic name comes from more than one (``profile/topic``).
    """
    by_topic: dict[str, set[str]] = {}
    for profile, e in events:
        by_topic.setdefault(e.topic, set()).add(profile)
    grouped: dict[str, list[Event]] = {}
    for profile, e in events:
        name = e.topic if len(by_topic[e.topic]) == 1 else f"{profile}/{e.topic}"
        grouped.setdefault(name, []).append(e)
    for name, items in grouped.items():
        items.sort(key=lambda e: (e.partition, e.offset))
        partitions = max(e.partition for e in items) + 1
        starts: dict[int, int] = {}
        for e in items:
            starts.setdefault(e.partition, e.offset)
        await sink.local_restore(name, partitions, _renamed(items, name), starts=starts)
    return len(events)


def _renamed(events: list[Event], topic: str) -> list[Event]:
    if all(e.topic == topic for e in events):
        return events
    return [Event(topic, e.partition, e.offset, e.timestamp, e.key, e.value, e.headers, e.metadata) for e in events]


def check_destination(path: str, force: bool) -> Path:
    """The --to file, refused early (before connecting) when it exists and --force is not given."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{target} is a directory", hint="give a file name, e.g. incident.db")
    if target.exists() and not force:
        raise UsageError(
            f"{target} exists: refusing to overwrite it", hint="pass --force to replace it, or choose another file"
        )
    if target.suffix == "":
        raise UsageError(f"--to {path!r} has no extension", hint="name the capture file e.g. incident.db")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} is not a directory", hint="create it first, or choose another place")
    return target


def is_capture_file(source: str) -> bool:
    """Whether a replay SOURCE names a capture file rather than a topic of the profile."""
    return Path(source).expanduser().is_file()  # a topic may well be called "orders.db"
