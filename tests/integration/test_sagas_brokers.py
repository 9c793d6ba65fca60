"""Sagas end to end on real Kafka and real RabbitMQ (stream queues as the saga topics): a failed
saga is found, compensated once (confirmed), a second execution publishes nothing, the audit log
has both attempts, and a saga past its pivot is refused.

Needs the brokers on 127.0.0.1 (``bash tests/brokers/brokers.sh up``); without them these tests
fail, they do not skip. Topic and stream names are unique per test and removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid

import pytest
from typer.testing import CliRunner

from tests.brokers import endpoints
from workbench import config, service
from workbench.broker import OutgoingEvent
from workbench.cli import app
from workbench.demo import scenario
from workbench.sagas.builtin import SAGA_TOML

SAGA_TOPICS = ("orders", "payments", "inventory", "shipping")

BROKERS = {
    "kafka": (f'broker = "kafka://{endpoints.KAFKA_BOOTSTRAP}"', endpoints.KAFKA_HOST, endpoints.KAFKA_PORT),
    "rabbitmq": (
        f'adapter = "rabbitmq"\nurl = "{endpoints.RABBIT_AMQP_URL}"\n'
        f'management_url = "{endpoints.RABBIT_MANAGEMENT_URL}"',
        endpoints.RABBIT_HOST,
        endpoints.RABBIT_AMQP_PORT,
    ),
}


def require(kind: str) -> None:
    _, host, port = BROKERS[kind]
    if not endpoints.port_open(host, port):
        pytest.fail(f"{kind} does not answer on {host}:{port}: run `bash tests/brokers/brokers.sh up`", pytrace=False)


def outgoing(step: scenario.Step, ts: int) -> OutgoingEvent:
    headers = {
        "ce_specversion": "1.0",
        "ce_type": step.type,
        "ce_source": scenario.SOURCES[step.topic],
        "ce_id": str(uuid.uuid4()),
        "content-type": "application/json",
        "correlation_id": step.correlation_id,
    }
    return OutgoingEvent(
        value=json.dumps(step.data).encode(),
        key=step.key.encode(),
        headers=tuple((k, v.encode()) for k, v in headers.items()),
        timestamp=ts,
    )


@pytest.fixture(
    params=[pytest.param("kafka", marks=pytest.mark.kafka), pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]
)
def broker(request, isolated_home):
    """A profile on the broker with the demo's order saga over fresh topics; three sagas seeded:
    one failed after payment (two compensations due), one failed past the pivot, one completed."""
    kind = request.param
    require(kind)
    suffix = uuid.uuid4().hex[:8]
    names = {t: f"it-saga-{t}-{suffix}" for t in SAGA_TOPICS}
    sagas_toml = SAGA_TOML
    for topic, name in names.items():
        sagas_toml = sagas_toml.replace(f'"{topic}"', f'"{name}"')
    (isolated_home / "workbench.toml").write_text(f"[profiles.it]\n{BROKERS[kind][0]}\n{sagas_toml}")
    target = config.resolve(config.load_config().profile("it"))
    rng = random.Random(11)
    now = time.time_ns() // 1_000_000
    plans = {
        outcome: scenario.plan_saga(rng, -30_000, outcome)
        for outcome in ("refund_pending", "failed_past_pivot", "completed")
    }

    async def setup() -> None:
        async with service.connect(target) as conn:
            for name in names.values():
                await conn.create_topic(name, 1)
            for step in sorted((s for steps in plans.values() for s in steps), key=lambda s: s.at):
                (result,) = await conn.publish(names[step.topic], [outgoing(step, now + step.at)])
                assert result.ok, result.error

    async def teardown() -> None:
        async with service.connect(target) as conn:
            for name in names.values():
                try:
                    await conn.delete_topic(name)
                except Exception:  # noqa: BLE001, S110 - best-effort cleanup
                    pass

    asyncio.run(setup())
    try:
        yield {"names": names, "corr": {o: steps[0].correlation_id for o, steps in plans.items()}}
    finally:
        asyncio.run(teardown())


def workbench(*args: str):
    return CliRunner().invoke(app, ["--profile", "it", *args], catch_exceptions=False)


def counts(names: dict[str, str]) -> dict[str, int]:
    async def figures() -> dict[str, int]:
        async with service.connect(config.resolve(config.load_config().profile("it"))) as conn:
            return {short: (await conn.describe_topic(name)).count for short, name in names.items()}

    return asyncio.run(figures())


def test_failed_saga_compensated_once_and_past_pivot_refused(broker):
    names, corr = broker["names"], broker["corr"]
    listed = workbench("saga", "list", "-o", "jsonl")
    assert listed.exit_code == 0, listed.output
    states = {i["correlation_id"]: i["state"] for i in map(json.loads, listed.stdout.splitlines())}
    assert states == {
        corr["refund_pending"]: "FAILED",
        corr["failed_past_pivot"]: "FAILED",
        corr["completed"]: "COMPLETED",
    }

    target = corr["refund_pending"]
    dry = json.loads(workbench("saga", "compensate", target, "-o", "json").stdout)
    assert [(e["step"], e["topic"]) for e in dry["events"]] == [
        ("payment", names["payments"]),
        ("order", names["orders"]),
    ]
    before = counts(names)

    first = workbench(
        "saga", "compensate", target, "--execute", "--yes", "--wait", "30", "--reason", "it", "-o", "json"
    )
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["outcome"] == "done" and report["published"] == 2
    assert all(r["confirmed"] for r in report["results"]), report["results"]
    after = counts(names)
    assert after["payments"] == before["payments"] + 1 and after["orders"] == before["orders"] + 1

    second = workbench("saga", "compensate", target, "--execute", "--yes", "--wait", "1", "-o", "json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["published"] == 0 and counts(names) == after
    shown = json.loads(workbench("saga", "show", target, "-o", "json").stdout)
    assert shown["state"] == "COMPENSATED"
    assert {s["name"]: s["compensated"]["topic"] for s in shown["steps"] if s["compensated"]} == {
        "order": names["orders"],
        "payment": names["payments"],
    }

    history = json.loads(workbench("saga", "history", target, "-o", "json").stdout)
    assert [(r["outcome"], r["published"]) for r in history] == [("done", 2), ("done", 0)]

    refused = workbench("saga", "compensate", corr["failed_past_pivot"], "--execute", "--yes")
    assert refused.exit_code == 6 and "past its pivot" in refused.stderr
    assert counts(names) == after
    (record,) = json.loads(workbench("saga", "history", corr["failed_past_pivot"], "-o", "json").stdout)
    assert record["outcome"] == "refused"
