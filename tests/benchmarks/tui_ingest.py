"""How fast the stream view ingests events from a local producer process, and how fast it answers keys.

    python tests/benchmarks/tui_ingest.py [--seconds 10] [--batch 1000] [--capacity 10000] [--profile FILE]

A producer process publishes batches of demo-like events (JSON value, CloudEvents headers) as fast
as it can into a fresh local event log. Two phases follow the topic from its end for the same time,
with the same producer running:

- baseline: the bare read loop (``conn.read(..., follow=True)``, counting batches, nothing else);
- app: the workbench app (headless, 160x48, Pilot) following it in the stream view, while key
  presses (up: leave the bottom, end: follow again) go in the way Pilot sends them. A key's
  latency is the time from sending it to the first screen refresh after its action ran.

``tests/benchmarks/test_tui_ingest.py`` asserts on the ratio; this script prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workbench import config, service
from workbench.broker import OutgoingEvent, Position

TOPIC = "ingest"
PARTITIONS = 3
ROOT = Path(__file__).resolve().parents[2]  # the repository: the producer imports workbench from it
KEY_GAP = 0.2  # seconds between two key presses


def outgoing(i: int) -> OutgoingEvent:
    value = json.dumps(
        {
            "orderId": f"ORD-{i:08X}",
            "customerId": f"CUS-{i % 500:05d}",
            "amount": i % 997,
            "currency": "EUR",
            "correlationId": f"corr-{i:012d}",
        }
    ).encode()
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_type", b"OrderPlaced"),
        ("ce_source", b"/orders-service"),
        ("correlation_id", f"corr-{i:012d}".encode()),
    )
    return OutgoingEvent(value=value, key=f"ORD-{i:08X}".encode(), headers=headers)


async def produce(url: str, batch: int) -> None:
    """Publish until killed."""
    events_ = [outgoing(i) for i in range(batch)]
    async with service.connect(config.resolve(config.url_profile(url))) as conn:
        while True:
            await conn.publish(TOPIC, events_)


def child_env() -> dict[str, str]:
    """The environment of a child process that imports workbench from this checkout."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@contextlib.contextmanager
def producer(url: str, batch: int) -> Iterator[subprocess.Popen]:
    """A producer process publishing into ``url``'s topic while the block runs."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--produce", "--url", url, "--batch", str(batch)], env=child_env()
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait()
    assert proc.returncode in (0, -15), f"the producer failed (exit {proc.returncode})"


@dataclass
class Phase:
    """What one phase took in while the producer published."""

    seconds: float
    published: int
    received: int
    latencies: list[float] = field(default_factory=list)  # seconds, one per key press (app phase)
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.received / self.seconds

    @property
    def published_rate(self) -> float:
        return self.published / self.seconds

    def latency_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the key latencies, in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


async def end_count(conn) -> int:
    return (await conn.describe_topic(TOPIC)).count


async def wait_for_traffic(conn, before: int) -> None:
    """Until the producer has published something (it is a process of its own: it takes a while)."""
    deadline = time.monotonic() + 60
    while await end_count(conn) == before:
        assert time.monotonic() < deadline, "the producer published nothing in 60 s"
        await asyncio.sleep(0.05)


async def create_topic(url: str) -> None:
    async with service.connect(config.resolve(config.url_profile(url))) as conn:
        await conn.create_topic(TOPIC, PARTITIONS)


async def bare_read(url: str, seconds: float) -> Phase:
    """Baseline: the adapter's follow read from the end, counting events and doing nothing else."""
    target = config.resolve(config.url_profile(url))
    async with service.connect(target) as probe, service.connect(target) as conn:
        await wait_for_traffic(probe, 0)
        received = 0
        reader = conn.read(TOPIC, Position.end(), follow=True)
        first = await end_count(probe)
        started = time.perf_counter()
        async with contextlib.aclosing(reader):
            async for batch in reader:
                received += len(batch)
                if time.perf_counter() - started >= seconds:
                    break
        elapsed = time.perf_counter() - started
        return Phase(elapsed, await end_count(probe) - first, received)


