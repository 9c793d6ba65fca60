"""How fast the stream view ingests events, and how fast the app answers keys meanwhile.

    python tests/benchmarks/tui_ingest.py [--seconds 10] [--rate 50000] [--capacity 10000]
                                          [--live | --avro] [--mask] [--profile FILE]

By default a fresh local event log is filled with a backlog of demo-like events (JSON value,
CloudEvents headers), then two phases read it from the beginning for the same time, at most
``--rate`` events/s (0: as fast as they can; the adapter's batches are held back until their time
comes, so the stream view is fed at a steady rate however fast the machine reads):

- baseline: the bare read loop (``conn.read(...)``, counting batches, nothing else);
- app: the workbench app (headless, 160x48, Pilot) following the topic in its stream view, while
  key presses (up: leave the bottom, end: follow again) go in the way Pilot sends them. A key's
  latency is the time from sending it to the end of the first screen refresh after its action ran.

With ``--avro`` the values are raw Avro (the same fields), decoded through a schema file mapped to
the topic, as a profile's ``[[profiles.NAME.schemas]]`` does: both phases read through the decoding
connection, so the ratio is the view's cost over decoding, and the rates are the Avro ingest figure.

With ``--mask`` a profile file with [mask] rules (a field, a hashed field, a header and a card-number
pattern: :data:`MASK`) applies to the topic: both phases read redacted events, so the rates are the
ingest figure under redaction.

With ``--live`` a producer process publishes as fast as it can while both phases follow the
topic from its end instead (on a 2-core machine the producer, the reader and SQLite share the
cores: the producer, not the view, sets the rate).

While the app phase runs the script also records what blocks the event loop: the garbage
collector's pauses (``gc.callbacks``), the time each screen refresh takes (compositing and
writing the frame), and the loop's stalls (how late a 5 ms timer fires); each key's latency split
into the wait for its action, then for the refresh that shows it, then that refresh; the CPU the
loop's thread used (the rest of the time it waited: for the adapter's reading thread, which holds
the GIL while it builds events, or for a core); the pump's batches and the view's updates. With
``--profile`` the app phase runs under cProfile. The script imports workbench from the checkout
it is in (not an installed copy). ``tests/benchmarks/test_tui_ingest.py`` asserts on the figures;
this script prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the producer imports workbench from it
if __name__ == "__main__":  # measure this checkout, not whichever workbench is installed
    sys.path.insert(0, str(ROOT))

import fastavro  # noqa: E402

from workbench import config, service  # noqa: E402
from workbench.broker import Event, OutgoingEvent, Position  # noqa: E402
from workbench.events.schemas.files import FileRule  # noqa: E402

TOPIC = "ingest"
PARTITIONS = 3
KEY_GAP = 0.2  # seconds between two key presses
DEFAULT_RATE = 50_000
TICK = 0.005  # the stall probe's timer
AVRO_SCHEMA = {
    "type": "record",
    "name": "OrderPlaced",
    "fields": [
        {"name": name, "type": "int" if name == "amount" else "string"}
        for name in ("orderId", "customerId", "amount", "currency", "correlationId")
    ],
}
MASK = """
[mask]
fields = ["value.customerId"]
headers = ["correlation_id"]
patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']

