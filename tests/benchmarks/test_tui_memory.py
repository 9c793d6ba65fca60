"""TUI memory: following 1,000,000 events keeps the app under 300 MB (the ring buffer is bounded).

Baseline, same run: the same app idle on an empty topic. Both run as processes of their own
(tui_memory.py) and report their peak RSS (VmHWM).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.benchmarks import tui_ingest
from tests.benchmarks.conftest import HERE, report
from workbench import config, service

COUNT = 1_000_000
LIMIT_MB = 300


async def fill(url: str) -> None:
    """An empty topic, and one of COUNT demo-like events (~300 bytes with headers)."""
    async with service.connect(config.resolve(config.url_profile(url))) as conn:
        await conn.create_topic("empty", 3)
        await conn.create_topic("big", 3)
        batch = [tui_ingest.outgoing(i) for i in range(10_000)]
        for _ in range(COUNT // len(batch)):
            results = await conn.publish("big", batch)
            assert all(r.ok for r in results)


def peak(url: str, topic: str, count: int) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "tui_memory.py"), url, topic, str(count)],
        capture_output=True,
        env=tui_ingest.child_env(),
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@pytest.mark.timeout(1800)
def test_following_a_million_events_stays_under_300_mb(tmp_path):
    url = f"local:{tmp_path / 'memory.db'}"
    asyncio.run(fill(url))
    idle = peak(url, "empty", 0)
    busy = peak(url, "big", COUNT)
    report(
        "tui-memory-1M",
        followed=busy["received"],
        kept=busy["kept"],
        peak_rss_mb=busy["peak_rss_mb"],
        idle_rss_mb=idle["peak_rss_mb"],
        ratio=busy["peak_rss_mb"] / idle["peak_rss_mb"],
        events_per_s=busy["received"] / busy["seconds"],
    )
    assert busy["received"] >= COUNT and busy["kept"] == busy["capacity"]
    assert busy["peak_rss_mb"] < LIMIT_MB
    # the buffer is bounded: following a million events costs a few buffers' worth over idle
    assert busy["peak_rss_mb"] / idle["peak_rss_mb"] < 3.0
