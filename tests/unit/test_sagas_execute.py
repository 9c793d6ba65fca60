"""Executing a compensation on the real local adapter: the fingerprint re-check, a publish that
fails half-way, and the audit record written whatever happens."""

from __future__ import annotations

import json

import pytest

from workbench.broker import BrokerError, Connection, OutgoingEvent, PublishResult
from workbench.demo import seeding
from workbench.errors import CompensationRefused
from workbench.sagas import compensation, compensation_plan, observing, settings
from workbench.sagas.audit import AuditLog
from workbench_local import LocalAdapter

NOW = 1_800_000_000_000
ORDER = settings.builtin_definitions()["order"]
CORRELATE = ORDER.correlator()


@pytest.fixture
async def conn(tmp_path):
    connection = await LocalAdapter(LocalAdapter.options_from_url(f"local:{tmp_path / 'events.db'}")).connect()
    try:
        await seeding.seed(connection, orders=60, now_ms=NOW)
        yield connection
    finally:
        await connection.close()


async def refund_pending(conn: Connection):
    """A FAILED instance with two compensations due (refund, then cancel), and its plan."""
    found = await observing.observe(conn, ORDER, CORRELATE, now=NOW)
    instance = next(
        i for i in found if i.state == "FAILED" and not i.past_pivot and len(i.pending_compensations()) == 2
    )
    return instance, compensation_plan.plan(ORDER, instance, now_ms=NOW)


async def count(conn: Connection, topic: str) -> int:
    return (await conn.describe_topic(topic)).count


async def test_a_saga_that_changed_since_the_plan_is_refused_and_recorded(conn, tmp_path):
    instance, planned = await refund_pending(conn)
    someone_else = OutgoingEvent(
        value=json.dumps({"orderId": "x"}).encode(),
        key=b"x",
        headers=(
            ("ce_type", b"PaymentRefunded"),
            ("ce_id", b"by-hand"),
            ("correlation_id", instance.correlation_id.encode()),
        ),
    )
    assert (await conn.publish("payments", [someone_else]))[0].ok
    payments, orders = await count(conn, "payments"), await count(conn, "orders")
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(CompensationRefused, match="changed since the plan"):
        await compensation.execute_and_record(
            conn, ORDER, planned, CORRELATE, audit, profile="p", broker="b", reason="test", wait_s=0
        )
    assert (await count(conn, "payments"), await count(conn, "orders")) == (payments, orders)
    (record,) = audit.records(instance.correlation_id)
    assert record["outcome"] == "refused" and "changed since the plan" in record["error"]
    assert [r["status"] for r in record["results"]] == ["not sent", "not sent"]


class OrdersRefused(Connection):
    """The real connection, except that the broker refuses what is published to 'orders'."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    async def close(self) -> None:
        pass

    async def list_topics(self):
        return await self.inner.list_topics()

    async def describe_topic(self, name):
        return await self.inner.describe_topic(name)

    def read(self, topic, start, **kwargs):
        return self.inner.read(topic, start, **kwargs)

    async def publish(self, topic, events):
        if topic == "orders":
            return [PublishResult(i, error=BrokerError("not leader for partition")) for i in range(len(events))]
        return await self.inner.publish(topic, events)


async def test_a_publish_failing_half_way_stops_there_and_a_rerun_finishes(conn, tmp_path):
    instance, planned = await refund_pending(conn)
    audit = AuditLog(tmp_path / "audit.jsonl")
    failing = await compensation.execute_and_record(
        OrdersRefused(conn), ORDER, planned, CORRELATE, audit, profile="p", broker="b", reason=None, wait_s=0
    )
    assert failing.outcome == "failed" and "not leader" in failing.error
    assert [(r.step, r.status) for r in failing.results] == [("payment", "published"), ("order", "failed")]

    again = (await observing.observe(conn, ORDER, CORRELATE, now=NOW, only=instance.correlation_id))[0]
    assert again.state == "COMPENSATING"
    replanned = compensation_plan.plan(ORDER, again, now_ms=NOW)
    assert [e.step for e in replanned.events] == ["order"] and replanned.already == ("payment",)
    done = await compensation.execute_and_record(
        conn, ORDER, replanned, CORRELATE, audit, profile="p", broker="b", reason=None, wait_s=5
    )
    assert done.outcome == "done" and [(r.status, r.confirmed) for r in done.results] == [("published", True)]
    assert [r["outcome"] for r in audit.records(instance.correlation_id)] == ["failed", "done"]
