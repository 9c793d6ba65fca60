"""Peak resident memory of the workbench app following a topic (run as a process of its own).

    python tests/benchmarks/tui_memory.py URL TOPIC COUNT

Opens the app headless (Pilot) on ``URL``, follows ``TOPIC`` from the beginning until the stream
view has taken in ``COUNT`` events (0: just idle on the topic for a few refreshes), and prints one
JSON line: events taken in, what the ring buffer kept, and the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from workbench import config
from workbench.broker import Position

IDLE_SECONDS = 2.0


def peak_rss_mb() -> float:
    """VmHWM of this process, from /proc (the kernel's high-water mark of resident memory)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def follow(url: str, topic: str, count: int) -> dict:
    from workbench.tui.app import WorkbenchApp

    app = WorkbenchApp(config.resolve(config.url_profile(url)), default_position=Position.beginning())
    async with app.run_test(size=(160, 48)) as pilot:
        while app.conn is None or not app.main.topics:
            await pilot.pause()
        app.main.open_topic(topic)
        await pilot.press("e")  # events, from the beginning
        while app.main.stream.pump is None:
            await pilot.pause()
        buffer = app.main.stream.buffer
        started = time.monotonic()
        if count:
            while buffer.received < count:
                pump = app.main.stream.pump
                assert pump is not None and pump.active, app.main.stream.state_text()
                await asyncio.sleep(0.1)
        else:
            while time.monotonic() - started < IDLE_SECONDS:
                await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        await app.main.stream.stop()
        await pilot.pause()
        return {
            "received": buffer.received,
            "kept": len(buffer),
            "capacity": buffer.capacity,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
        }


def main() -> None:
    url, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(follow(url, topic, count))))


if __name__ == "__main__":
    main()
