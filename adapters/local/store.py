"""The blocking half of the local adapter: a SQLite event log in one file (WAL mode).

Everything here is synchronous and runs on the connection's worker threads, never on the event
loop. Each worker thread gets its own ``sqlite3`` connection (a sqlite3 connection must not be used
by two threads at once); :meth:`Store.close` closes them all once the workers have stopped.

Several processes may use the same file at once: every write runs in a ``BEGIN IMMEDIATE``
transaction (SQLite's single-writer lock, waited for up to ``busy_timeout_ms``), and offsets are
allocated from ``partitions.next_offset`` inside it, so they are unique and gap-free per
partition. Events are checked and given their partition before the lock is taken: it is held
only to allocate offsets and insert. Readers use WAL snapshots and never block writers.

Schema, version :data:`SCHEMA_VERSION` in ``PRAGMA user_version`` (the file is marked as an event
log by ``PRAGMA application_id`` = :data:`APPLICATION_ID`)::

    topics        (id, name, partitions, config JSON, created ms)
    partitions    (id, topic_id, partition, start_offset, next_offset, max_ts)
    events        (id = partitions.id << 40 | offset, ts ms, max_ts, key, value, headers)
    group_offsets (group_id, partition_id, committed, updated ms)
    events_view   the events with topic, partition and offset spelled out (for humans)

Why ``events.id`` packs (partition, offset) into the rowid: a rowid table with an INTEGER PRIMARY
KEY is SQLite's cheapest to append to and to range-scan (one B-tree, no secondary index, payloads
only in the leaves); it took ~20% less CPU per insert than a WITHOUT ROWID table keyed by
(topic, partition, offset) in our measurements. Limits: 2**40 offsets per partition, 2**23
partitions created over the file's life. Partition and topic ids come from
AUTOINCREMENT and are never reused, so a reader of a deleted topic never sees a newer topic of the
same name.

``max_ts`` is the largest timestamp in the partition up to and including the event: monotonic in
the offset, so a timestamp position is a binary search (exact even when timestamps are not in
order, like Kafka's time index). Headers are stored in a compact binary form, see
:func:`encode_headers`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import operator
import os
import random
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from workbench.broker import (
    BrokerError,
    Event,
    GroupInfo,
    GroupLag,
    InvalidRequest,
    NotFound,
    PartitionInfo,
    PartitionLag,
    Position,
    PublishResult,
    Timeout,
    TopicInfo,
    Unreachable,
    Unsupported,
)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x45564C47  # "EVLG": marks a file as a workbench event log
STABLE_WINDOW_MS = 30_000  # default: a group that committed within this window is "Stable"
MAX_TOPIC_NAME = 249
WAL_AUTOCHECKPOINT_PAGES = 4000
OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
MAX_PARTITION_ID = (1 << (63 - OFFSET_BITS)) - 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS topics (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    partitions   INTEGER NOT NULL CHECK (partitions >= 1),
    config       TEXT    NOT NULL DEFAULT '{{}}',
    created      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id     INTEGER NOT NULL,
    "partition"  INTEGER NOT NULL,
    start_offset INTEGER NOT NULL DEFAULT 0,
    next_offset  INTEGER NOT NULL DEFAULT 0,
    max_ts       INTEGER,
    UNIQUE (topic_id, "partition")
);
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY,
    ts           INTEGER NOT NULL,
    max_ts       INTEGER NOT NULL,
    "key"        BLOB,
    value        BLOB,
    headers      BLOB
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id     TEXT    NOT NULL,
    partition_id INTEGER NOT NULL,
    committed    INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    PRIMARY KEY (group_id, partition_id)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS events_view AS
    SELECT t.name AS topic, p."partition" AS "partition", e.id & {OFFSET_MASK} AS "offset",
           e.ts AS ts, e."key" AS "key", e.value AS value, e.headers AS headers
    FROM events e
    JOIN partitions p ON p.id = e.id >> {OFFSET_BITS}
    JOIN topics t ON t.id = p.topic_id;
"""

