"""TUI test helpers: a demo-seeded local event log, the app on it, and one way to wait for it.

The event log is ``events.db`` in the test's own working directory (see tests/conftest.py), named
by a relative path so nothing machine-specific shows on screen. The demo is seeded with a fixed
seed and a fixed "now", so events, ids and times are the same on every run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Static

from workbench import config, service
from workbench.broker import Connection, OutgoingEvent
from workbench.config import Target
from workbench.demo import seeding
from workbench.tui.app import WorkbenchApp

NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
ORDERS = 60
SIZE = (120, 36)


def make_target() -> Target:
    return config.resolve(config.url_profile("local:events.db"))


@pytest.fixture
def target(isolated_home) -> Target:
    """A local event log with the demo scenario (seed 7, fixed clock)."""

    async def seed() -> None:
        async with service.connect(make_target()) as conn:
            await seeding.seed(conn, orders=ORDERS, now_ms=NOW_MS)

    asyncio.run(seed())
    return make_target()


@pytest.fixture
def counts(target) -> dict[str, int]:
    """How many events each demo topic holds (the demo decides; tests do not hard-code it)."""

    async def figures() -> dict[str, int]:
        async with service.connect(target) as conn:
            return {t.name: t.count for t in await conn.list_topics()}

    return asyncio.run(figures())


def make_app(target: Target, **kwargs) -> WorkbenchApp:
    """The app with a frozen clock: events/s is the same on every run."""
    return WorkbenchApp(target, clock=lambda: 0.0, **kwargs)


async def settle(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Let the app (and its workers and pump) run until ``condition()`` holds; fail after ``timeout``
    seconds (a deadline, not a count of rounds: adapter I/O runs in threads on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            await pilot.pause()  # one more round so the screen reflects it
            return
        await pilot.pause()
    raise AssertionError(f"the app did not settle in {timeout:g} s: waited for {what}")


async def publish(target: Target, topic: str, events: Sequence[OutgoingEvent]) -> None:
    """Publish through a connection of its own (as another process would)."""
    async with service.connect(target) as conn:
        results = await conn.publish(topic, list(events))
    assert all(r.ok for r in results), results


def rendered(widget: Widget) -> str:
    """What a widget renders, as plain text (for a container: what its Static children render)."""
    if widget.children and not isinstance(widget, Static):
        return "\n".join(rendered(child) for child in widget.query(Static))
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


async def enter_text(pilot: Pilot, text: str) -> None:
    """Put ``text`` into the focused Input (one key press per character is slow) and press enter."""
    field = pilot.app.focused
    assert isinstance(field, Input), field
    field.value = text
    field.cursor_position = len(text)
    await pilot.press("enter")


async def open_topic(pilot: Pilot, name: str) -> None:
    """Find the topic with the filter box and open the first match (as a user would)."""
    app = pilot.app
    await settle(pilot, lambda: app.main.topics, "the topic list")
    await pilot.press("f")
    await enter_text(pilot, name)
    await settle(pilot, lambda: app.main.topic == name, f"topic {name} to open")


async def open_events(pilot: Pilot, name: str, expected: int) -> None:
    app = pilot.app
    await open_topic(pilot, name)
    await pilot.press("e")
    await settle(
        pilot,
        lambda: (
            len(app.main.stream.buffer) >= expected
            and app.main.stream.event_list.virtual_size.height == len(app.main.stream.buffer)
        ),
        f"{expected} events of {name}",
    )


class Passthrough(Connection):
    """A connection passing every call to the app's real one, for a test to change one call."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def close(self) -> None:
        await self.inner.close()

    async def list_topics(self):
        return await self.inner.list_topics()

    async def describe_topic(self, name):
        return await self.inner.describe_topic(name)

    async def publish(self, topic, events):
        return await self.inner.publish(topic, events)

    def read(self, topic, start, **kwargs):
        return self.inner.read(topic, start, **kwargs)

    async def lag(self, group_ids=None, **kwargs):
        return await self.inner.lag(group_ids, **kwargs)
