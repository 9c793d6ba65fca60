"""The demo: an order platform whose sagas run over four topics, seeded history and a live producer.

Events are CloudEvents in binary mode (``ce_*`` headers, JSON values) with a ``correlation_id`` and
a W3C ``traceparent`` header; the key is the order id. Five consumer groups are left at telling
positions (up to date, lagging, stalled, partial). A scenario is planned first, as a list of
:class:`Step` with times relative to "now", then merged by time and published in batches; the same
seed gives the same events. Only the contract is used: the connection is given to us.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import random
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from workbench.broker import (
    BrokerError,
    Connection,
    NotFound,
    OutgoingEvent,
    Position,
    TopicInfo,
    Unsupported,
)

TOPICS: Mapping[str, int] = {"orders": 3, "payments": 3, "inventory": 2, "shipping": 2}
SOURCES = {
    "orders": "/orders-service",
    "payments": "/payments-service",
    "inventory": "/inventory-service",
    "shipping": "/shipping-service",
}
GROUPS = ("billing-service", "inventory-service", "shipping-service", "analytics", "fraud-check")
OUTCOMES = (
    "completed",
    "compensated",
    "failed_uncompensated",
    "refunded_cancelled",
    "refund_pending",
    "half_compensated",
    "failed_past_pivot",
    "stuck",
    "running",
)
FAILED_FILTER = 'type == "PaymentFailed"'

WINDOW_MS = 2 * 3600 * 1000  # seeded history: the last two hours
RECENT_MS = 120_000  # running sagas started within the last two minutes
SAGA_MAX_MS = 20_000  # longer than any planned saga, so none ends in the future
STUCK_MS = 15 * 60_000  # the built-in saga's stuck_after (workbench.sagas.builtin.STUCK_AFTER)
BATCH = 500
LIVE_MIX = {"completed": 80, "compensated": 8, "failed_uncompensated": 4, "refunded_cancelled": 8}
MEAN_STEPS = 4.7  # events per saga in LIVE_MIX
# live: which topics a group consumes and which share of the new events (None: keeps up)
LIVE_PACE = {
    "billing-service": (("payments",), None),
    "inventory-service": (("orders",), 0.8),
    "analytics": (tuple(TOPICS), 1.0),
}

CATALOG = (
    ("SKU-TEE-BLK-M", 19.99),
    ("SKU-TEE-WHT-L", 19.99),
    ("SKU-HOODIE-GRY-M", 54.0),
    ("SKU-CAP-NVY", 24.5),
    ("SKU-SOCKS-3PK", 12.99),
    ("SKU-MUG-LOGO", 14.0),
    ("SKU-BOTTLE-750", 29.9),
    ("SKU-BACKPACK-20L", 89.0),
    ("SKU-JACKET-RAIN-L", 129.0),
    ("SKU-SNEAKER-42", 99.95),
    ("SKU-BEANIE-RED", 17.5),
    ("SKU-TOTE-CANVAS", 9.99),
)
DECLINES = ("card_declined", "insufficient_funds", "expired_card", "fraud_suspected", "3ds_failed")
METHODS, CARRIERS = ("card", "paypal", "apple_pay", "sepa_debit"), ("DHL", "UPS", "DPD", "GLS")
WAREHOUSES = ("WH-BER-1", "WH-AMS-2", "WH-MAD-1")
Ends = dict[tuple[str, int], int]  # (topic, partition) -> end offset
_CE_NAMESPACE = uuid.UUID("9b0c6d7e-3f4a-5b21-8c9d-0e1f2a3b4c5d")


@dataclass(frozen=True, slots=True)
class Step:
    """One planned event of a saga. ``at``: ms, relative to now when seeding, absolute when live."""

    at: int
    topic: str
    type: str
    key: str  # the order id
    correlation_id: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    topics: Mapping[str, int]  # events per topic
    sagas: Mapping[str, int]  # sagas per outcome, keys as OUTCOMES
    groups: Mapping[str, int]  # total lag per demo group
    already_seeded: bool = False
    published: int = 0  # events published by this call
    failed_example: str | None = None  # correlation id of a failed, uncompensated saga

    @property
    def hint(self) -> str:
        return f"try: workbench tail payments --filter '{FAILED_FILTER}'"


@dataclass(frozen=True, slots=True)
class LiveStats:
    sagas: int = 0  # sagas started
    events: int = 0  # events published
    by_topic: Mapping[str, int] = field(default_factory=dict)
    commits: int = 0  # rounds in which the demo groups' offsets were advanced
    ticks: int = 0
    elapsed: float = 0.0  # seconds


# --------------------------------------------------------------------------- planning (pure)


class _LineItem(TypedDict):
    sku: str
    qty: int
    price: float


def plan_saga(rng: random.Random, start: int, outcome: str) -> list[Step]:
    """The events of one order saga ending in ``outcome`` (``running`` is cut by the caller)."""
    order_id, customer = f"ORD-{rng.getrandbits(32):08X}", f"CUS-{rng.randint(1, 500):05d}"
    corr = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    items: list[_LineItem] = [
        {"sku": sku, "qty": rng.randint(1, 3), "price": price} for sku, price in rng.sample(CATALOG, rng.randint(1, 3))
    ]
    money = {
        "amount": round(sum(i["qty"] * i["price"] for i in items), 2),
        "currency": rng.choices(("EUR", "USD", "GBP"), (6, 3, 1))[0],
    }
    payment_id, method = f"PAY-{rng.getrandbits(32):08X}", rng.choice(METHODS)
    steps: list[Step] = []
    t = start

    def emit(delay: tuple[int, int], topic: str, type_: str, **data: Any) -> None:
        nonlocal t
        t += rng.randint(*delay)
        body = {"orderId": order_id, "customerId": customer, **data, "correlationId": corr}
        steps.append(Step(t, topic, type_, order_id, corr, body))

    emit((0, 0), "orders", "OrderPlaced", items=items, **money)
    if outcome in ("compensated", "failed_uncompensated"):
        reason = rng.choice(DECLINES)
        emit((80, 1500), "payments", "PaymentFailed", paymentId=payment_id, method=method, **money, reason=reason)
        if outcome == "compensated":
            emit((200, 3000), "orders", "OrderCancelled", **money, reason=f"payment failed: {reason}")
        return steps
    emit((80, 1500), "payments", "PaymentProcessed", paymentId=payment_id, method=method, **money)
    warehouse = rng.choice(WAREHOUSES)
    if outcome in ("refunded_cancelled", "refund_pending", "half_compensated"):
        sku = rng.choice(items)["sku"]
        emit((20, 800), "inventory", "InventoryOutOfStock", sku=sku, warehouse=warehouse, reason="out_of_stock")
        emit((300, 2500), "payments", "PaymentRefunded", paymentId=payment_id, **money, reason="inventory out of stock")
        emit((100, 1500), "orders", "OrderCancelled", **money, reason=f"out of stock: {sku}", refunded=True)
        return steps[: {"refund_pending": 3, "half_compensated": 4}.get(outcome, 5)]
    emit(
        (20, 800),
        "inventory",
        "InventoryReserved",
        reservationId=f"RES-{rng.getrandbits(32):08X}",
        warehouse=warehouse,
        items=[{"sku": i["sku"], "qty": i["qty"]} for i in items],
    )
    if outcome == "failed_past_pivot":  # stock is reserved: the saga must go forward
        emit(
            (1000, 8000),
            "shipping",
            "ShipmentFailed",
            carrier=rng.choice(CARRIERS),
            warehouse=warehouse,
            reason=rng.choice(("carrier_rejected", "address_invalid")),
        )
        return steps
    emit(
        (1000, 8000),
        "shipping",
        "ShipmentScheduled",
        shipmentId=f"SHP-{rng.getrandbits(32):08X}",
        carrier=rng.choice(CARRIERS),
        warehouse=warehouse,
        serviceLevel=rng.choice(("standard", "express")),
    )
    emit((100, 2000), "orders", "OrderCompleted", **money)
    return steps


def _outcome_plan(rng: random.Random, n: int) -> list[str]:
    """Fixed shares (so every scenario has each kind), shuffled; the running ones come last."""
    quotas = {
        "failed_uncompensated": max(1, round(n * 0.04)),
        "compensated": round(n * 0.08),
        "refunded_cancelled": round(n * 0.05),
        "refund_pending": max(1, round(n * 0.01)),
        "half_compensated": max(1, n // 200),
        "failed_past_pivot": max(1, round(n * 0.01)),
    }
    running = min(n - 1, 3, max(1, n // 100))
    stuck = min(n - running - 1, max(1, n // 200))
    settled = [o for o, k in quotas.items() for _ in range(k)][: max(n - running - stuck, 0)]
    settled += ["completed"] * (n - running - stuck - len(settled))
    rng.shuffle(settled)
    return settled + ["stuck"] * stuck + ["running"] * running


def plan_scenario(rng: random.Random, orders: int, window_ms: int = WINDOW_MS) -> list[Step]:
    """All the steps of ``orders`` sagas over the last ``window_ms``, sorted by time (<= 0)."""
    outcomes = _outcome_plan(rng, orders)
    running, stuck = outcomes.count("running"), outcomes.count("stuck")
    starts = sorted(rng.randint(-window_ms, -SAGA_MAX_MS) for _ in range(orders - running - stuck))
    stalled = -(STUCK_MS + SAGA_MAX_MS) if window_ms > 2 * (STUCK_MS + SAGA_MAX_MS) else -SAGA_MAX_MS
    starts += sorted(rng.randint(-window_ms, stalled) for _ in range(stuck))  # silent for long
    starts += sorted(rng.randint(-min(window_ms, RECENT_MS), -SAGA_MAX_MS) for _ in range(running))
    steps: list[Step] = []
    for start, outcome in zip(starts, outcomes, strict=True):
        if outcome == "stuck":
            steps += plan_saga(rng, start, "completed")[:2]  # paid, then nothing
        elif outcome == "running":
            steps += plan_saga(rng, start, "completed")[: rng.randint(1, 4)]
        else:
            steps += plan_saga(rng, start, outcome)
    return sorted(steps, key=lambda s: s.at)  # stable: ties keep the planning order


def outcome_of(types: set[str], stalled: bool = False) -> str:
    """Where a saga stands, from the set of event types seen for its correlation id and whether it
    has been silent for longer than :data:`STUCK_MS` (``stalled``)."""
    if "OrderCompleted" in types:
        return "completed"
    if "OrderCancelled" in types:
        return "refunded_cancelled" if "PaymentRefunded" in types else "compensated"
    if "PaymentFailed" in types:
        return "failed_uncompensated"
    if "ShipmentFailed" in types:
        return "failed_past_pivot"
    if "PaymentRefunded" in types:
        return "half_compensated"
    if "InventoryOutOfStock" in types:
        return "refund_pending"
    return "stuck" if stalled else "running"


# --------------------------------------------------------------------------- events on the wire


def _outgoing(step: Step, ts: int, partitions: Mapping[str, int]) -> OutgoingEvent:
    ce_id = uuid.uuid5(_CE_NAMESPACE, f"{step.correlation_id}/{step.topic}/{step.type}")
    iso = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
    headers = (
        ("ce_specversion", "1.0"),
        ("ce_type", step.type),
        ("ce_source", SOURCES[step.topic]),
        ("ce_id", str(ce_id)),
        ("ce_time", iso.replace("+00:00", "Z")),
        ("ce_subject", step.key),
        ("content-type", "application/json"),
        ("correlation_id", step.correlation_id),
        ("traceparent", f"00-{uuid.UUID(step.correlation_id).hex}-{ce_id.hex[:16]}-01"),
    )
    key, n = step.key.encode(), partitions.get(step.topic, 1)
    return OutgoingEvent(
        value=json.dumps(step.data, separators=(",", ":")).encode(),
        key=key,
        headers=tuple((k, v.encode()) for k, v in headers),
        partition=zlib.crc32(key) % n if n > 1 else None,
        timestamp=ts,
    )


async def _publish(conn: Connection, items: Sequence[tuple[str, OutgoingEvent]]) -> Ends:
    """Publish per topic, keeping order; every result is checked. Returns the new end offsets."""
    by_topic: dict[str, list[OutgoingEvent]] = defaultdict(list)
    for topic, event in items:
        by_topic[topic].append(event)
    ends: Ends = {}
    for topic, events in by_topic.items():
        results = await conn.publish(topic, events)
        failed = [r.error for r in results if r.error is not None]
        if failed or len(results) != len(events):
            cause = failed[0] if failed else BrokerError("results missing")
            what = f"{len(failed) or 'some'} of {len(events)} events"
            raise _same_kind(cause, f"demo: publishing to {topic!r} failed for {what}: {cause}") from cause
        for r in results:
            if r.partition is not None and r.offset is not None:
                ends[(topic, r.partition)] = max(ends.get((topic, r.partition), 0), r.offset + 1)
    return ends


def _same_kind(cause: BrokerError, message: str) -> BrokerError:
    """The cause's class with our message (so exit codes still tell AccessDenied from Unreachable)."""
    try:
        return type(cause)(message, hint=cause.hint)
    except TypeError:  # an adapter's own subclass with another signature
        return BrokerError(message, hint=cause.hint)