[[mask.rules]]
field = "value.correlationId"
style = "hash"
"""
#: With --avro: the .avsc file the topic's values are decoded with (main() writes it and sets this).
avro_file: Path | None = None


def encode(record: dict) -> bytes:
    """JSON, or raw Avro (no wire header) with --avro."""
    if avro_file is None:
        return json.dumps(record).encode()
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(AVRO_SCHEMA), record)
    return out.getvalue()


def outgoing(i: int) -> OutgoingEvent:
    value = encode(
        {
            "orderId": f"ORD-{i:08X}",
            "customerId": f"CUS-{i % 500:05d}",
            "amount": i % 997,
            "currency": "EUR",
            "correlationId": f"corr-{i:012d}",
        }
    )
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_type", b"OrderPlaced"),
        ("ce_source", b"/orders-service"),
        ("correlation_id", f"corr-{i:012d}".encode()),
    )
    return OutgoingEvent(value=value, key=f"ORD-{i:08X}".encode(), headers=headers)


def target_of(url: str) -> config.Target:
    target = config.resolve(config.url_profile(url))
    if avro_file is None:
        return target
    return dataclasses.replace(target, schema_files=(FileRule(TOPIC, avro_file),))


async def produce(url: str, batch: int) -> None:
    """Publish until killed."""
    events_ = [outgoing(i) for i in range(batch)]
    async with service.connect(target_of(url)) as conn:
        while True:
            await conn.publish(TOPIC, events_)


async def prefill(url: str, count: int, batch: int = 5000) -> None:
    """``count`` events into the topic (distinct keys and ids, so no row is like another)."""
    async with service.connect(target_of(url)) as conn:
        for first in range(0, count, batch):
            await conn.publish(TOPIC, [outgoing(i) for i in range(first, min(first + batch, count))])


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


class Paced:
    """A connection whose reads hand out at most ``rate`` events/s (0: no limit); the rest delegates."""

    def __init__(self, conn, rate: float) -> None:
        self._conn = conn
        self._rate = rate

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    def read(self, topic: str, start: Position, **options) -> AsyncIterator[list[Event]]:
        return self._paced(self._conn.read(topic, start, **options))

    async def _paced(self, reader: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
        started: float | None = None
        handed = 0
        async with contextlib.aclosing(reader):  # type: ignore[type-var]
            async for batch in reader:
                if started is None:
                    started = time.perf_counter()
                handed += len(batch)
                if self._rate:
                    early = handed / self._rate - (time.perf_counter() - started)
                    if early > 0:
                        await asyncio.sleep(early)
                yield batch


@dataclass
class Pauses:
    """What blocked the app's event loop during a phase, in seconds."""

    gc: list[tuple[int, float]] = field(default_factory=list)  # (generation, pause)
    frames: list[float] = field(default_factory=list)  # one per screen refresh
    frames_cpu: list[float] = field(default_factory=list)  # the CPU each one used (the rest it waited)
    stalls: list[float] = field(default_factory=list)  # how late each TICK timer fired
    batches: list[int] = field(default_factory=list)  # events in each batch the pump appended
    updates: int = 0  # coalesced updates the stream view handled

    def summary(self) -> list[str]:
        def q(values: list[float], p: float) -> float:
            ordered = sorted(values)
            return ordered[min(int(p * len(ordered)), len(ordered) - 1)] * 1000 if ordered else 0.0

        lines = []
        if self.frames:
            lines.append(
                f"screen refreshes:          {len(self.frames)}, p50 {q(self.frames, 0.5):.1f} ms, "
                f"p95 {q(self.frames, 0.95):.1f} ms, max {max(self.frames) * 1000:.1f} ms, "
                f"{sum(self.frames):.2f} s in all"
            )
            lines.append(
                f"  of which CPU:            p50 {q(self.frames_cpu, 0.5):.1f} ms, p95 {q(self.frames_cpu, 0.95):.1f} ms, "
                f"{sum(self.frames_cpu):.2f} s in all"
            )
        for generation in (0, 1, 2):
            pauses = [s for g, s in self.gc if g == generation]
            if pauses:
                lines.append(
                    f"gc generation {generation}:          {len(pauses)} collections, "
                    f"max {max(pauses) * 1000:.1f} ms, {sum(pauses) * 1000:.0f} ms in all"
                )
        if self.batches:
            lines.append(
                f"pump batches:              {len(self.batches)}, p50 {sorted(self.batches)[len(self.batches) // 2]:,} "
                f"events, max {max(self.batches):,}; stream view updates: {self.updates}"
            )
        if self.stalls:
            lines.append(
                f"event-loop stalls:         p95 {q(self.stalls, 0.95):.1f} ms, max {max(self.stalls) * 1000:.1f} ms "
                f"(a {TICK * 1000:g} ms timer, late by)"
            )
        return lines


@dataclass
class Phase:
    """What one phase took in."""

    seconds: float
    published: int
    received: int
    latencies: list[float] = field(default_factory=list)  # seconds, one per key press (app phase)
    waits: list[float] = field(default_factory=list)  # of which: until the key's action ran
    gaps: list[float] = field(default_factory=list)  # then until the refresh that shows it began
    own_frames: list[float] = field(default_factory=list)  # and that refresh itself
    dropped: int = 0
    cpu: float = 0.0  # seconds of CPU the app's thread (the event loop) used (app phase)
    load: float = 0.0  # the machine's load average (1 min) at the end
    notes: list[str] = field(default_factory=list)
    pauses: Pauses = field(default_factory=Pauses)

    @property
    def rate(self) -> float:
        return self.received / self.seconds

    @property
    def published_rate(self) -> float:
        return self.published / self.seconds

    def latency_ms(self, q: float, of: list[float] | None = None) -> float:
        """The ``q`` quantile (0..1) of the key latencies (or of ``of``), in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies if of is None else of)
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
    async with service.connect(target_of(url)) as conn:
        await conn.create_topic(TOPIC, PARTITIONS)


def start_of(live: bool) -> Position:
    return Position.end() if live else Position.beginning()


async def bare_read(url: str, seconds: float, rate: float, live: bool) -> Phase:
    """Baseline: the adapter's follow read, counting events and doing nothing else."""
    target = target_of(url)
    async with service.connect(target) as probe, service.connect(target) as conn:
        if live:
            await wait_for_traffic(probe, 0)
        received = 0
        reader = Paced(conn, rate).read(TOPIC, start_of(live), follow=True, batch_size=5000)
        first = await end_count(probe)
        started = time.perf_counter()
        async with contextlib.aclosing(reader):  # type: ignore[type-var]
            async for batch in reader:
                received += len(batch)
                if time.perf_counter() - started >= seconds:
                    break
        elapsed = time.perf_counter() - started
        return Phase(elapsed, await end_count(probe) - first, received)


