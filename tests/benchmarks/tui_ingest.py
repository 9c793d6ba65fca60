"""How fast the stream view ingests events from a local producer process (a measurement, not a test).

    python tests/benchmarks/tui_ingest.py [--seconds 10] [--batch 1000] [--capacity 10000]

A producer process publishes batches of demo-like events (JSON value, CloudEvents headers) as fast
as it can into a fresh local event log; the workbench app (headless, 160x48) follows the topic
from its end. Printed: events/s published and ingested by the view, how far behind the view
ended, and how long key presses (space: pause/resume) waited for their handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual import events

from workbench import config, service
from workbench.broker import OutgoingEvent, Position

TOPIC = "ingest"


def outgoing(i: int) -> OutgoingEvent:
    value = json.dumps({"orderId": f"ORD-{i:08X}", "customerId": f"CUS-{i % 500:05d}", "amount": i % 997,
                        "currency": "EUR", "correlationId": f"corr-{i:012d}"}).encode()
    headers = (("ce_specversion", b"1.0"), ("ce_type", b"OrderPlaced"), ("ce_source", b"/orders-service"),
               ("correlation_id", f"corr-{i:012d}".encode()))
    return OutgoingEvent(value=value, key=f"ORD-{i:08X}".encode(), headers=headers)


async def produce(url: str, batch: int) -> None:
    """Publish until killed."""
    events_ = [outgoing(i) for i in range(batch)]
    async with service.connect(config.resolve(config.url_profile(url))) as conn:
        while True:
            await conn.publish(TOPIC, events_)


async def end_offsets(conn) -> int:
    return (await conn.describe_topic(TOPIC)).count


async def measure(url: str, seconds: float, batch: int, capacity: int) -> None:
    from workbench.tui.app import WorkbenchApp

    target = config.resolve(config.url_profile(url))
    async with service.connect(target) as conn:
        await conn.create_topic(TOPIC, 3)
    producer = subprocess.Popen([sys.executable, __file__, "--produce", "--url", url, "--batch", str(batch)])
    try:
        app = WorkbenchApp(target, capacity=capacity)
        async with app.run_test(size=(160, 48)) as pilot:
            while app.conn is None:
                await pilot.pause()
            app.topic = TOPIC
            await app._ensure_stream(Position.end())
            stream = app.stream
            stream.event_list.focus()
            await pilot.pause()
            handled: list[float] = []
            original = stream.action_toggle_pause

            def toggle() -> None:
                handled.append(time.perf_counter())
                original()

            stream.action_toggle_pause = toggle  # type: ignore[method-assign]
            async with service.connect(target) as probe:
                start_end = await end_offsets(probe)
                start_received = stream.buffer.received
                started = time.perf_counter()
                waits = []
                while time.perf_counter() - started < seconds:
                    await asyncio.sleep(0.25)
                    for _pause_then_resume in range(2):
                        sent = time.perf_counter()
                        before = len(handled)
                        app._driver.send_message(events.Key("space", " "))
                        while len(handled) == before and time.perf_counter() - sent < 5:
                            await asyncio.sleep(0.001)
                        waits.append((handled[-1] if len(handled) > before else time.perf_counter()) - sent)
                elapsed = time.perf_counter() - started
                received = stream.buffer.received - start_received
                published = await end_offsets(probe) - start_end
                if stream.pump is not None and stream.pump.paused:
                    stream.pump.resume()
            behind = published - received
            pump = stream.pump
            if pump is not None and pump.state not in ("running", "paused"):
                print(f"the read ended: {pump.state} {stream.state_text()} {pump.error!r}")
            for note in app._notifications:
                print(f"notification: {note.title}: {note.message}")
            print(f"duration            {elapsed:.1f} s (ring buffer {capacity:,}, producer batches of {batch:,})")
            print(f"published           {published:,} events = {published / elapsed:,.0f} events/s")
            print(f"ingested by view    {received:,} events = {received / elapsed:,.0f} events/s")
            print(f"behind at the end   {behind:,} events")
            print(f"dropped from buffer {stream.buffer.dropped:,} (the oldest beyond {capacity:,}, counted)")
            print(f"key press -> handler: median {statistics.median(waits) * 1000:.1f} ms, "
                  f"max {max(waits) * 1000:.1f} ms over {len(waits)} presses")
    finally:
        producer.terminate()
        producer.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        try:
            asyncio.run(produce(args.url, args.batch))
        except KeyboardInterrupt:
            pass
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        asyncio.run(measure(f"local:{Path(tmp) / 'ingest.db'}", args.seconds, args.batch, args.capacity))


if __name__ == "__main__":
    main()
