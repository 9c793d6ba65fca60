"""The local event log's file format: schema, row ids, headers codec, and the SQLite helpers.

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
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

SCHEMA_VERSION = 1
APPLICATION_ID = 0x45564C47  # "EVLG": marks a file as a workbench event log
OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
MAX_PARTITION_ID = (1 << (63 - OFFSET_BITS)) - 1

SCHEMA = f"""
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

INSERT_EVENT = 'INSERT INTO events (id, ts, max_ts, "key", value, headers) VALUES (?, ?, ?, ?, ?, ?)'
SELECT_RANGE = 'SELECT id, ts, "key", value, headers, max_ts FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT ?'
SELECT_PARTITIONS = (
    'SELECT "partition", id, start_offset, next_offset, max_ts FROM partitions WHERE topic_id = ? ORDER BY "partition"'
)

SELECT_OFFSETS = 'SELECT topic_id, "partition", start_offset, next_offset FROM partitions'

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
    out: list[tuple[str, bytes]] = []
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


def as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or None, got {type(value).__name__}")


def event_id(partition_id: int, offset: int) -> int:
    return (partition_id << OFFSET_BITS) | offset


@contextmanager
def transaction(con: sqlite3.Connection, mode: str = "DEFERRED") -> Iterator[None]:
    con.execute(f"BEGIN {mode}")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text