@contextlib.contextmanager
def gc_pauses(into: list[tuple[int, float]]) -> Iterator[None]:
    started: list[float] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            into.append((info["generation"], time.perf_counter() - started.pop()))

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


async def stall_probe(into: list[float]) -> None:
    """Until cancelled: how late a TICK timer fires (what the loop did meanwhile held it up)."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(TICK)
        into.append(max(time.perf_counter() - asked - TICK, 0.0))


def timed_refresh(screen, painted: list[float], frames: list[float], cpu: list[float]) -> Callable[[], None]:
    refresh = screen._compositor_refresh

    def timed() -> None:
        began, cpu_began = time.perf_counter(), time.thread_time()
        refresh()
        painted.append(time.perf_counter())
        frames.append(painted[-1] - began)
        cpu.append(time.thread_time() - cpu_began)

    return timed


async def follow_in_app(
    url: str, seconds: float, capacity: int, rate: float, live: bool, profile: cProfile.Profile | None = None
) -> Phase:
    """The app follows the topic in its stream view; keys are pressed every :data:`KEY_GAP` s (the
    measured part runs under ``profile`` when given)."""
    from textual import events

    from workbench.tui.app import WorkbenchApp

    target = target_of(url)
    app = WorkbenchApp(target, capacity=capacity)  # it tunes the garbage collector itself
    async with app.run_test(size=(160, 48)) as pilot, service.connect(target) as probe:
        if live:
            await wait_for_traffic(probe, 0)
        while app.conn is None:
            await pilot.pause()
        main = app.main
        main.topic = TOPIC
        await main.stream.start(Paced(app.conn, rate), TOPIC, start_of(live))
        stream = main.stream
        listing = stream.event_list
        listing.focus()
        await pilot.pause()

        acted: list[float] = []  # when a pressed key's action ran
        painted: list[float] = []  # when a screen refresh ended
        for name in ("action_cursor", "action_bottom"):
            original = getattr(listing, name)

            def timed(*args, _original=original):
                acted.append(time.perf_counter())
                _original(*args)

            setattr(listing, name, timed)
        phase = Phase(0.0, 0, 0)
        batches, extend = phase.pauses.batches, stream.buffer.extend

        def counted_extend(events_) -> None:
            batches.append(len(events_))
            extend(events_)

        stream.buffer.extend = counted_extend  # type: ignore[method-assign]
        sync = listing.sync

        def counted_sync() -> None:
            phase.pauses.updates += 1
            sync()

        listing.sync = counted_sync  # type: ignore[method-assign]
        app.screen._compositor_refresh = timed_refresh(
            app.screen, painted, phase.pauses.frames, phase.pauses.frames_cpu
        )  # type: ignore[method-assign]
        first_end = await end_count(probe)
        first_received = stream.buffer.received
        probe_task = asyncio.get_running_loop().create_task(stall_probe(phase.pauses.stalls))
        started, cpu_started = time.perf_counter(), time.thread_time()
        keys = ("up", "end")
        with gc_pauses(phase.pauses.gc), profile or contextlib.nullcontext():
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
                if len(acted) > before and painted and painted[-1] >= acted[before]:
                    frame = phase.pauses.frames[-1]
                    phase.waits.append(acted[before] - sent)
                    phase.gaps.append(max(painted[-1] - frame - acted[before], 0.0))
                    phase.own_frames.append(frame)
                phase.latencies.append((painted[-1] if painted else time.perf_counter()) - sent)
        phase.seconds = time.perf_counter() - started
        phase.cpu = time.thread_time() - cpu_started
        phase.load = os.getloadavg()[0]
        probe_task.cancel()
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


def backlog_for(seconds: float, rate: float) -> int:
    """Events enough for both phases to read for ``seconds`` at ``rate`` (unpaced: a fast read)."""
    return int(seconds * (rate or 120_000) * 1.3)


async def run(
    url: str,
    seconds: float,
    *,
    capacity: int = 10_000,
    rate: float = DEFAULT_RATE,
    live: bool = False,
    batch: int = 1000,
    profile: cProfile.Profile | None = None,
) -> tuple[Phase, Phase]:
    """(baseline, app) on a fresh topic: a backlog read at ``rate``, or (``live``) while a producer
    process publishes batches of ``batch``."""
    await create_topic(url)
    if live:
        with producer(url, batch):
            baseline = await bare_read(url, seconds, 0, True)
            return baseline, await follow_in_app(url, seconds, capacity, 0, True, profile)
    await prefill(url, backlog_for(seconds, rate))
    baseline = await bare_read(url, seconds, rate, False)
    return baseline, await follow_in_app(url, seconds, capacity, rate, False, profile)


def describe(baseline: Phase, app: Phase, capacity: int, rate: float, live: bool) -> list[str]:
    if live:
        feed = "a producer process publishing meanwhile, both phases from the end"
    else:
        feed = f"a backlog read from the beginning at {rate:,.0f} events/s at most" if rate else "a backlog, unpaced"
    lines = [
        f"ring buffer {capacity:,}; {feed}; values {'raw Avro (schema file)' if avro_file else 'JSON'}",
        f"baseline (bare read loop): {baseline.rate:,.0f} events/s taken in over {baseline.seconds:.1f} s",
        f"app (stream view):         {app.rate:,.0f} events/s taken in over {app.seconds:.1f} s",
        f"ratio app/baseline:        {app.rate / baseline.rate:.2f}",
        f"dropped from the buffer:   {app.dropped:,} (the oldest beyond {capacity:,}, counted)",
    ]
    if live:
        lines.append(f"producer meanwhile:        {baseline.published_rate:,.0f} / {app.published_rate:,.0f} events/s")
    if app.latencies:
        lines.append(
            f"key press -> repaint:      p50 {app.latency_ms(0.5):.1f} ms, p95 {app.latency_ms(0.95):.1f} ms, "
            f"max {max(app.latencies) * 1000:.1f} ms over {len(app.latencies)} presses"
        )
    for what, values in (
        ("until its action", app.waits),
        ("then until its refresh", app.gaps),
        ("then its refresh", app.own_frames),
    ):
        if values:
            lines.append(
                f"  {what + ':':24s}p50 {app.latency_ms(0.5, values):.1f} ms, "
                f"p95 {app.latency_ms(0.95, values):.1f} ms, max {max(values) * 1000:.1f} ms"
            )
    if app.cpu:
        lines.append(
            f"event loop's thread:       {app.cpu:.2f} s of CPU in {app.seconds:.1f} s; load average {app.load:.1f}"
        )
    return lines + app.pauses.summary() + app.notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="events/s at most (0: no limit)")
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--live", action="store_true", help="follow a topic a producer process publishes to")
    parser.add_argument("--avro", action="store_true", help="raw Avro values, decoded with a schema file")
    parser.add_argument("--mask", action="store_true", help="read through [mask] rules (redacted events)")
    parser.add_argument("--batch", type=int, default=1000, help="the live producer's batches")
    parser.add_argument("--profile", help="write a cProfile of the app phase here")
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(produce(args.url, args.batch))
        return
    if args.avro and args.live:
        parser.error("--avro reads a backlog: it does not go with --live")
    global avro_file
    profile = cProfile.Profile() if args.profile else None
    where = Path(args.profile).resolve() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        if args.mask:
            (Path(tmp) / "workbench.toml").write_text(MASK, encoding="utf-8")
            os.environ["WORKBENCH_CONFIG"] = str(Path(tmp) / "workbench.toml")
        if args.avro:
            avro_file = Path(tmp) / "order.avsc"
            avro_file.write_text(json.dumps(AVRO_SCHEMA), encoding="utf-8")
        url = f"local:{Path(tmp) / 'ingest.db'}"
        baseline, app = asyncio.run(
            run(
                url,
                args.seconds,
                capacity=args.capacity,
                rate=args.rate,
                live=args.live,
                batch=args.batch,
                profile=profile,
            )
        )
    if profile is not None and where is not None:
        profile.dump_stats(where)
    print("\n".join(describe(baseline, app, args.capacity, args.rate, args.live)))


if __name__ == "__main__":
    main()
