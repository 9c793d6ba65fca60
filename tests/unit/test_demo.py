"""The demo scenario against the real local adapter (an SQLite file per test)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest

from workbench.broker import BrokerError, Connection, Event, Position, PublishResult
from workbench.demo import live, scenario, seeding
from workbench_local import LocalAdapter

NOW = 1_700_000_000_000  # a fixed "now" (ms, in the past) so runs can be compared


async def open_local(path) -> Connection:
    adapter = LocalAdapter(LocalAdapter.options_from_url(f"local:{path}"))
    return await adapter.connect()


@pytest.fixture
async def conn(tmp_path):
    connection = await open_local(tmp_path / "events.db")
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def seeded(conn):
    summary = await seeding.seed(conn, now_ms=NOW)
    return conn, summary


async def read_all(conn: Connection, topic: str) -> list[Event]:
    events: list[Event] = []
    async for batch in conn.read(topic, Position.beginning()):
        events.extend(batch)
    return events


def header(event: Event, name: str) -> str | None:
    value = dict(event.headers).get(name)
    return None if value is None else value.decode()


async def types_by_saga(conn: Connection) -> dict[str, set[tuple[str, str]]]:
    """correlation id -> {(topic, ce_type)}"""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for topic in scenario.TOPICS:
        for event in await read_all(conn, topic):
            found[header(event, "correlation_id")].add((topic, header(event, "ce_type")))
    return found


async def lags(conn: Connection) -> dict[str, dict[tuple[str, int], int | None]]:
    return {g.group_id: {(p.topic, p.partition): p.lag for p in g.partitions} for g in await conn.lag(None)}


async def committed(conn: Connection) -> dict[str, dict[tuple[str, int], int]]:
    return {
        g.group_id: {(p.topic, p.partition): p.committed for p in g.partitions if p.committed is not None}
        for g in await conn.lag(None)
    }


async def test_seed_creates_four_partitioned_topics(seeded):
    conn, summary = seeded
    for name, partitions in scenario.TOPICS.items():
        info = await conn.describe_topic(name)
        assert len(info.partitions) == partitions
        assert info.count == summary.topics[name] > 0
        assert all(p.count > 0 for p in info.partitions), f"{name}: an empty partition"
    assert summary.published == sum(summary.topics.values())
    assert summary.already_seeded is False
    assert sum(summary.sagas.values()) == 200
    assert "PaymentFailed" in seeding.describe(summary)


async def test_events_are_cloudevents_with_correlation_and_trace(seeded):
    conn, _ = seeded
    for topic in scenario.TOPICS:
        events = await read_all(conn, topic)
        ce_ids = set()
        for event in events:
            assert header(event, "ce_specversion") == "1.0"
            assert header(event, "ce_source").startswith("/")
            assert header(event, "content-type") == "application/json"
            assert header(event, "ce_time").endswith("Z")
            ce_ids.add(header(event, "ce_id"))
            body = json.loads(event.value)
            correlation = header(event, "correlation_id")
            assert body["correlationId"] == correlation
            assert body["orderId"] == event.key.decode()
            version, trace_id, span_id, flags = header(event, "traceparent").split("-")
            assert (version, flags, len(span_id)) == ("00", "01", 16)
            assert trace_id == correlation.replace("-", "")
            assert event.timestamp is not None and NOW - 2 * 3600 * 1000 <= event.timestamp <= NOW
        assert len(ce_ids) == len(events), f"{topic}: ce_id not unique"
    orders = await read_all(conn, "orders")
    placed = [json.loads(e.value) for e in orders if header(e, "ce_type") == "OrderPlaced"]
    assert len(placed) == 200
    order = placed[0]
    assert order["items"] and {"sku", "qty", "price"} <= set(order["items"][0])
    assert order["amount"] == round(sum(i["qty"] * i["price"] for i in order["items"]), 2)
    assert order["currency"] in {"EUR", "USD", "GBP"}


async def test_keys_stay_in_one_partition_and_timestamps_are_monotonic(seeded):
    conn, _ = seeded
    for topic in scenario.TOPICS:
        partition_of: dict[bytes, set[int]] = defaultdict(set)
        last: dict[int, int] = {}
        for event in await read_all(conn, topic):
            partition_of[event.key].add(event.partition)
            assert event.timestamp >= last.get(event.partition, 0), f"{topic}/{event.partition}"
            last[event.partition] = event.timestamp
        assert all(len(parts) == 1 for parts in partition_of.values())


async def test_saga_outcomes(seeded):
    conn, summary = seeded
    sagas = await types_by_saga(conn)
    assert len(sagas) == 200
    types = {corr: {t for _, t in seen} for corr, seen in sagas.items()}
    completed = [c for c, seen in types.items() if "OrderCompleted" in seen]
    assert len(completed) == summary.sagas["completed"] > 150
    for corr in completed:
        assert sagas[corr] == {
            ("orders", "OrderPlaced"),
            ("payments", "PaymentProcessed"),
            ("inventory", "InventoryReserved"),
            ("shipping", "ShipmentScheduled"),
            ("orders", "OrderCompleted"),
        }
    failed_open = [c for c, seen in types.items() if "PaymentFailed" in seen and "OrderCancelled" not in seen]
    assert len(failed_open) == summary.sagas["failed_uncompensated"] >= 1
    assert summary.failed_example in failed_open
    compensated = [c for c, seen in types.items() if {"PaymentFailed", "OrderCancelled"} <= seen]
    assert len(compensated) == summary.sagas["compensated"] >= 1
    refund = {"InventoryOutOfStock", "PaymentRefunded", "OrderCancelled"}
    refunded = [c for c, seen in types.items() if refund <= seen]
    assert len(refunded) == summary.sagas["refunded_cancelled"] >= 1
    open_refunds = [c for c, seen in types.items() if "InventoryOutOfStock" in seen and "OrderCancelled" not in seen]
    half = [c for c in open_refunds if "PaymentRefunded" in types[c]]
    assert len(half) == summary.sagas["half_compensated"] >= 1
    assert len(open_refunds) - len(half) == summary.sagas["refund_pending"] >= 1
    past_pivot = [c for c, seen in types.items() if "ShipmentFailed" in seen]
    assert len(past_pivot) == summary.sagas["failed_past_pivot"] >= 1
    assert all(sagas[c] >= {("inventory", "InventoryReserved"), ("shipping", "ShipmentFailed")} for c in past_pivot)
    final = {"OrderCompleted", "OrderCancelled", "PaymentFailed", "InventoryOutOfStock", "ShipmentFailed"}
    unfinished = [c for c, seen in types.items() if not seen & final]
    assert len(unfinished) == summary.sagas["running"] + summary.sagas["stuck"]
    assert summary.sagas["running"] >= 1 and summary.sagas["stuck"] >= 1
    orders = await read_all(conn, "orders")
    cancelled = [json.loads(e.value) for e in orders if header(e, "ce_type") == "OrderCancelled"]
    assert cancelled and all(body["reason"] for body in cancelled)


async def test_groups_lag_as_the_story_says(seeded):
    conn, summary = seeded
    found = await lags(conn)
    assert set(scenario.GROUPS) <= set(found)
    assert set(found["billing-service"]) == {("payments", p) for p in range(3)}
    assert all(lag == 0 for lag in found["billing-service"].values())
    assert all(lag > 0 for lag in found["inventory-service"].values())
    inventory_events = summary.topics["inventory"]
    shipping_lag = sum(found["shipping-service"].values())
    assert shipping_lag >= inventory_events // 2
    assert all(lag > 0 for lag in found["shipping-service"].values())
    assert {t for t, _ in found["analytics"]} == set(scenario.TOPICS)
    assert 0 < sum(found["analytics"].values()) < sum(summary.topics.values())
    assert [k for k, lag in found["fraud-check"].items() if lag is not None] == [("payments", 0)]
    assert summary.groups["billing-service"] == 0 < summary.groups["inventory-service"] < shipping_lag


async def test_seeding_again_publishes_nothing_unless_forced(seeded):
    conn, first = seeded
    again = await seeding.seed(conn, now_ms=NOW + 60_000)
    assert again.already_seeded and again.published == 0
    assert again.topics == first.topics and again.sagas == first.sagas
    assert again.failed_example is not None
    assert {t: (await conn.describe_topic(t)).count for t in scenario.TOPICS} == first.topics

    more = await seeding.seed(conn, orders=20, now_ms=NOW + 60_000, force=True)
    assert not more.already_seeded
    assert sum(more.topics.values()) == sum(first.topics.values()) + more.published
    assert sum(more.sagas.values()) == 220
    assert more.groups["billing-service"] == 0
    for topic in scenario.TOPICS:
        ce_ids = [header(e, "ce_id") for e in await read_all(conn, topic)]
        assert len(set(ce_ids)) == len(ce_ids)


async def test_same_seed_same_scenario(tmp_path):
    async def snapshot(name: str, now_ms: int, seed: int = 11) -> dict[str, list[tuple]]:
        connection = await open_local(tmp_path / name)
        try:
            await seeding.seed(connection, orders=40, seed=seed, now_ms=now_ms)
            return {
                t: [
                    (e.partition, e.offset, e.timestamp, e.key, e.value, e.headers)
                    for e in await read_all(connection, t)
                ]
                for t in scenario.TOPICS
            }
        finally:
            await connection.close()

    first, same = await snapshot("a.db", NOW), await snapshot("b.db", NOW)
    assert first == same
    shifted = await snapshot("c.db", NOW + 5000)
    for topic in scenario.TOPICS:
        assert [e[:2] + e[3:5] for e in first[topic]] == [e[:2] + e[3:5] for e in shifted[topic]]
        assert all(b[2] - a[2] == 5000 for a, b in zip(first[topic], shifted[topic], strict=True))
    other = await snapshot("d.db", NOW, seed=12)
    assert [e[4] for e in other["orders"]] != [e[4] for e in first["orders"]]


async def test_run_live_produces_and_moves_groups(seeded):
    conn, _ = seeded
    before_counts = {t: (await conn.describe_topic(t)).count for t in scenario.TOPICS}
    before, committed_before = await lags(conn), await committed(conn)
    stop = asyncio.Event()
    ticks = []

    def on_tick(stats: live.LiveStats) -> None:
        ticks.append(stats)
        if stats.by_topic.get("payments", 0) >= 5 and stats.by_topic.get("orders", 0) >= 20 and stats.commits:
            stop.set()

    stats = await asyncio.wait_for(
        live.run_live(conn, rate=400, stop=stop, seed=3, on_tick=on_tick, tick=0.05, commit_every=0.1), timeout=30
    )
    assert stats.events == sum(stats.by_topic.values()) > 0 and stats.sagas > 0
    assert stats.ticks == len(ticks) and stats.commits >= 2
    after_counts = {t: (await conn.describe_topic(t)).count for t in scenario.TOPICS}
    assert {t: after_counts[t] - before_counts[t] for t in scenario.TOPICS} == {
        t: stats.by_topic.get(t, 0) for t in scenario.TOPICS
    }
    after, committed_after = await lags(conn), await committed(conn)
    assert all(lag == 0 for lag in after["billing-service"].values())  # kept up
    moved = {g: sum(committed_after[g].values()) - sum(committed_before[g].values()) for g in scenario.GROUPS}
    assert moved["billing-service"] == stats.by_topic.get("payments", 0)
    lag_growth = {g: sum(after[g].values()) - sum(before[g].values()) for g in scenario.GROUPS}
    assert moved["inventory-service"] > 0 and lag_growth["inventory-service"] > 0  # consumes, falls behind
    assert moved["shipping-service"] == 0 and moved["fraud-check"] == 0  # stalled
    assert moved["analytics"] == stats.events and lag_growth["analytics"] == 0  # keeps its distance
    new_orders = [e for e in await read_all(conn, "orders") if e.timestamp > NOW]
    assert len(new_orders) == stats.by_topic["orders"]
    assert {header(e, "ce_type") for e in new_orders} >= {"OrderPlaced"}


async def test_run_live_cancels_cleanly(conn):
    ticked = asyncio.Event()
    last: list[live.LiveStats] = []

    def on_tick(stats: live.LiveStats) -> None:
        last.append(stats)
        if stats.events:
            ticked.set()

    task = asyncio.create_task(live.run_live(conn, rate=200, on_tick=on_tick, tick=0.05))
    await asyncio.wait_for(ticked.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    counts = {t: (await conn.describe_topic(t)).count for t in scenario.TOPICS}
    assert counts == {t: last[-1].by_topic.get(t, 0) for t in scenario.TOPICS}


class FailingPublish(Connection):
    """Delegates to a real connection but every publish is refused."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    async def close(self) -> None:
        await self.inner.close()

    async def list_topics(self):
        return await self.inner.list_topics()

    async def describe_topic(self, name):
        return await self.inner.describe_topic(name)

    def read(self, topic, start, **kwargs):
        return self.inner.read(topic, start, **kwargs)

    async def create_topic(self, name, partitions=1, config=None):
        return await self.inner.create_topic(name, partitions, config)

    async def publish(self, _topic, events):
        return [PublishResult(i, error=BrokerError("disk full")) for i in range(len(events))]


async def test_a_failed_publish_is_a_clear_error(conn):
    with pytest.raises(BrokerError, match=r"demo: publishing to '\w+' failed .*disk full"):
        await seeding.seed(FailingPublish(conn), orders=5, now_ms=NOW)
