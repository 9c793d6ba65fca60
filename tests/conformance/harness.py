"""How the conformance suite reaches each adapter.

To run the suite against another adapter, write one :class:`Harness` subclass (how to configure
it, where a dead endpoint is, how to make topics and lag figures, what "clean" means after close)
in a module of this package named ``<broker>_harness.py``: :func:`harnesses` finds it there.
Tests that need a capability the adapter does not declare are skipped, naming the capability;
nothing else is ever skipped.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from workbench.broker import Adapter, Capabilities, Connection
from workbench_local import LocalAdapter


class Harness:
    """One adapter under test. Subclasses override what differs for their broker."""

    name: ClassVar[str]
    adapter_class: ClassVar[type[Adapter]]
    marks: ClassVar[tuple[Any, ...]] = ()  # e.g. (pytest.mark.kafka,) for a real broker
    # Whether publish results carry the offsets the events got (False: results say offset=None,
    # e.g. when the broker's confirms do not tell; the suite then checks they are None).
    publish_offsets: ClassVar[bool] = True

    def __init__(self, tmp_path: Path, test_name: str) -> None:
        self.tmp_path = tmp_path
        self.test_name = test_name
        self.created_topics: list[str] = []

    # ------------------------------------------------------------------ adapter

    def options(self) -> dict[str, Any]:
        """The options of a working adapter."""
        raise NotImplementedError

    def adapter(self) -> Adapter:
        return self.adapter_class(self.options())

    def unreachable_adapter(self) -> Adapter:
        """An adapter configured to point somewhere dead (connect() must raise Unreachable)."""
        raise NotImplementedError

    @property
    def capabilities(self) -> Capabilities:
        return self.adapter_class.capabilities

    def require(self, *capabilities: str) -> None:
        """Skip the test, naming the capability, unless the adapter declares all of them."""
        for capability in capabilities:
            if not getattr(self.capabilities, capability):
                pytest.skip(f"{self.name}: capability {capability!r} not declared")

    def several(self, partitions: int) -> int:
        """``partitions`` if the adapter has partitions, else 1 (tests that work either way)."""
        return partitions if self.capabilities.partitions else 1

    # ------------------------------------------------------------------ fixtures of a test

    def unique(self, prefix: str = "wbc") -> str:
        """A name no other test (or earlier run) uses: letters, digits, '-' and '.' only."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    async def new_topic(self, conn: Connection, partitions: int = 1) -> str:
        """A fresh, empty topic with ``partitions`` partitions; its name is unique."""
        self.require("topic_admin")
        name = self.unique()
        await conn.create_topic(name, partitions)
        self.created_topics.append(name)
        return name

    def topic_config(self) -> Mapping[str, str]:
        """A topic config the broker accepts and reports back in describe_topic()."""
        return {"retention.ms": "86400000"}

    async def commit(self, conn: Connection, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Make ``group`` have these committed offsets (``{(topic, partition): next offset}``)."""
        self.require("offsets_reset")
        await conn.commit_offsets(group, offsets)

    async def assert_clean(self) -> None:
        """After every iterator and connection was closed: nothing of the test is left open."""

    async def teardown(self) -> None:
        """Remove what the test created on the broker (best effort)."""
        if not self.created_topics or not self.capabilities.topic_admin:
            return
        try:
            conn = await self.adapter().connect()
        except Exception:
            return
        try:
            for name in self.created_topics:
                with contextlib.suppress(Exception):
                    await conn.delete_topic(name)
        finally:
            await conn.close()


class LocalHarness(Harness):
    """The embedded SQLite event log; each test gets its own file in pytest's tmp_path."""

    name = "local"
    adapter_class = LocalAdapter

    def __init__(self, tmp_path: Path, test_name: str) -> None:
        super().__init__(tmp_path, test_name)
        self.db = tmp_path / "events.db"

    def options(self) -> dict[str, Any]:
        return {"path": str(self.db)}

    def unreachable_adapter(self) -> Adapter:
        return self.adapter_class({"path": str(self.tmp_path / "no-such-dir" / "events.db")})

    async def assert_clean(self) -> None:
        files = [Path(f"{self.db}{suffix}") for suffix in ("", "-wal", "-shm")]
        assert self.db.exists(), "the test should have created the event log file"
        fd_dir = Path("/proc/self/fd")
        if fd_dir.is_dir():  # Linux: no descriptor of this process may still point at the files
            open_files = set()
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):  # (the descriptor of the listing itself)
                    open_files.add(os.path.realpath(fd))
            left = [str(f) for f in files if os.path.realpath(f) in open_files]
            assert not left, f"still open after close(): {left}"
        for f in files:  # deleting and re-creating works (on Windows only when nothing is open)
            f.unlink(missing_ok=True)
        conn = await self.adapter().connect()
        try:
            assert await conn.list_topics() == []
        finally:
            await conn.close()

    async def teardown(self) -> None:
        """Nothing to do: the file lives in tmp_path."""


def harnesses() -> list[type[Harness]]:
    """Every adapter the suite runs against: LocalHarness, then the concrete Harness subclasses
    of the ``*_harness.py`` modules next to this one (a real broker's harness sets ``marks``,
    e.g. ``(pytest.mark.kafka,)``, so that ``-m "not kafka"`` leaves it out)."""
    for module in sorted(Path(__file__).parent.glob("*_harness.py")):
        importlib.import_module(f"{__package__}.{module.stem}")
    found: list[type[Harness]] = []

    def collect(cls: type[Harness]) -> None:
        for sub in cls.__subclasses__():
            if "name" in vars(sub) and sub not in found:
                found.append(sub)
            collect(sub)

    collect(Harness)
    return sorted(found, key=lambda cls: (cls is not LocalHarness, cls.name))