_INSERT_EVENT = (
    'INSERT INTO events (id, ts, max_ts, "key", value, headers) VALUES (?, ?, ?, ?, ?, ?)'
)
_SELECT_RANGE = (
    'SELECT id, ts, "key", value, headers, max_ts FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT ?'
)
_SELECT_PARTITIONS = (
    'SELECT "partition", id, start_offset, next_offset, max_ts FROM partitions '
    'WHERE topic_id = ? ORDER BY "partition"'
)

_SELECT_OFFSETS = 'SELECT topic_id, "partition", start_offset, next_offset FROM partitions'

_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- headers codec

_HEADER = struct.Struct(">II")  # name length, value length; then the name (UTF-8) and value bytes


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    """Headers as ``[u32 name length][u32 value length][name][value]`` repeated; None when empty.

    Exact: order and duplicates are kept, values are arbitrary bytes, names any str (lone
    surrogates included, via ``surrogatepass``). Raises TypeError/ValueError on malformed input.
    """
    if not headers:
        return None
    out = b""
    pack = _HEADER.pack
    for name, value in headers:
        if type(name) is not str and not isinstance(name, str):
            raise TypeError(f"header name must be str, got {type(name).__name__}")
        if type(value) is not bytes:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"header {name!r}: value must be bytes, got {type(value).__name__}")
            value = bytes(value)
        try:
            raw_name = name.encode()
        except UnicodeEncodeError:  # lone surrogates: kept exactly all the same
            raw_name = name.encode("utf-8", "surrogatepass")
        out += pack(len(raw_name), len(value)) + raw_name + value
    return out


#: Header names seen by :func:`decode_headers`, raw bytes -> str: a stream repeats the same few
#: names in every event, and a dict look-up costs less than decoding them again. Bounded.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 1024