async def _ensure_topics(conn: Connection) -> dict[str, TopicInfo]:
    infos = {}
    for name, partitions in TOPICS.items():
        try:
            infos[name] = await conn.describe_topic(name)
        except NotFound:
            try:
                await conn.create_topic(name, partitions)
            except Unsupported as exc:
                raise Unsupported(
                    f"demo: cannot create topic {name!r} here: {exc}",
                    hint="create the demo topics with the broker's own tools",
                ) from exc
            infos[name] = await conn.describe_topic(name)
    return infos


def _partition_counts(infos: Mapping[str, TopicInfo]) -> dict[str, int]:
    return {name: max(len(info.partitions), 1) for name, info in infos.items()}


async def _commit(conn: Connection, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
    try:
        await conn.commit_offsets(group, offsets)
    except Unsupported as exc:
        raise Unsupported(
            f"demo: cannot set consumer group offsets on this broker ({exc}), so the demo groups were not created",
            hint="the local and kafka adapters can",
        ) from exc


async def _latest_timestamp(conn: Connection) -> int:
    latest = 0
    for topic in TOPICS:
        async for batch in conn.read(topic, Position.last(1)):
            latest = max([latest, *(e.timestamp or 0 for e in batch)])
    return latest


# --------------------------------------------------------------------------- seeding


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
    now = _now_ms() if now_ms is None else now_ms
    infos = await _ensure_topics(conn)
    existing = sum(info.count for info in infos.values())
    if infos["orders"].count and not force:
        return await summarize(conn, already_seeded=True)
    floor = await _latest_timestamp(conn) + 1 if existing else 0
    window = WINDOW_MS if not existing else max(60_000, min(WINDOW_MS, now - floor))
    rng = random.Random(seed if not existing else f"{seed}/{existing}")
    steps, partitions = plan_scenario(rng, orders, window), _partition_counts(infos)
    for i in range(0, len(steps), BATCH):
        chunk = steps[i : i + BATCH]
        await _publish(conn, [(s.topic, _outgoing(s, max(now + s.at, floor), partitions)) for s in chunk])
        if progress is not None:
            progress(i + len(chunk), len(steps))
    await _commit_groups(conn, rng, {t: await conn.describe_topic(t) for t in TOPICS})
    return await summarize(conn, published=len(steps))


async def _commit_groups(conn: Connection, rng: random.Random, infos: Mapping[str, TopicInfo]) -> None:
    def behind(topic: str, lag: Callable[[int], int]) -> dict[tuple[str, int], int]:
        return {(topic, p.partition): max(p.start, p.end - lag(p.count)) for p in infos[topic].partitions}

    await _commit(conn, "billing-service", behind("payments", lambda _: 0))
    await _commit(conn, "inventory-service", behind("orders", lambda _: rng.randint(20, 45)))
    await _commit(conn, "shipping-service", behind("inventory", lambda n: int(n * 0.8)))
    analytics = {k: v for t in TOPICS for k, v in behind(t, lambda n: int(n * rng.uniform(0.1, 0.4))).items()}
    await _commit(conn, "analytics", analytics)
    first = infos["payments"].partitions[0].partition
    fraud = behind("payments", lambda _: rng.randint(5, 15))
    await _commit(conn, "fraud-check", {("payments", first): fraud[("payments", first)]})


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
    return DemoSummary(
        topics=counts,
        sagas={o: by_outcome[o] for o in OUTCOMES},
        groups={g: lags[g] for g in GROUPS if g in lags},
        already_seeded=already_seeded,
        published=published,
        failed_example=example,
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
    return "\n".join(lines)


# --------------------------------------------------------------------------- live


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
    infos = await _ensure_topics(conn)
    partitions = _partition_counts(infos)
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
        due = producer.due(_now_ms(), horizon=int(tick * 1000))
        if due:
            groups.ends.update(await _publish(conn, [(s.topic, _outgoing(s, s.at, partitions)) for s in due]))
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
            await _commit(conn, group, offsets)
        self.seen.update(self.ends)
        return 1 if moves else 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
