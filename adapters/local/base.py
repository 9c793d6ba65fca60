"""The local store's base: one SQLite file, a sqlite3 connection per worker thread, look-ups.

Everything in the store is synchronous and runs on the connection's worker threads, never on the
event loop. Each worker thread gets its own ``sqlite3`` connection (a sqlite3 connection must not
be used by two threads at once); :meth:`StoreBase.close` closes them all once the workers have
stopped. Readers use WAL snapshots and never block writers.

:class:`~.store.Store` is composed of mixins on :class:`StoreBase`: ``store.py`` (topics and
writing), ``reader.py`` (read cursors), ``lag.py`` (groups and their committed offsets); the file
format is in ``schema.py``.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.broker import (
    BrokerError,
    InvalidRequest,
    NotFound,
    PartitionInfo,
    Timeout,
    TopicInfo,
    Unreachable,
    Unsupported,
)

from .schema import (
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_VERSION,
    SELECT_OFFSETS,
    is_busy,
    transaction,
)

STABLE_WINDOW_MS = 30_000  # default: a group that committed within this window is "Stable"
WAL_AUTOCHECKPOINT_PAGES = 4000


class StoreBase:
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
                if not is_busy(exc) or time.monotonic() > deadline:
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
        with transaction(con, "IMMEDIATE"):  # two processes creating it at once take turns
            version = con.execute("PRAGMA user_version").fetchone()[0]
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                tables = con.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]
                if app_id != 0 or tables:
                    raise Unreachable(f"{self.where}: {self.file!r} is a SQLite database but not an event log")
            if version == 0:
                for statement in SCHEMA.split(";"):
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
            if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                raise Timeout(
                    f"{self.where}: the event log stayed locked by another writer for more than "
                    f"{self.busy_timeout_ms} ms",
                    hint="raise the busy_timeout_ms option",
                ) from exc
            raise BrokerError(f"{self.where}: SQLite error: {exc}") from exc

    # ------------------------------------------------------------------ lookups

    def _topic(self, con: sqlite3.Connection, name: str) -> tuple[int, int]:
        if not isinstance(name, str):
            raise InvalidRequest(f"{self.where}: a topic name must be str, got {type(name).__name__}")
        row = con.execute("SELECT id, partitions FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"{self.where}: topic {name!r} does not exist")
        return row

    def _no_partition(self, topic: str, partition: Any, count: int) -> NotFound:
        return NotFound(f"{self.where}: topic {topic!r} has no partition {partition!r} (partitions 0..{count - 1})")

    def _topic_infos(self, con: sqlite3.Connection, where: str, args: tuple) -> list[TopicInfo]:
        topics = con.execute(f"SELECT id, name, config, created FROM topics {where} ORDER BY name", args).fetchall()
        parts: dict[int, list[PartitionInfo]] = {}
        ids = [t[0] for t in topics]
        if len(ids) == 1:
            rows = con.execute(SELECT_OFFSETS + " WHERE topic_id = ?", (ids[0],))
        else:
            rows = con.execute(SELECT_OFFSETS)
        for topic_id, p, start, end in rows:
            parts.setdefault(topic_id, []).append(PartitionInfo(p, start, end))
        return [
            TopicInfo(
                name=name,
                kind="topic",
                partitions=tuple(sorted(parts.get(topic_id, ()), key=operator.attrgetter("partition"))),
                config=json.loads(config),
                metadata={"created": _iso(created)},
            )
            for topic_id, name, config, created in topics
        ]


def _iso(ms: int | None) -> str | None:
    """A creation time as people read it (ISO-8601 UTC), not milliseconds."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
