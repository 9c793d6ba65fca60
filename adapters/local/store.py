"""The blocking half of the local adapter: a SQLite event log in one file (WAL mode).

:class:`Store` is what the adapter uses (``adapter.py`` runs its methods on worker threads). It
is composed of mixins on :class:`~.base.StoreBase` (the file, its per-thread sqlite3 connections
and look-ups, see ``base.py``): reading is in ``reader.py``, groups in ``lag.py``, the file format
(schema, packed row ids, headers codec) in ``schema.py``. This module holds the topics and
writing: create, delete, truncate, restore (captures), publish.

Several processes may use the same file at once: every write runs in a ``BEGIN IMMEDIATE``
transaction (SQLite's single-writer lock, waited for up to ``busy_timeout_ms``), and offsets are
allocated from ``partitions.next_offset`` inside it, so they are unique and gap-free per
partition. Events are checked and given their partition before the lock is taken: it is held
only to allocate offsets and insert.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from workbench.broker import (
    BrokerError,
    Event,
    InvalidRequest,
    PublishResult,
    TopicInfo,
)

from .base import StoreBase
from .lag import LagMixin
from .reader import ReaderMixin
from .schema import (
    INSERT_EVENT,
    MAX_PARTITION_ID,
    OFFSET_BITS,
    OFFSET_MASK,
    SELECT_PARTITIONS,
    as_bytes,
    encode_headers,
    event_id,
    now_ms,
    transaction,
)

MAX_TOPIC_NAME = 249


class Store(ReaderMixin, LagMixin, StoreBase):
    """One SQLite file. Methods block; they are thread-safe (one sqlite connection per thread)."""

    # ------------------------------------------------------------------ topics

    def list_topics(self) -> list[TopicInfo]:
        con = self.con()
        with transaction(con):
            return self._topic_infos(con, "", ())

    def describe_topic(self, name: str) -> TopicInfo:
        """The topic; where its offsets have gaps (a capture or trace file keeps the source's
        offsets), ``metadata["event_counts"]`` holds the real number of events per partition."""
        con = self.con()
        with transaction(con):
            topic_id, _ = self._topic(con, name)
            info = self._topic_infos(con, "WHERE name = ?", (name,))[0]
            counts = self._event_counts(con, topic_id)
        if all(counts.get(p.partition, 0) == p.count for p in info.partitions):
            return info
        return replace(info, metadata={**info.metadata, "event_counts": counts})

    def _event_counts(self, con: sqlite3.Connection, topic_id: int) -> dict[int, int]:
        """Events stored per partition (one range count each over the packed row ids)."""
        counts = {}
        for p, pid, lo, hi, _max_ts in con.execute(SELECT_PARTITIONS, (topic_id,)).fetchall():
            counts[p] = con.execute(
                "SELECT count(*) FROM events WHERE id >= ? AND id < ?", (event_id(pid, lo), event_id(pid, hi))
            ).fetchone()[0]
        return counts

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str] | None) -> TopicInfo:
        where = self.where
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"{where}: a topic name must be a non-empty string, got {name!r}")
        if len(name) > MAX_TOPIC_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InvalidRequest(
                f"{where}: invalid topic name {name!r} (at most {MAX_TOPIC_NAME} characters, no control characters)"
            )
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidRequest(f"{where}: topic {name!r}: partitions must be an int >= 1, got {partitions!r}")
        config = dict(config or {})
        for k, v in config.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidRequest(f"{where}: topic {name!r}: config keys and values must be str")
        con = self.con()
        with transaction(con, "IMMEDIATE"):
            if con.execute("SELECT 1 FROM topics WHERE name = ?", (name,)).fetchone():
                raise InvalidRequest(f"{where}: topic {name!r} already exists")
            topic_id = con.execute(
                "INSERT INTO topics (name, partitions, config, created) VALUES (?, ?, ?, ?)",
                (name, partitions, json.dumps(config, sort_keys=True), now_ms()),
            ).lastrowid
            con.executemany(
                'INSERT INTO partitions (topic_id, "partition") VALUES (?, ?)',
                [(topic_id, p) for p in range(partitions)],
            )
            top = con.execute("SELECT max(id) FROM partitions").fetchone()[0]
            if top > MAX_PARTITION_ID:
                raise InvalidRequest(f"{where}: this event log file cannot hold more partitions")
            return self._topic_infos(con, "WHERE id = ?", (topic_id,))[0]

    def delete_topic(self, name: str) -> None:
        con = self.con()
        with transaction(con, "IMMEDIATE"):
            topic_id, _ = self._topic(con, name)
            pids = [r[0] for r in con.execute("SELECT id FROM partitions WHERE topic_id = ?", (topic_id,))]
            for pid in pids:
                con.execute(
                    "DELETE FROM events WHERE id >= ? AND id < ?",
                    (event_id(pid, 0), event_id(pid + 1, 0)),
                )
                con.execute("DELETE FROM group_offsets WHERE partition_id = ?", (pid,))
            con.execute("DELETE FROM partitions WHERE topic_id = ?", (topic_id,))
            con.execute("DELETE FROM topics WHERE id = ?", (topic_id,))

    def truncate(self, name: str, partition: int, before_offset: int) -> int:
        """Local-only retention: drop the events before ``before_offset``; returns the new start."""
        con = self.con()
        with transaction(con, "IMMEDIATE"):
            topic_id, count = self._topic(con, name)
            row = con.execute(
                'SELECT id, start_offset, next_offset FROM partitions WHERE topic_id = ? AND "partition" = ?',
                (topic_id, partition),
            ).fetchone()
            if row is None:
                raise self._no_partition(name, partition, count)
            pid, start, end = row
            new_start = max(start, min(int(before_offset), end))
            if new_start > start:
                con.execute(
                    "DELETE FROM events WHERE id >= ? AND id < ?",
                    (event_id(pid, start), event_id(pid, new_start)),
                )
                con.execute("UPDATE partitions SET start_offset = ? WHERE id = ?", (new_start, pid))
            return new_start

    def restore(
        self,
        topic: str,
        partitions: int,
        events: Sequence[Event],
        starts: Mapping[int, int] | None,
        ends: Mapping[int, int] | None,
    ) -> None:
        """Local-only (captures): write events at their ORIGINAL offsets and timestamps.

        The topic is created with ``partitions`` when missing. ``starts`` moves an empty
        partition's start (and end) to an offset; each event must come after the partition's
        end and becomes its last; ``ends`` then moves the end forward (e.g. to where the source
        ended, past a gap). All in one transaction.
        """
        where = self.where
        con = self.con()
        if con.execute("SELECT 1 FROM topics WHERE name = ?", (topic,)).fetchone() is None:
            self.create_topic(topic, partitions, None)
        with transaction(con, "IMMEDIATE"):
            topic_id, count = self._topic(con, topic)
            parts = {r[0]: [r[1], r[2], r[3], r[4]] for r in con.execute(SELECT_PARTITIONS, (topic_id,))}
            for p, start in (starts or {}).items():
                if p not in parts:
                    raise self._no_partition(topic, p, count)
                _pid, lo, hi, _ = parts[p]
                if lo != hi or start < hi:
                    raise InvalidRequest(
                        f"{where}: topic {topic!r} partition {p}: cannot start at {start} (holds {lo}..{hi})"
                    )
                parts[p][1] = parts[p][2] = start
            rows = []
            for e in events:
                if e.partition not in parts:
                    raise self._no_partition(topic, e.partition, count)
                part = parts[e.partition]
                if not part[2] <= e.offset <= OFFSET_MASK:
                    raise InvalidRequest(
                        f"{where}: topic {topic!r} partition {e.partition}: offset {e.offset} is before the end {part[2]}"
                    )
                ts = now_ms() if e.timestamp is None else e.timestamp
                part[3] = ts if part[3] is None else max(part[3], ts)
                headers = encode_headers(e.headers) if e.headers else None
                rows.append(((part[0] << OFFSET_BITS) | e.offset, ts, part[3], e.key, e.value, headers))
                part[2] = e.offset + 1
            for p, end in (ends or {}).items():
                if p not in parts:
                    raise self._no_partition(topic, p, count)
                parts[p][2] = max(parts[p][2], end)
            con.executemany(INSERT_EVENT, rows)
            con.executemany(
                "UPDATE partitions SET start_offset = ?, next_offset = ?, max_ts = ? WHERE id = ?",
                [(lo, hi, top, pid) for pid, lo, hi, top in parts.values()],
            )

    # ------------------------------------------------------------------ publish

    def _round_robin_counter(self, topic: str) -> Iterator[int]:
        with self._lock:
            counter = self._round_robin.get(topic)
            if counter is None:
                # Start at a random partition, so that one-event publishers spread out too.
                counter = self._round_robin[topic] = itertools.count(random.randrange(1 << 16))
            return counter

    def publish(self, topic: str, events: Sequence[Any]) -> list[PublishResult]:
        """Validate and place the events first, then take the write lock only to allocate offsets
        and insert: the lock is held briefly, so other processes' writers get their turn."""
        con = self.con()
        while True:
            topic_id, count = self._topic(con, topic)
            placed, errors = self._place(topic, count, events)
            with transaction(con, "IMMEDIATE"):
                if self._topic(con, topic) != (topic_id, count):
                    continue  # deleted and created again meanwhile: place the events anew
                offsets = self._append(con, topic, topic_id, placed, errors)
            break
        # Every event has its (partition, offset), or its error (never both).
        return [
            PublishResult(i, *at) if at is not None else PublishResult(i, error=errors[i])
            for i, at in enumerate(offsets)
        ]

    def _place(self, topic: str, count: int, events: Sequence[Any]) -> tuple[list[tuple], dict[int, BrokerError]]:
        """Check each event and choose its partition: ``(index, partition, ts, key, value,
        headers)`` for the good ones, an InvalidRequest for the others."""
        where = self.where
        now = now_ms()
        crc32 = zlib.crc32
        round_robin = self._round_robin_counter(topic)
        placed: list[tuple] = []
        place = placed.append
        errors: dict[int, BrokerError] = {}
        for index, event in enumerate(events):
            try:
                key = event.key
                value = event.value
                headers = event.headers
                p = event.partition
                ts = event.timestamp
                if key is not None and type(key) is not bytes:
                    key = as_bytes(key, "key")
                if value is not None and type(value) is not bytes:
                    value = as_bytes(value, "value")
                headers = encode_headers(headers) if headers else None
                if ts is None:
                    ts = now
                elif type(ts) is not int:
                    raise TypeError(f"timestamp must be int milliseconds, got {type(ts).__name__}")
                if p is None:
                    p = crc32(key) % count if key is not None else next(round_robin) % count
                elif type(p) is not int:
                    raise TypeError(f"partition must be int or None, got {type(p).__name__}")
                elif not 0 <= p < count:
                    errors[index] = InvalidRequest(
                        f"{where}: topic {topic!r} has no partition {p} (partitions 0..{count - 1})"
                    )
                    continue
            except (AttributeError, TypeError, ValueError) as exc:
                errors[index] = InvalidRequest(f"{where}: topic {topic!r}: event {index}: {exc}")
                continue
            place((index, p, ts, key, value, headers))
        return placed, errors

    def _append(
        self,
        con: sqlite3.Connection,
        topic: str,
        topic_id: int,
        placed: list[tuple],
        errors: dict[int, BrokerError],
    ) -> list[tuple[int, int] | None]:
        """In the write transaction: allocate offsets and insert. ``[(partition, offset)]`` by
        index of the events (None for the failed ones)."""
        parts = con.execute(SELECT_PARTITIONS, (topic_id,)).fetchall()
        pids = [r[1] for r in parts]
        next_offset = [r[3] for r in parts]
        max_ts = [r[4] for r in parts]
        offsets: list[tuple[int, int] | None] = [None] * (len(placed) + len(errors))
        rows: list[tuple] = []
        row = rows.append
        for index, p, ts, key, value, headers in placed:
            offset = next_offset[p]
            if offset > OFFSET_MASK:
                errors[index] = InvalidRequest(f"{self.where}: topic {topic!r} partition {p} is full")
                continue
            next_offset[p] = offset + 1
            top = max_ts[p]
            if top is None or ts > top:
                top = max_ts[p] = ts
            row(((pids[p] << OFFSET_BITS) | offset, ts, top, key, value, headers))
            offsets[index] = (p, offset)
        if rows:
            con.executemany(INSERT_EVENT, rows)
            con.executemany(
                "UPDATE partitions SET next_offset = ?, max_ts = ? WHERE id = ? AND next_offset != ?",
                [(next_offset[p], max_ts[p], pids[p], next_offset[p]) for p in range(len(pids))],
            )
        return offsets
