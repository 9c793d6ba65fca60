"""The demo live: new order sagas at a steady rate, and the demo groups consuming each at its pace.

Billing keeps up, inventory slowly falls behind, shipping stays stalled, so the lag view has
something to show while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from workbench.broker import Connection, Unsupported
from workbench.demo.scenario import TOPICS, Step, plan_saga
from workbench.demo.wire import Ends, commit, ensure_topics, outgoing, partition_counts, publish, wall_clock_ms

LIVE_MIX = {"completed": 80, "compensated": 8, "failed_uncompensated": 4, "refunded_cancelled": 8}
MEAN_STEPS = 4.7  # events per saga in LIVE_MIX
# live: which topics a group consumes and which share of the new events (None: keeps up)
LIVE_PACE = {
    "billing-service": (("payments",), None),
    "inventory-service": (("orders",), 0.8),
    "analytics": (tuple(TOPICS), 1.0),
}


@dataclass(frozen=True, slots=True)
class LiveStats:
    sagas: int = 0  # sagas started
    events: int = 0  # events published
    by_topic: Mapping[str, int] = field(default_factory=dict)
    commits: int = 0  # rounds in which the demo groups' offsets were advanced
    ticks: int = 0
    elapsed: float = 0.0  # seconds


async def run_live(
    conn: Connection,
    *,
    rate: float = 20.0,
    stop: asyncio.Event | None = None,
    seed: int | None = None,
    on_tick: Callable[[LiveStats], None] | None = None,
    tick: float = 0.1,
    commit_every: float = 1.0,
) -> LiveStats:
    """Produce new sagas at about ``rate`` events/s (timestamps = now) and move the demo groups
    (billing keeps up, inventory slowly falls behind, shipping stays stalled) until ``stop`` is set.

    Steps are published when due, one batch per tick: cancelling leaves no batch half-published.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    stop = stop if stop is not None else asyncio.Event()
    infos = await ensure_topics(conn)
    partitions = partition_counts(infos)
    producer = _Producer(random.Random(seed), rate)
    groups = _PacedGroups({(t, p.partition): p.end for t, info in infos.items() for p in info.partitions})
    await groups.load(conn)
    started = last_commit = time.monotonic()
    by_topic: Counter[str] = Counter()
    commits = ticks = 0

    def stats() -> LiveStats:
        return LiveStats(
            sagas=producer.sagas,
            events=by_topic.total(),
            by_topic=dict(by_topic),
            commits=commits,
            ticks=ticks,
            elapsed=time.monotonic() - started,
        )

    while not stop.is_set():
        due = producer.due(wall_clock_ms(), horizon=int(tick * 1000))
        if due:
            groups.ends.update(await publish(conn, [(s.topic, outgoing(s, s.at, partitions)) for s in due]))
            by_topic.update(s.topic for s in due)
        if time.monotonic() - last_commit >= commit_every:
            commits += await groups.advance(conn)
            last_commit = time.monotonic()
        ticks += 1
        if on_tick is not None:
            on_tick(stats())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)
    commits += await groups.advance(conn)
    return stats()


class _Producer:
    """Saga starts as a Poisson stream; their steps wait in a heap until due."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self.rng, self.rate = rng, rate
        self.pending: list[tuple[int, int, Step]] = []  # (due ms, sequence, step)
        self.next_start = self.planned = self.sagas = 0

    def due(self, now: int, horizon: int) -> list[Step]:
        self.next_start = max(self.next_start, now)  # never plan in the past: timestamps stay monotonic
        while self.next_start <= now + horizon:
            outcome = self.rng.choices(tuple(LIVE_MIX), tuple(LIVE_MIX.values()))[0]
            for step in plan_saga(self.rng, self.next_start, outcome):
                heapq.heappush(self.pending, (step.at, self.planned, step))
                self.planned += 1
            self.sagas += 1
            self.next_start += max(1, int(self.rng.expovariate(self.rate / MEAN_STEPS) * 1000))
        due = []
        while self.pending and self.pending[0][0] <= now:
            due.append(heapq.heappop(self.pending)[2])
        return due


class _PacedGroups:
    """The demo groups that consume while live, each at its pace (share of new events, None: all)."""

    def __init__(self, ends: Ends) -> None:
        self.ends, self.seen = ends, dict(ends)  # end offsets now / at the last advance
        self.committed: dict[tuple[str, str, int], int] = {}

    async def load(self, conn: Connection) -> None:
        """Start from the committed offsets; a partition never committed starts at its end."""
        try:
            lags = await conn.lag(None)
        except Unsupported as exc:
            raise Unsupported(f"demo: this broker has no consumer groups to move ({exc})") from exc
        known = {
            (g.group_id, p.topic, p.partition): p.committed
            for g in lags
            for p in g.partitions
            if p.committed is not None
        }
        for group, (topics, _) in LIVE_PACE.items():
            for (topic, p), end in self.ends.items():
                if topic in topics:
                    self.committed[(group, topic, p)] = known.get((group, topic, p), end)

    async def advance(self, conn: Connection) -> int:
        """Consume each group's share of what was produced since the last call; 1 if any moved."""
        moves: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
        for (group, topic, p), offset in self.committed.items():
            end, share = self.ends[(topic, p)], LIVE_PACE[group][1]
            new = end if share is None else min(end, offset + int((end - self.seen[(topic, p)]) * share))
            if new > offset:
                moves[group][(topic, p)] = self.committed[(group, topic, p)] = new
        for group, offsets in moves.items():
            await commit(conn, group, offsets)
        self.seen.update(self.ends)
        return 1 if moves else 0
