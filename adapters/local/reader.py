"""Reading the local event log: cursors over the packed row ids, batches shared between partitions.

A part of :class:`~.store.Store` (a mixin on :class:`~.base.StoreBase`, see ``base.py``).

A read opens a :class:`ReadCursor` in one snapshot (positions and ends agree), then asks for
batches: a bounded read ends at the ends captured at the start, a follow read takes the ends
again at each batch. A timestamp position is a binary search over ``max_ts`` (see ``schema.py``).
A batch is shared between the partitions that have events (rotating which goes first) and
interleaved by time, each partition keeping its offset order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from workbench.broker import (
    Event,
    InvalidRequest,
    NotFound,
    Position,
)

from .base import StoreBase
from .schema import (
    OFFSET_BITS,
    OFFSET_MASK,
    SELECT_PARTITIONS,
    SELECT_RANGE,
    decode_headers,
    event_id,
    transaction,
)

_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass
class _Part:
    """One partition of a read: its row id, the next offset to read and where to stop."""

    partition: int
    pid: int
    pos: int
    end: int  # bounded read: the end captured at the start; follow: the last end seen


@dataclass
class ReadCursor:
    """Where a read is. Used by one worker thread at a time (the reader awaits each batch)."""

    topic: str
    topic_id: int
    parts: list[_Part]
    follow: bool
    batch_size: int
    turn: int = 0  # rotates which partition goes first when a batch is shared


class ReaderMixin(StoreBase):
    """open_cursor, next_batch."""

    def open_cursor(
        self,
        topic: str,
        start: Position,
        partitions: Sequence[int] | None,
        follow: bool,
        batch_size: int,
    ) -> ReadCursor:
        where = self.where
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidRequest(f"{where}: batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(start, Position):
            raise InvalidRequest(f"{where}: start must be a Position, got {type(start).__name__}")
        kind, value = start.kind, start.value
        if kind not in ("beginning", "end", "offset", "timestamp", "last"):
            raise InvalidRequest(f"{where}: unknown position kind {kind!r}")
        if kind == "last" and value < 0:
            raise InvalidRequest(f"{where}: Position.last needs N >= 0, got {value}")
        con = self.con()
        with transaction(con):  # one snapshot: the positions and the ends agree
            topic_id, count = self._topic(con, topic)
            rows = {r[0]: r for r in con.execute(SELECT_PARTITIONS, (topic_id,))}
            if partitions is None:
                chosen = sorted(rows)
            else:
                chosen = list(dict.fromkeys(partitions))
                for p in chosen:
                    if not isinstance(p, int) or isinstance(p, bool) or p not in rows:
                        raise self._no_partition(topic, p, count)
            parts = []
            for p in chosen:
                _p, pid, lo, hi, _max_ts = rows[p]
                if kind == "beginning":
                    pos = lo
                elif kind == "end":
                    pos = hi
                elif kind == "offset":
                    pos = min(max(value, lo), hi)
                elif kind == "last":
                    pos = max(lo, hi - value)
                else:
                    pos = self._seek_time(con, pid, lo, hi, value)
                parts.append(_Part(p, pid, pos, hi))
        return ReadCursor(topic, topic_id, parts, follow, batch_size)

    def _seek_time(self, con: sqlite3.Connection, pid: int, lo: int, hi: int, ts: int) -> int:
        """The first offset in [lo, hi) whose timestamp is >= ts, else hi."""
        # The first event at or after an offset: a capture file keeps the source's offsets, gaps
        # included (compaction, transaction markers), so an offset may have no event.
        probe = "SELECT max_ts FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT 1"
        a, b = lo, hi  # binary search over the monotonic max_ts: first offset with max_ts >= ts
        while a < b:
            mid = (a + b) // 2
            found = con.execute(probe, (event_id(pid, mid), event_id(pid, hi))).fetchone()
            if found is None or found[0] < ts:
                a = mid + 1
            else:
                b = mid
        if a >= hi:
            return hi
        # max_ts can only overshoot if older events were truncated away: step to the exact event.
        row = con.execute(
            "SELECT id FROM events WHERE id >= ? AND id < ? AND ts >= ? ORDER BY id LIMIT 1",
            (event_id(pid, a), event_id(pid, hi), ts),
        ).fetchone()
        return hi if row is None else row[0] & OFFSET_MASK

    def next_batch(self, cur: ReadCursor) -> list[Event] | None:
        """The next batch: None when a bounded read is done, [] when a follow read is caught up."""
        con = self.con()
        with transaction(con):
            if cur.follow:
                ends = dict(
                    con.execute("SELECT id, next_offset FROM partitions WHERE topic_id = ?", (cur.topic_id,)).fetchall()
                )
                if not ends:
                    raise NotFound(f"{self.where}: topic {cur.topic!r} was deleted")
                for part in cur.parts:
                    part.end = ends[part.pid]
            pending = [part for part in cur.parts if part.pos < part.end]
            if not pending:
                return [] if cur.follow else None
            # Share the batch between the pending partitions; rotate which one goes first.
            shift = cur.turn % len(pending)
            cur.turn += 1
            pending = (pending[shift:] + pending[:shift])[: cur.batch_size]
            share, extra = divmod(cur.batch_size, len(pending))
            topic = cur.topic
            mask = OFFSET_MASK
            decode = decode_headers
            events: list[Event] = []
            times: list[int] = []  # max_ts of each event, for the interleave
            shared = 0
            for i, part in enumerate(pending):
                p = part.partition
                base = part.pid << OFFSET_BITS
                rows = con.execute(
                    SELECT_RANGE,
                    (base | part.pos, base | part.end, share + (1 if i < extra else 0)),
                ).fetchall()
                if not rows:
                    self._skip_gap(con, cur, part)
                    continue
                shared += 1
                events += [
                    Event(topic, p, rid & mask, ts, k, v, decode(h) if h else (), _NO_METADATA)
                    for rid, ts, k, v, h, _top in rows
                ]
                if len(pending) > 1:
                    times += [row[5] for row in rows]
                part.pos = (rows[-1][0] & OFFSET_MASK) + 1
        if shared < 2:
            return events
        # Interleave by time, keeping each partition's own (offset) order: max_ts never decreases
        # within a partition, and a stable sort on it (Timsort merges the partitions' runs in C)
        # keeps equal keys in place. Equals a merge by timestamp when timestamps are in order.
        order = sorted(range(len(events)), key=times.__getitem__)
        return [events[i] for i in order]

    def _skip_gap(self, con: sqlite3.Connection, cur: ReadCursor, part: _Part) -> None:
        """No events in [pos, end): the topic was deleted or the range truncated meanwhile."""
        row = con.execute("SELECT start_offset FROM partitions WHERE id = ?", (part.pid,)).fetchone()
        if row is None:
            raise NotFound(f"{self.where}: topic {cur.topic!r} was deleted")
        # Truncated under the reader: go on from the new start (never spin on an empty range).
        part.pos = min(row[0], part.end) if row[0] > part.pos else part.end
