"""Seeding the demo: two hours of order sagas and five consumer groups at telling positions.

Up to date, lagging, stalled, partial: the groups show what the lag view can tell. Seeding is
idempotent (topics that hold events are left alone unless forced), and :func:`summarize` reads
back what is there, the sagas by outcome included.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from workbench.broker import Connection, Position, TopicInfo, Unsupported
from workbench.demo import dead_letters
from workbench.demo.scenario import (
    FAILED_FILTER,
    GROUPS,
    OUTCOMES,
    STUCK_MS,
    TOPICS,
    WINDOW_MS,
    outcome_of,
    plan_scenario,
)
from workbench.demo.wire import (
    commit,
    ensure_topics,
    latest_timestamp,
    outgoing,
    partition_counts,
    publish,
    wall_clock_ms,
)

BATCH = 500


@dataclass(frozen=True, slots=True)
class DemoSummary:
    topics: Mapping[str, int]  # events per topic
    sagas: Mapping[str, int]  # sagas per outcome, keys as OUTCOMES
    groups: Mapping[str, int]  # total lag per demo group
    already_seeded: bool = False
    published: int = 0  # events published by this call
    failed_example: str | None = None  # correlation id of a failed, uncompensated saga
    dead_letters: Mapping[str, int] = field(default_factory=dict)  # events per dead-letter topic

    @property
    def hint(self) -> str:
        return f"try: workbench tail payments --filter '{FAILED_FILTER}'"


async def seed(
    conn: Connection,
    *,
    orders: int = 200,
    seed: int = 7,
    now_ms: int | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Create the demo topics and groups and publish ``orders`` sagas of the last two hours.

    Idempotent: when the topics already hold events, nothing is published (``already_seeded``)
    unless ``force``, which adds ``orders`` more sagas after the existing events.
    """
    if orders < 1:
        raise ValueError("orders must be at least 1")
    now = wall_clock_ms() if now_ms is None else now_ms
    infos = await ensure_topics(conn)
    existing = sum(info.count for info in infos.values())
    if infos["orders"].count and not force:
        return await summarize(conn, already_seeded=True)
    floor = await latest_timestamp(conn) + 1 if existing else 0
    window = WINDOW_MS if not existing else max(60_000, min(WINDOW_MS, now - floor))
    rng = random.Random(seed if not existing else f"{seed}/{existing}")
    steps, partitions = plan_scenario(rng, orders, window), partition_counts(infos)
    for i in range(0, len(steps), BATCH):
        chunk = steps[i : i + BATCH]
        await publish(conn, [(s.topic, outgoing(s, max(now + s.at, floor), partitions)) for s in chunk])
        if progress is not None:
            progress(i + len(chunk), len(steps))
    await _commit_groups(conn, rng, {t: await conn.describe_topic(t) for t in TOPICS})
    await dead_letters.seed(conn, random.Random(f"{seed}/dead-letters/{existing}"), now, force=force)
    return await summarize(conn, published=len(steps))


async def _commit_groups(conn: Connection, rng: random.Random, infos: Mapping[str, TopicInfo]) -> None:
    def behind(topic: str, lag: Callable[[int], int]) -> dict[tuple[str, int], int]:
        return {(topic, p.partition): max(p.start, p.end - lag(p.count)) for p in infos[topic].partitions}

    await commit(conn, "billing-service", behind("payments", lambda _: 0))
    await commit(conn, "inventory-service", behind("orders", lambda _: rng.randint(20, 45)))
    await commit(conn, "shipping-service", behind("inventory", lambda n: int(n * 0.8)))
    analytics = {k: v for t in TOPICS for k, v in behind(t, lambda n: int(n * rng.uniform(0.1, 0.4))).items()}
    await commit(conn, "analytics", analytics)
    first = infos["payments"].partitions[0].partition
    fraud = behind("payments", lambda _: rng.randint(5, 15))
    await commit(conn, "fraud-check", {("payments", first): fraud[("payments", first)]})


async def summarize(conn: Connection, *, already_seeded: bool = False, published: int = 0) -> DemoSummary:
    """What the demo topics and groups hold now: counts, sagas by outcome (read back), lags."""
    counts = {t: (await conn.describe_topic(t)).count for t in TOPICS}
    types: dict[str, set[str]] = defaultdict(set)
    last: dict[str, int] = defaultdict(int)  # correlation id -> its newest event (ms)
    for topic in TOPICS:
        async for batch in conn.read(topic, Position.beginning(), batch_size=5000):
            for event in batch:
                headers = dict(event.headers)
                if "correlation_id" in headers and "ce_type" in headers:
                    corr = headers["correlation_id"].decode()
                    types[corr].add(headers["ce_type"].decode())
                    last[corr] = max(last[corr], event.timestamp or 0)
    newest = max(last.values(), default=0)  # the demo's "now": the same answer on every run
    outcomes = {corr: outcome_of(seen, newest - last[corr] > STUCK_MS) for corr, seen in types.items()}
    by_outcome = Counter(outcomes.values())
    try:
        lags = {g.group_id: g.total for g in await conn.lag(None)}
    except Unsupported:
        lags = {}
    example = next((c for c, o in outcomes.items() if o == "failed_uncompensated"), None)
    dead = await dead_letters.counts(conn)
    return DemoSummary(
        topics=counts,
        sagas={o: by_outcome[o] for o in OUTCOMES},
        groups={g: lags[g] for g in GROUPS if g in lags},
        already_seeded=already_seeded,
        published=published,
        failed_example=example,
        dead_letters=dead,
    )


def describe(summary: DemoSummary) -> str:
    """A few lines for people: what is there and what to try."""
    head = f"demo seeded: {summary.published} events published" if summary.published else "demo topics"
    if summary.already_seeded:
        head = "demo already seeded, nothing published (force adds more sagas)"
    lines = [
        head,
        "topics: " + ", ".join(f"{t} {n}" for t, n in summary.topics.items()),
        "sagas: " + ", ".join(f"{o.replace('_', ' ')} {n}" for o, n in summary.sagas.items()),
        "group lag: " + ", ".join(f"{g} {n}" for g, n in summary.groups.items()),
        summary.hint,
    ]
    if summary.failed_example:
        lines.append(f"a saga that failed half-way, not compensated: correlation id {summary.failed_example}")
        lines.append("sagas: workbench saga list --state failed, then workbench saga compensate ID")
    if summary.dead_letters:
        lines.append("dead letters: " + ", ".join(f"{t} {n}" for t, n in summary.dead_letters.items()))
        lines.append(
            f"why they died: workbench dlq summary {dead_letters.SPRING_DLT}, "
            f"then workbench replay {dead_letters.SPRING_DLT} --to-origin"
        )
    return "\n".join(lines)
