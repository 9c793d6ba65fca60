"""The conformance suite against the real Kafka broker of ``tests/brokers/brokers.sh``.

Every test gets uniquely named topics (deleted by :meth:`Harness.teardown`). A missing broker
fails the test with the command that starts it; it is never skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.brokers import endpoints
from workbench.broker import Adapter
from workbench_kafka import KafkaAdapter

from .harness import Harness


def _native_client_threads() -> list[str]:
    """Names of librdkafka's threads ("rdk:main", "rdk:broker1" ...) alive in this process
    (Linux; elsewhere none are seen and only the Python reader threads are checked)."""
    names: list[str] = []
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name.startswith("rdk:"):
            names.append(name)
    return names


def _delete_groups(names: list[str]) -> None:
    """Best effort: delete the consumer groups among ``names`` (the broker is shared)."""
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    try:
        existing = {g.group_id for g in admin.list_consumer_groups(request_timeout=5).result(10).valid}
        mine = [n for n in names if n in existing]
        if mine:
            for future in admin.delete_consumer_groups(mine, request_timeout=5).values():
                try:
                    future.result(10)
                except Exception:  # noqa: BLE001 - e.g. a group that still has members
                    pass
    except Exception:  # noqa: BLE001 - cleanup never fails a test
        pass


class KafkaHarness(Harness):
    """Kafka 4.x (KRaft, one node) on 127.0.0.1:9092."""

    name = "kafka"
    adapter_class = KafkaAdapter
    marks = (pytest.mark.kafka,)

    def __init__(self, tmp_path: Path, test_name: str) -> None:
        super().__init__(tmp_path, test_name)
        if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
            pytest.fail(
                f"Kafka does not answer on {endpoints.KAFKA_BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`",
                pytrace=False,
            )
        self._names: list[str] = []
        # librdkafka threads alive before the test (other clients of this process are not ours)
        self._native_before = len(_native_client_threads())

    def options(self) -> dict[str, Any]:
        return {"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP, "timeout_s": 10.0}

    def unreachable_adapter(self) -> Adapter:
        return KafkaAdapter({"bootstrap.servers": "127.0.0.1:1", "timeout_s": 2.0})

    def unique(self, prefix: str = "conf") -> str:
        name = super().unique(prefix)
        self._names.append(name)  # topics or groups: teardown removes whichever exists
        return name

    async def teardown(self) -> None:
        """Delete the test's topics (base class), then the consumer groups it made."""
        await super().teardown()
        if self._names:
            await asyncio.to_thread(_delete_groups, self._names)

    async def assert_clean(self) -> None:
        """No reader thread and no librdkafka client (consumer, producer, admin) is left running;
        and reading never left a consumer group behind."""
        deadline = time.monotonic() + 5
        while True:
            readers = [t.name for t in threading.enumerate() if t.name.startswith("workbench-kafka")]
            native = _native_client_threads()
            if not readers and len(native) <= self._native_before:
                break
            if time.monotonic() >= deadline:
                raise AssertionError(f"still running after close(): {readers + native}")
            await asyncio.sleep(0.05)
        groups = await asyncio.to_thread(endpoints.kafka_group_ids, "workbench-tail-")
        assert not groups, groups
