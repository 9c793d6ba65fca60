"""Saga reconstruction: `observing.observe` over the demo with 2,000 order sagas (about 9,300
events on four topics) on the local adapter.

Baseline, in the same run on the same file: a bare loop that reads the same topics through the
same connection, decodes every JSON value and groups the events by their correlation_id header
(the least any reconstruction must do). The ratio says what matching the steps' filter
expressions, the CloudEvents attributes and building the instances cost on top.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

from tests.benchmarks.conftest import report
from workbench.broker import Position
from workbench.demo import seeding
from workbench.sagas import observing, settings
from workbench_local import LocalAdapter

ORDERS = 2000
ROUNDS = 3


async def bare(conn, topics) -> int:
    groups: dict[bytes, list] = defaultdict(list)
    for topic in topics:
        async for batch in conn.read(topic, Position.beginning(), batch_size=2000):
            for event in batch:
                json.loads(event.value)
                groups[dict(event.headers).get("correlation_id", b"")].append(event)
    return len(groups)


def test_saga_scan_against_a_bare_read(tmp_path):
    async def go() -> tuple[float, float, int]:
        conn = await LocalAdapter(LocalAdapter.options_from_url(f"local:{tmp_path / 'events.db'}")).connect()
        try:
            await seeding.seed(conn, orders=ORDERS, now_ms=1_800_000_000_000)
            order = settings.builtin_definitions()["order"]
            best_bare = best_saga = float("inf")
            for _ in range(ROUNDS):
                started = time.perf_counter()
                grouped = await bare(conn, order.topics)
                best_bare = min(best_bare, time.perf_counter() - started)
                started = time.perf_counter()
                found = await observing.observe(conn, order, order.correlator(), now=1_800_000_000_000)
                best_saga = min(best_saga, time.perf_counter() - started)
            assert len(found) == grouped == ORDERS
            return best_bare, best_saga, sum([(await conn.describe_topic(t)).count for t in order.topics])
        finally:
            await conn.close()

    baseline, saga, events = asyncio.run(go())
    report("saga scan", events=events, bare_s=baseline, saga_s=saga, ratio=saga / baseline, events_per_s=events / saga)
    assert saga / baseline < 6, f"saga reconstruction is {saga / baseline:.1f}x a bare grouped read"