def decode_headers(blob: bytes | None) -> tuple[tuple[str, bytes], ...]:
    """The inverse of :func:`encode_headers` (it runs once per header of every event read: kept tight)."""
    if not blob:
        return ()
    out = []
    append = out.append
    names = _NAMES
    i, n = 0, len(blob)
    unpack = _HEADER.unpack_from
    while i < n:
        name_len, value_len = unpack(blob, i)
        i += 8
        j = i + name_len
        raw = blob[i:j]
        name = names.get(raw)
        if name is None:
            name = raw.decode("utf-8", "surrogatepass")
            if len(names) < _NAMES_MAX:
                names[raw] = name
        i = j + value_len
        append((name, blob[j:i]))
    return tuple(out)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of a keyed event: stable across processes and runs (CRC-32, not ``hash()``)."""
    return zlib.crc32(key) % partitions


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or None, got {type(value).__name__}")


def _event_id(partition_id: int, offset: int) -> int:
    return (partition_id << OFFSET_BITS) | offset


# --------------------------------------------------------------------------- read cursors


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


# --------------------------------------------------------------------------- the store


@contextmanager
def _transaction(con: sqlite3.Connection, mode: str = "DEFERRED") -> Iterator[None]:
    con.execute(f"BEGIN {mode}")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        raise


class Store:
    """One SQLite file. Methods block; they are thread-safe (one sqlite connection per thread)."""

    def __init__(
        self, path: str, busy_timeout_ms: int, stable_window_ms: int = STABLE_WINDOW_MS, *, create: bool = True
    ) -> None:
        self.path = path
        self.create = create  # False: a missing file is NotFound, never a new empty log
        self.stable_window_ms = stable_window_ms
        self.file = os.path.expanduser(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._round_robin: dict[str, Iterator[int]] = {}
        self._closed = False

    # ------------------------------------------------------------------ connections

    @property
    def where(self) -> str:
        return f"local:{self.path}"

    def _connect(self) -> sqlite3.Connection:
        # Without ``create``, SQLite opens the file read-write only if it exists (mode=rw), so a
        # file removed between the check in open() and here is not created either.
        target = self.file if self.create else Path(os.path.abspath(self.file)).as_uri() + "?mode=rw"
        con = sqlite3.connect(
            target,
            uri=not self.create,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: transactions are explicit
            check_same_thread=False,  # only so that close() may close it from another thread
            cached_statements=256,
        )
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            con.execute("PRAGMA synchronous = NORMAL")  # WAL: never corrupt, durable up to the OS
            con.execute("PRAGMA temp_store = MEMORY")
            con.execute("PRAGMA cache_size = -16000")  # 16 MB
            # Checkpoint every ~16 MB of WAL rather than 4 MB: fewer fsyncs and fewer copies of the
            # pages every commit touches; the WAL file is cut back to 64 MB after a checkpoint.
            con.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            con.execute(f"PRAGMA journal_size_limit = {64 << 20}")
        except BaseException:
            con.close()
            raise
        return con

    def con(self) -> sqlite3.Connection:
        """This thread's sqlite connection, opened on first use."""
        con = getattr(self._local, "con", None)
        if con is None:
            with self._lock:
                if self._closed:
                    raise BrokerError(f"{self.where}: the connection is closed")
            con = self._connect()
            with self._lock:
                self._connections.append(con)
            self._local.con = con
        return con

    def open(self) -> None:
        """Open (or create) the file and its schema; Unreachable when it cannot be used."""
        where = self.where
        if self.file in ("", ":memory:") or self.file.startswith("file:"):
            raise InvalidRequest(f"{where}: give the path of a database file")
        if not self.create and not os.path.exists(self.file):
            raise self._no_such_file()
        directory = os.path.dirname(os.path.abspath(self.file))
        if not os.path.isdir(directory):
            raise Unreachable(f"{where}: directory {directory!r} does not exist")
        if os.path.isdir(self.file):
            raise Unreachable(f"{where}: {self.file!r} is a directory, not an event log file")
        try:
            con = self.con()
            self._ensure_wal(con)
            self._ensure_schema(con)
        except BrokerError:
            raise
        except sqlite3.DatabaseError as exc:
            if not self.create and not os.path.exists(self.file):
                raise self._no_such_file() from exc
            raise Unreachable(f"{where}: cannot open {self.file!r} as an event log: {exc}") from exc
        except OSError as exc:
            raise Unreachable(f"{where}: cannot open {self.file!r}: {exc}") from exc

    def _no_such_file(self) -> NotFound:
        return NotFound(
            f"{self.where}: no such file {self.file!r}",
            hint="check the path; `workbench --broker local:PATH topics create NAME` (or `demo`) starts a new log",
        )

    def _ensure_wal(self, con: sqlite3.Connection) -> None:
        # Reading the mode also proves that this is a SQLite database ("file is not a database").
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while mode.lower() != "wal":
            try:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if mode.lower() != "wal":
                raise Unreachable(f"{self.where}: cannot put {self.file!r} in WAL mode ({mode})")

    def _ensure_schema(self, con: sqlite3.Connection) -> None:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        if version == SCHEMA_VERSION and app_id == APPLICATION_ID:
            return
        with _transaction(con, "IMMEDIATE"):  # two processes creating it at once take turns
            version = con.execute("PRAGMA user_version").fetchone()[0]
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                tables = con.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
                if app_id != 0 or tables:
                    raise Unreachable(
                        f"{self.where}: {self.file!r} is a SQLite database but not an event log"
                    )
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise Unsupported(
                    f"{self.where}: {self.file!r} has event log schema version {version}, newer "
                    f"than this workbench knows ({SCHEMA_VERSION})",
                    hint="upgrade event-workbench",
                )

    def close(self) -> None:
        """Close every thread's connection. Only when no worker thread uses the store any more."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for con in connections:
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)``, turning sqlite errors into the contract's typed errors."""
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise Timeout(
                    f"{self.where}: the event log stayed locked by another writer for more than "
                    f"{self.busy_timeout_ms} ms",
                    hint="raise the busy_timeout_ms option",
                ) from exc
            raise BrokerError(f"{self.where}: SQLite error: {exc}") from exc

    # ------------------------------------------------------------------ lookups

    def _topic(self, con: sqlite3.Connection, name: str) -> tuple[int, int]:
        if not isinstance(name, str):
            raise InvalidRequest(
                f"{self.where}: a topic name must be str, got {type(name).__name__}"
            )
        row = con.execute("SELECT id, partitions FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"{self.where}: topic {name!r} does not exist")
        return row

    def _no_partition(self, topic: str, partition: Any, count: int) -> NotFound:
        return NotFound(
            f"{self.where}: topic {topic!r} has no partition {partition!r} "
            f"(partitions 0..{count - 1})"
        )

    def _topic_infos(self, con: sqlite3.Connection, where: str, args: tuple) -> list[TopicInfo]:
        topics = con.execute(
            f"SELECT id, name, config, created FROM topics {where} ORDER BY name", args
        ).fetchall()
        parts: dict[int, list[PartitionInfo]] = {}
        ids = [t[0] for t in topics]
        if len(ids) == 1:
            rows = con.execute(_SELECT_OFFSETS + " WHERE topic_id = ?", (ids[0],))
        else:
            rows = con.execute(_SELECT_OFFSETS)
        for topic_id, p, start, end in rows:
            parts.setdefault(topic_id, []).append(PartitionInfo(p, start, end))
        return [
            TopicInfo(
                name=name,
                kind="topic",
                partitions=tuple(
                    sorted(parts.get(topic_id, ()), key=operator.attrgetter("partition"))
                ),
                config=json.loads(config),
                metadata={"created": _iso(created)},
            )
            for topic_id, name, config, created in topics
        ]

    # ------------------------------------------------------------------ topics

    def list_topics(self) -> list[TopicInfo]:
        con = self.con()
        with _transaction(con):
            return self._topic_infos(con, "", ())

    def describe_topic(self, name: str) -> TopicInfo:
        """The topic; where its offsets have gaps (a capture or trace file keeps the source's
        offsets), ``metadata["event_counts"]`` holds the real number of events per partition."""
        con = self.con()
        with _transaction(con):
            topic_id, _ = self._topic(con, name)
            info = self._topic_infos(con, "WHERE name = ?", (name,))[0]
            counts = self._event_counts(con, topic_id)
        if all(counts.get(p.partition, 0) == p.count for p in info.partitions):
            return info
        return replace(info, metadata={**info.metadata, "event_counts": counts})

    def _event_counts(self, con: sqlite3.Connection, topic_id: int) -> dict[int, int]:
        """Events stored per partition (one range count each over the packed row ids)."""
        counts = {}
        for p, pid, lo, hi, _max_ts in con.execute(_SELECT_PARTITIONS, (topic_id,)).fetchall():
            counts[p] = con.execute(
                "SELECT count(*) FROM events WHERE id >= ? AND id < ?", (_event_id(pid, lo), _event_id(pid, hi))
            ).fetchone()[0]
        return counts

    def create_topic(
        self, name: str, partitions: int, config: Mapping[str, str] | None
    ) -> TopicInfo:
        where = self.where
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"{where}: a topic name must be a non-empty string, got {name!r}")
        if len(name) > MAX_TOPIC_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InvalidRequest(
                f"{where}: invalid topic name {name!r} (at most {MAX_TOPIC_NAME} characters, "
                "no control characters)"
            )
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidRequest(
                f"{where}: topic {name!r}: partitions must be an int >= 1, got {partitions!r}"
            )
        config = dict(config or {})
        for k, v in config.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidRequest(f"{where}: topic {name!r}: config keys and values must be str")
        con = self.con()
        with _transaction(con, "IMMEDIATE"):
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
        with _transaction(con, "IMMEDIATE"):
            topic_id, _ = self._topic(con, name)
            pids = [
                r[0]
                for r in con.execute("SELECT id FROM partitions WHERE topic_id = ?", (topic_id,))
            ]
            for pid in pids:
                con.execute(
                    "DELETE FROM events WHERE id >= ? AND id < ?",
                    (_event_id(pid, 0), _event_id(pid + 1, 0)),
                )
                con.execute("DELETE FROM group_offsets WHERE partition_id = ?", (pid,))
            con.execute("DELETE FROM partitions WHERE topic_id = ?", (topic_id,))
            con.execute("DELETE FROM topics WHERE id = ?", (topic_id,))

    def truncate(self, name: str, partition: int, before_offset: int) -> int:
        """Local-only retention: drop the events before ``before_offset``; returns the new start."""
        con = self.con()
        with _transaction(con, "IMMEDIATE"):
            topic_id, count = self._topic(con, name)
            row = con.execute(
                "SELECT id, start_offset, next_offset FROM partitions "
                'WHERE topic_id = ? AND "partition" = ?',
                (topic_id, partition),
            ).fetchone()
            if row is None:
                raise self._no_partition(name, partition, count)
            pid, start, end = row
            new_start = max(start, min(int(before_offset), end))
            if new_start > start:
                con.execute(
                    "DELETE FROM events WHERE id >= ? AND id < ?",
                    (_event_id(pid, start), _event_id(pid, new_start)),
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
        with _transaction(con, "IMMEDIATE"):
            topic_id, count = self._topic(con, topic)
            parts = {r[0]: [r[1], r[2], r[3], r[4]] for r in con.execute(_SELECT_PARTITIONS, (topic_id,))}
            for p, start in (starts or {}).items():
                if p not in parts:
                    raise self._no_partition(topic, p, count)
                _pid, lo, hi, _ = parts[p]
                if lo != hi or start < hi:
                    raise InvalidRequest(f"{where}: topic {topic!r} partition {p}: cannot start at {start} (holds {lo}..{hi})")
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
            con.executemany(_INSERT_EVENT, rows)
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
            with _transaction(con, "IMMEDIATE"):
                if self._topic(con, topic) != (topic_id, count):
                    continue  # deleted and created again meanwhile: place the events anew
                offsets = self._append(con, topic, topic_id, placed, errors)
            break
        if not errors:
            return [PublishResult(i, p, offset) for i, (p, offset) in enumerate(offsets)]
        return [
            PublishResult(i, error=errors[i]) if i in errors else PublishResult(i, *offsets[i])
            for i in range(len(events))
        ]

    def _place(
        self, topic: str, count: int, events: Sequence[Any]
    ) -> tuple[list[tuple], dict[int, BrokerError]]:
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
                    key = _as_bytes(key, "key")
                if value is not None and type(value) is not bytes:
                    value = _as_bytes(value, "value")
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
        parts = con.execute(_SELECT_PARTITIONS, (topic_id,)).fetchall()
        pids = [r[1] for r in parts]
        next_offset = [r[3] for r in parts]
        max_ts = [r[4] for r in parts]
        offsets: list[tuple[int, int] | None] = [None] * (len(placed) + len(errors))
        rows: list[tuple] = []
        row = rows.append
        for index, p, ts, key, value, headers in placed:
            offset = next_offset[p]
            if offset > OFFSET_MASK:
                errors[index] = InvalidRequest(
                    f"{self.where}: topic {topic!r} partition {p} is full"
                )
                continue
            next_offset[p] = offset + 1
            top = max_ts[p]
            if top is None or ts > top:
                top = max_ts[p] = ts
            row(((pids[p] << OFFSET_BITS) | offset, ts, top, key, value, headers))
            offsets[index] = (p, offset)
        if rows:
            con.executemany(_INSERT_EVENT, rows)
            con.executemany(
                "UPDATE partitions SET next_offset = ?, max_ts = ? "
                "WHERE id = ? AND next_offset != ?",
                [(next_offset[p], max_ts[p], pids[p], next_offset[p]) for p in range(len(pids))],
            )
        return offsets

    # ------------------------------------------------------------------ read

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
        with _transaction(con):  # one snapshot: the positions and the ends agree
            topic_id, count = self._topic(con, topic)
            rows = {r[0]: r for r in con.execute(_SELECT_PARTITIONS, (topic_id,))}
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
            found = con.execute(probe, (_event_id(pid, mid), _event_id(pid, hi))).fetchone()
            if found is None or found[0] < ts:
                a = mid + 1
            else:
                b = mid
        if a >= hi:
            return hi
        # max_ts can only overshoot if older events were truncated away: step to the exact event.
        row = con.execute(
            "SELECT id FROM events WHERE id >= ? AND id < ? AND ts >= ? ORDER BY id LIMIT 1",
            (_event_id(pid, a), _event_id(pid, hi), ts),
        ).fetchone()
        return hi if row is None else row[0] & OFFSET_MASK

    def next_batch(self, cur: ReadCursor) -> list[Event] | None:
        """The next batch: None when a bounded read is done, [] when a follow read is caught up."""
        con = self.con()
        with _transaction(con):
            if cur.follow:
                ends = dict(
                    con.execute(
                        "SELECT id, next_offset FROM partitions WHERE topic_id = ?", (cur.topic_id,)
                    ).fetchall()
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
                    _SELECT_RANGE,
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
        row = con.execute(
            "SELECT start_offset FROM partitions WHERE id = ?", (part.pid,)
        ).fetchone()
        if row is None:
            raise NotFound(f"{self.where}: topic {cur.topic!r} was deleted")
        # Truncated under the reader: go on from the new start (never spin on an empty range).
        part.pos = min(row[0], part.end) if row[0] > part.pos else part.end

    # ------------------------------------------------------------------ groups

    def groups(self) -> list[GroupInfo]:
        now = now_ms()
        rows = (
            self.con()
            .execute(
                "SELECT group_id, max(updated) FROM group_offsets "
                "GROUP BY group_id ORDER BY group_id"
            )
            .fetchall()
        )
        return [
            GroupInfo(g, _group_state(updated, now, self.stable_window_ms), protocol="local")
            for g, updated in rows
        ]

    def lag(self, group_ids: Sequence[str] | None) -> list[GroupLag]:
        con = self.con()
        with _transaction(con):
            observed = now_ms()
            rows = con.execute(
                'SELECT g.group_id, t.name, p."partition", g.committed, p.start_offset, '
                "p.next_offset, g.updated "
                "FROM group_offsets g JOIN partitions p ON p.id = g.partition_id "
                "JOIN topics t ON t.id = p.topic_id "
                'ORDER BY g.group_id, t.name, p."partition"'
            ).fetchall()
        by_group: dict[str, list[tuple]] = {}
        for r in rows:
            by_group.setdefault(r[0], []).append(r)
        if group_ids is None:
            wanted = list(by_group)
        else:
            wanted = list(dict.fromkeys(group_ids))
            for g in wanted:
                if g not in by_group:
                    raise NotFound(f"{self.where}: consumer group {g!r} does not exist")
        return [
            GroupLag(
                group_id=g,
                state=_group_state(max(r[6] for r in by_group[g]), observed, self.stable_window_ms),
                partitions=tuple(
                    PartitionLag(topic, p, committed, start, end)
                    for _g, topic, p, committed, start, end, _u in by_group[g]
                ),
                observed_at=observed,
            )
            for g in wanted
        ]

    def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        where = self.where
        if not isinstance(group_id, str) or not group_id:
            raise InvalidRequest(
                f"{where}: a group id must be a non-empty string, got {group_id!r}"
            )
        con = self.con()
        with _transaction(con, "IMMEDIATE"):
            now = now_ms()
            rows = []
            topics: dict[str, tuple[int, dict[int, int]]] = {}
            for (topic, partition), offset in offsets.items():
                if topic not in topics:
                    topic_id, count = self._topic(con, topic)
                    pids = {r[0]: r[1] for r in con.execute(_SELECT_PARTITIONS, (topic_id,))}
                    topics[topic] = (count, pids)
                count, pids = topics[topic]
                if isinstance(partition, bool) or partition not in pids:
                    raise self._no_partition(topic, partition, count)
                if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                    raise InvalidRequest(
                        f"{where}: group {group_id!r}: the offset for {topic!r} partition "
                        f"{partition} must be an int >= 0, got {offset!r}"
                    )
                rows.append((group_id, pids[partition], offset, now))
            con.executemany(
                "INSERT INTO group_offsets (group_id, partition_id, committed, updated) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, partition_id) "
                "DO UPDATE SET committed = excluded.committed, updated = excluded.updated",
                rows,
            )


def _group_state(updated: int, now: int, window_ms: int = STABLE_WINDOW_MS) -> str:
    return "Stable" if now - updated < window_ms else "Empty"


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _iso(ms: int | None) -> str | None:
    """A creation time as people read it (ISO-8601 UTC), not milliseconds."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
