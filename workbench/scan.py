"""A bounded scan's window and its account: what was read of each partition, and whether all of it.

A search that stops early, or a window cut short, must say so: :class:`ScanReport` keeps, per
partition, the offsets read, the events scanned (inside the window) and matched, and whether the
window was read to its end; its :meth:`~ScanReport.line` is the ``scanned ...`` line on stderr and
:meth:`~ScanReport.as_dict` the same figures for ``-o json``. The window's end (``--until``) is
applied here too, the same for every adapter: a partition is done at its first event past the
end (an offset above it, or a timestamp after it: like ``--from TIME``, the first event stamped
later ends the window, as Kafka's offsets-for-times does). Pure: no broker, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.broker import Event, PartitionInfo, Position, TopicInfo


@dataclass(slots=True)
class PartitionScan:
    """One partition's part of a scan. Offsets are inclusive; None: nothing read (or unknown)."""

    partition: int
    window_start: int | None = None  # the first offset of the window, when known before reading
    window_last: int | None = None  # its last offset as described before reading (None: unknown)
    first: int | None = None  # the first offset read
    last: int | None = None  # the last offset read
    scanned: int = 0  # events read inside the window (each one checked by the filter / key)
    matched: int = 0
    complete: bool = False  # the window was read to its end

    def as_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "first_offset": self.first,
            "last_offset": self.last,
            "window_start": self.window_start,
            "window_last": self.window_last,
            "scanned": self.scanned,
            "matched": self.matched,
            "complete": self.complete,
        }

    def text(self) -> str:
        if self.first is None or self.last is None:
            read = "nothing in the window" if self.complete else "nothing read"
        else:
            read = f"offsets {self.first}-{self.last}: {self.scanned:,} scanned, {self.matched:,} matched"
        if self.complete:
            return f"p{self.partition} {read}, read to the end"
        window = f" of a window up to {self.window_last}" if self.window_last is not None else ""
        return f"p{self.partition} {read}, not read to the end{window}"


@dataclass
class ScanReport:
    """The account of one bounded read of ``topic``; fed batch by batch by :meth:`take`."""

    topic: str
    partition_count: int
    partitions: dict[int, PartitionScan]
    until: Position | None = None
    key: str | None = None  # how the key search chose its partitions (the partitioning module's line)
    stopped: str | None = None  # why the read ended before every window's end
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def plan(
        cls,
        info: TopicInfo,
        start: Position,
        partitions: Sequence[int] | None = None,
        until: Position | None = None,
        key: str | None = None,
    ) -> ScanReport:
        """A report for a read of ``partitions`` (all when None) from ``start`` to ``until``."""
        chosen = [p for p in info.partitions if partitions is None or p.partition in partitions]
        parts = {p.partition: _planned(p, start, until) for p in chosen}
        for p in partitions or ():  # named but not described (yet): the read will tell
            parts.setdefault(p, PartitionScan(p))
        return cls(info.name, len(info.partitions), parts, until, key)

    # ------------------------------------------------------------------ feeding

    @property
    def done(self) -> bool:
        """Every partition's window was read to its end."""
        return all(p.complete for p in self.partitions.values())

    def take(
        self, batch: Sequence[Event], match: Callable[[Event], bool] | None, limit: int | None
    ) -> tuple[list[Event], int | None]:
        """The events of ``batch`` inside their partition's window that match, at most ``limit``;
        and what remains of the limit. Events after the limit is reached are not scanned."""
        kept: list[Event] = []
        parts = self.partitions
        until = self.until
        by_offset = until.value if until is not None and until.kind == "offset" else None
        by_time = until.value if until is not None and until.kind == "timestamp" else None
        for event in batch:
            if limit == 0:
                break
            scan = parts.get(event.partition)
            if scan is None:
                scan = parts[event.partition] = PartitionScan(event.partition)
            if scan.complete:
                continue  # past its window: the read goes on for the other partitions
            if (by_offset is not None and event.offset > by_offset) or (
                by_time is not None and event.timestamp is not None and event.timestamp > by_time
            ):
                scan.complete = True
                continue
            scan.scanned += 1
            if scan.first is None:
                scan.first = event.offset
            scan.last = event.offset
            if match is None or match(event):
                scan.matched += 1
                kept.append(event)
                if limit is not None:
                    limit -= 1
            if by_offset is not None and event.offset >= by_offset:
                scan.complete = True  # the window's last offset: no need to wait for one past it
        return kept, limit

    def finish(self) -> None:
        """The read ended by itself: it reached the end it captured in every partition."""
        for scan in self.partitions.values():
            scan.complete = True

    def stop(self, reason: str) -> None:
        """The read ended before the end of every window (a limit, an interruption, an error)."""
        for scan in self.partitions.values():  # those read up to the end they were described with
            if scan.last is not None and scan.window_last is not None and scan.last >= scan.window_last:
                scan.complete = True
        if not self.done and self.stopped is None:
            self.stopped = reason

    # ------------------------------------------------------------------ telling

    @property
    def scanned(self) -> int:
        return sum(p.scanned for p in self.partitions.values())

    @property
    def matched(self) -> int:
        return sum(p.matched for p in self.partitions.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partitions_read": len(self.partitions),
            "partition_count": self.partition_count,
            "scanned": self.scanned,
            "matched": self.matched,
            "complete": self.done,
            "stopped": self.stopped,
            "until": _until_text(self.until),
            "key_search": self.key,
            "partitions": [self.partitions[p].as_dict() for p in sorted(self.partitions)],
            **self.extra,
        }

    def line(self) -> str:
        """``scanned ...``: the whole account on one line."""
        n = len(self.partitions)
        head = (
            f"scanned {self.topic}: {n} of {self.partition_count} partition{'s' if self.partition_count != 1 else ''}, "
            f"{self.scanned:,} event{'s' if self.scanned != 1 else ''}, {self.matched:,} matched"
        )
        if self.until is not None:
            head += f", until {_until_text(self.until)}"
        if self.done:
            verdict = "every window read to its end"
        else:
            missing = sum(not p.complete for p in self.partitions.values())
            verdict = f"{self.stopped or 'stopped'}: {missing} partition(s) not read to the end"
        details = "; ".join(self.partitions[p].text() for p in sorted(self.partitions))
        return f"{head}; {verdict} [{details}]"


def _planned(p: PartitionInfo, start: Position, until: Position | None) -> PartitionScan:
    """A partition's window as described before reading; complete at once when it is empty."""
    last = p.end - 1
    if until is not None and until.kind == "offset":
        last = min(last, until.value)
    first: int | None
    if start.kind == "beginning":
        first = p.start
    elif start.kind == "end":
        first = p.end
    elif start.kind == "offset":
        first = min(max(start.value, p.start), p.end)
    elif start.kind == "last":
        first = max(p.start, p.end - start.value)
    else:
        first = None  # a time: the broker finds it
    scan = PartitionScan(p.partition, first, last)
    scan.complete = first is not None and first > last
    return scan


def _until_text(until: Position | None) -> str | None:
    """``--until`` as the user wrote it: ``now`` for the end seen when the read began."""
    if until is None:
        return None
    return "now" if until.kind == "end" else str(until)
