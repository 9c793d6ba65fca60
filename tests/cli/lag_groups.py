"""A local event log with many consumer groups, for the `lag` scale tests and benchmark.

Built through the adapter contract (create_topic, publish, commit_offsets), so the file is what any
`workbench --broker local:PATH` sees. Most groups are caught up; the ``lagging`` ones are not, each
by a different amount, and their names sit in the middle of the name order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from workbench.broker import OutgoingEvent
from workbench_local import LocalAdapter

TOPICS = ("orders", "payments")


def lagging_names(groups: int, lagging: int) -> list[str]:
    """The lagging groups: spread over the middle of the name order, never first or last (all of
    them when ``lagging`` >= ``groups``)."""
    if lagging >= groups:
        return [group_name(i) for i in range(groups)]
    step = max(groups // (lagging + 2), 1)
    return [group_name(step * (i + 1)) for i in range(lagging)]


def group_name(i: int) -> str:
    return f"svc-{i:05d}"


def seed(path: Path, *, groups: int, partitions: int = 24, lagging: int = 0, events_per_partition: int = 40) -> None:
    """``groups`` groups, each committed on every partition of ``TOPICS`` (``partitions`` in all)."""
    asyncio.run(_seed(path, groups, partitions, lagging, events_per_partition))


async def _seed(path: Path, groups: int, partitions: int, lagging: int, per_partition: int) -> None:
    conn = await LocalAdapter(LocalAdapter.options_from_url(f"local:{path}")).connect()
    try:
        per_topic = partitions // len(TOPICS)
        ends: dict[tuple[str, int], int] = {}
        for topic in TOPICS:
            await conn.create_topic(topic, per_topic)
            batch = [
                OutgoingEvent(b'{"n": %d}' % i, partition=p) for p in range(per_topic) for i in range(per_partition)
            ]
            await conn.publish(topic, batch)
            ends.update({(topic, p): per_partition for p in range(per_topic)})
        behind = {name: n + 1 for n, name in enumerate(lagging_names(groups, lagging))}
        for i in range(groups):
            name = group_name(i)
            back = behind.get(name, 0)
            await conn.commit_offsets(name, {tp: max(end - back, 0) for tp, end in ends.items()})
    finally:
        await conn.close()