async def follow_in_app(url: str, seconds: float, capacity: int) -> Phase:
    """The app follows the topic in its stream view; keys are pressed every :data:`KEY_GAP` s."""
    from textual import events

    from workbench.tui.app import WorkbenchApp

    target = config.resolve(config.url_profile(url))
    app = WorkbenchApp(target, capacity=capacity)
    gc.freeze()  # as workbench.tui.app.run_app does before the app runs
    async with app.run_test(size=(160, 48)) as pilot, service.connect(target) as probe:
        await wait_for_traffic(probe, 0)
        while app.conn is None:
            await pilot.pause()
        app.main.topic = TOPIC
        await app.main._ensure_stream(Position.end())
        stream = app.main.stream
        listing = stream.event_list
        listing.focus()
        await pilot.pause()

        acted: list[float] = []  # when a pressed key's action ran
        painted: list[float] = []  # when the screen was refreshed
        for name in ("action_cursor", "action_bottom"):
            original = getattr(listing, name)

            def timed(*args, _original=original):
                acted.append(time.perf_counter())
                _original(*args)

            setattr(listing, name, timed)
        screen = app.screen
        refresh = screen._compositor_refresh

        def timed_refresh() -> None:
            refresh()
            painted.append(time.perf_counter())

        screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]

        phase = Phase(0.0, 0, 0)
        first_end = await end_count(probe)
        first_received = stream.buffer.received
        started = time.perf_counter()
        keys = ("up", "end")
        while time.perf_counter() - started < seconds:
            await asyncio.sleep(KEY_GAP)
            key = keys[len(phase.latencies) % 2]
            before = len(acted)
            sent = time.perf_counter()
            app._driver.send_message(events.Key(key, None))  # what Pilot.press does for one key
            while time.perf_counter() - sent < 5:
                if len(acted) > before and painted and painted[-1] >= acted[before]:
                    break
                await asyncio.sleep(0.001)
            else:
                phase.notes.append(f"key {key!r}: no response within 5 s")
            phase.latencies.append((painted[-1] if painted else time.perf_counter()) - sent)
        phase.seconds = time.perf_counter() - started
        phase.received = stream.buffer.received - first_received
        phase.published = await end_count(probe) - first_end
        phase.dropped = stream.buffer.dropped
        pump = stream.pump
        if pump is None or not pump.active:
            phase.notes.append(f"the read ended: {stream.state_text()} {getattr(pump, 'error', None)!r}")
        phase.notes.extend(f"notification: {n.title}: {n.message}" for n in app._notifications)
        await stream.stop()
        await pilot.pause()
    return phase


async def run(url: str, seconds: float, batch: int, capacity: int) -> tuple[Phase, Phase]:
    """(baseline, app): both while the same producer publishes into a fresh topic."""
    await create_topic(url)
    with producer(url, batch):
        baseline = await bare_read(url, seconds)
        app = await follow_in_app(url, seconds, capacity)
    return baseline, app


def describe(baseline: Phase, app: Phase, capacity: int, batch: int) -> list[str]:
    lines = [
        f"ring buffer {capacity:,}, producer batches of {batch:,}",
        f"baseline (bare read loop): {baseline.rate:,.0f} events/s taken in over {baseline.seconds:.1f} s "
        f"(producer: {baseline.published_rate:,.0f} events/s)",
        f"app (stream view):         {app.rate:,.0f} events/s taken in over {app.seconds:.1f} s "
        f"(producer: {app.published_rate:,.0f} events/s, behind at the end: {app.published - app.received:,})",
        f"ratio app/baseline:        {app.rate / baseline.rate:.2f}",
        f"dropped from the buffer:   {app.dropped:,} (the oldest beyond {capacity:,}, counted)",
    ]
    if app.latencies:
        lines.append(
            f"key press -> repaint:      p50 {app.latency_ms(0.5):.1f} ms, p99 {app.latency_ms(0.99):.1f} ms, "
            f"max {max(app.latencies) * 1000:.1f} ms over {len(app.latencies)} presses"
        )
    return lines + app.notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--profile", help="write a cProfile of the app process's main thread here")
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(produce(args.url, args.batch))
        return
    profile = Path(args.profile).resolve() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        url = f"local:{Path(tmp) / 'ingest.db'}"
        if profile is not None:
            import cProfile

            with cProfile.Profile() as prof:
                baseline, app = asyncio.run(run(url, args.seconds, args.batch, args.capacity))
            prof.dump_stats(profile)
        else:
            baseline, app = asyncio.run(run(url, args.seconds, args.batch, args.capacity))
    print("\n".join(describe(baseline, app, args.capacity, args.batch)))


if __name__ == "__main__":
    main()
