"""TUI ingest: the stream view fed 50,000 events/s vs the bare read loop fed the same, and key latency.

Both phases read the same backlog from the beginning for the same time, handed out at most 50,000
events/s (see tui_ingest.py). The issue's targets: the view keeps up with 50,000 events/s, and a
key press is answered (its repaint done) within 100 ms at the 95th percentile meanwhile. The
ratio to the bare read loop shows whether the view kept up; the latency is the target itself
(before the app tuned the garbage collector it was a p95 of 88-149 ms, max 158-244 ms, on the
same machine). The live test follows a topic a producer process writes to instead (there the
producer sets the rate): ``python tests/benchmarks/tui_ingest.py --live`` prints the same figures.
"""

from __future__ import annotations

import asyncio

from tests.benchmarks import tui_ingest
from tests.benchmarks.conftest import report

SECONDS = 10.0
CAPACITY = 10_000


def test_stream_view_keeps_up_with_50000_events_per_s_and_answers_keys(tmp_path):
    url = f"local:{tmp_path / 'ingest.db'}"
    rate = tui_ingest.DEFAULT_RATE
    baseline, app = asyncio.run(tui_ingest.run(url, SECONDS, capacity=CAPACITY, rate=rate))
    print("\n".join(tui_ingest.describe(baseline, app, CAPACITY, rate, live=False)))
    ratio = app.rate / baseline.rate
    pauses = app.pauses
    report(
        "tui-ingest",
        app_events_per_s=app.rate,
        baseline_events_per_s=baseline.rate,
        ratio=ratio,
        key_p50_ms=app.latency_ms(0.5),
        key_p95_ms=app.latency_ms(0.95),
        key_max_ms=max(app.latencies) * 1000,
        presses=len(app.latencies),
        refresh_max_ms=max(pauses.frames) * 1000,
        gc_max_ms=max((s for _, s in pauses.gc), default=0.0) * 1000,
    )
    assert not [n for n in app.notes if "no response" in n or "read ended" in n], app.notes
    assert len(app.latencies) >= 20  # keys went in all along
    assert ratio >= 0.9, f"the stream view took in {ratio:.2f} of what the bare read loop did"
    assert app.latency_ms(0.95) < 100, f"key press to repaint: p95 {app.latency_ms(0.95):.0f} ms"


def test_stream_view_follows_a_live_producer_and_answers_keys(tmp_path):
    """A producer process publishes as fast as it can while the view follows the topic's end (the
    producer, the app and SQLite share the cores). The view must take in what was published in the
    same window (0.84-1.02 of it in runs at load 2-4; the rest is in flight when the phase ends or
    read late under load); the key latency is reported against the 100 ms target (on this 2-core
    machine its p95 swings with the load: see the README) and asserted only against a regression
    bound."""
    url = f"local:{tmp_path / 'ingest.db'}"
    baseline, app = asyncio.run(tui_ingest.run(url, 8.0, capacity=CAPACITY, live=True))
    print("\n".join(tui_ingest.describe(baseline, app, CAPACITY, 0, live=True)))
    intake = app.received / app.published
    report(
        "tui-ingest-live",
        app_events_per_s=app.rate,
        published_events_per_s=app.published_rate,
        intake=intake,
        key_p50_ms=app.latency_ms(0.5),
        key_p95_ms=app.latency_ms(0.95),
        key_max_ms=max(app.latencies) * 1000,
        loop_cpu_s=app.cpu,
        load=app.load,
    )
    assert not [n for n in app.notes if "no response" in n or "read ended" in n], app.notes
    assert len(app.latencies) >= 20
    assert intake >= 0.75, f"the view took in {intake:.2f} of what the producer published meanwhile"
    assert app.latency_ms(0.95) < 200, f"key press to repaint: p95 {app.latency_ms(0.95):.0f} ms"
