"""Saga instances from events (states, step links, fingerprints) and compensation plans: pure."""

from __future__ import annotations

import json

import pytest

from workbench.broker import Event
from workbench.errors import CompensationRefused
from workbench.sagas import audit, compensation, compensation_plan, instances, settings
from workbench.sagas import definitions as sagas

ORDER = settings.builtin_definitions()["order"]
T0 = 1_800_000_000_000
TOPIC = {
    "OrderPlaced": "orders",
    "OrderCancelled": "orders",
    "OrderCompleted": "orders",
    "PaymentProcessed": "payments",
    "PaymentFailed": "payments",
    "PaymentRefunded": "payments",
    "InventoryReserved": "inventory",
    "InventoryOutOfStock": "inventory",
    "ShipmentScheduled": "shipping",
    "ShipmentFailed": "shipping",
}


def events(corr: str, *types: str, start: int = T0) -> list[Event]:
    out = []
    for n, type_ in enumerate(types):
        body = {"orderId": "ORD-1", "customerId": "CUS-1", "amount": 10.5, "currency": "EUR", "paymentId": "PAY-1"}
        out.append(
            Event(
                TOPIC[type_],
                0,
                n,
                start + n * 1000,
                b"ORD-1",
                json.dumps(body).encode(),
                (("ce_type", type_.encode()), ("ce_id", f"{corr}-{n}".encode()), ("correlation_id", corr.encode())),
            )
        )
    return out


def instance(*types: str, now: int | None = None, start: int = T0) -> instances.SagaInstance:
    collector = instances.Collector(ORDER, lambda e: dict(e.headers)["correlation_id"].decode())
    collector.add(events("c1", *types, start=start))
    (found,) = collector.instances(now if now is not None else start + 60_000)
    return found


@pytest.mark.parametrize(
    ("types", "state"),
    [
        (("OrderPlaced",), "RUNNING"),
        (("OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentScheduled", "OrderCompleted"), "COMPLETED"),
        (("OrderPlaced", "PaymentFailed"), "FAILED"),
        (("OrderPlaced", "PaymentFailed", "OrderCancelled"), "COMPENSATED"),
        (("OrderPlaced", "PaymentProcessed", "InventoryOutOfStock"), "FAILED"),
        (("OrderPlaced", "PaymentProcessed", "InventoryOutOfStock", "PaymentRefunded"), "COMPENSATING"),
        (
            ("OrderPlaced", "PaymentProcessed", "InventoryOutOfStock", "PaymentRefunded", "OrderCancelled"),
            "COMPENSATED",
        ),
        (("OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentFailed"), "FAILED"),
    ],
)
def test_states(types, state):
    assert instance(*types).state == state


def test_stuck_after_the_saga_s_stuck_after_with_no_new_event():
    types = ("OrderPlaced", "PaymentProcessed")
    last = T0 + 1000
    assert instance(*types, now=last + ORDER.stuck_after_ms).state == "RUNNING"
    assert instance(*types, now=last + ORDER.stuck_after_ms + 1).state == "STUCK"
    assert instance(*types, "InventoryOutOfStock", now=last + 10 * ORDER.stuck_after_ms).state == "FAILED"


def test_steps_link_to_their_events_and_instances_group_by_correlation_id():
    collector = instances.Collector(ORDER, sagas.SagaDef.correlator(ORDER))
    collector.add(
        events("a", "OrderPlaced", "PaymentFailed")
        + events("b", "OrderPlaced", start=T0 - 5000)
        + [Event("orders", 0, 99, T0, None, b"{}", ())]
    )  # no correlation id: not a saga event
    found = collector.instances(T0 + 1000)
    assert [i.correlation_id for i in found] == ["b", "a"]  # oldest first
    a = found[1]
    assert a.step("order").done.position == "orders/0/0" and a.step("order").done.type == "OrderPlaced"
    assert a.step("payment").failed.event_id == "a-1" and a.failure.step == "payment"
    assert [s.status for s in a.steps] == ["done", "failed", "pending", "pending", "pending"]
    assert collector.scanned == 4 and collector.matched == 3


def test_the_fingerprint_changes_with_any_new_event():
    before = instance("OrderPlaced", "PaymentFailed")
    assert instance("OrderPlaced", "PaymentFailed").fingerprint == before.fingerprint
    assert instance("OrderPlaced", "PaymentFailed", "OrderCancelled").fingerprint != before.fingerprint


def test_plan_newest_first_with_ids_causation_and_filled_payloads():
    found = instance("OrderPlaced", "PaymentProcessed", "InventoryOutOfStock")
    planned = compensation_plan.plan(ORDER, found, now_ms=T0)
    assert [(e.step, e.topic) for e in planned.events] == [("payment", "payments"), ("order", "orders")]
    refund = planned.events[0]
    headers = dict(refund.headers)
    assert headers["ce_type"] == b"PaymentRefunded" and headers["correlation_id"] == b"c1"
    assert headers["causation_id"] == b"c1-2" == planned.causation_id.encode()  # the failure event's id
    assert headers["ce_id"].decode() == refund.event_id == compensation_plan.idempotency_key("order", "c1", "payment")
    assert compensation_plan.plan(ORDER, found, now_ms=T0 + 5).events[0].event_id == refund.event_id  # deterministic
    assert refund.key == b"ORD-1"
    assert json.loads(refund.value) == {
        "orderId": "ORD-1",
        "customerId": "CUS-1",
        "paymentId": "PAY-1",
        "amount": 10.5,
        "currency": "EUR",
        "reason": "saga compensation",
        "correlationId": "c1",
    }
    assert refund.confirm == 'type == "PaymentRefunded"' and refund.confirm_by == "compensated_when"


def test_plan_skips_what_is_already_compensated():
    planned = compensation_plan.plan(
        ORDER, instance("OrderPlaced", "PaymentProcessed", "InventoryOutOfStock", "PaymentRefunded")
    )
    assert [e.step for e in planned.events] == ["order"] and planned.already == ("payment",)
    done = compensation_plan.plan(ORDER, instance("OrderPlaced", "PaymentFailed", "OrderCancelled"))
    assert done.events == () and "nothing to compensate" in done.notes[0]


def test_past_the_pivot_is_refused_unless_override():
    found = instance("OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentFailed")
    assert found.past_pivot
    with pytest.raises(CompensationRefused, match="past its pivot: step 'inventory'"):
        compensation_plan.plan(ORDER, found)
    forced = compensation_plan.plan(ORDER, found, override=True)
    assert [e.step for e in forced.events] == ["payment", "order"] and forced.override
    assert any("pivot" in note for note in forced.notes)


def test_a_running_saga_is_refused_unless_override_and_a_stuck_one_is_not():
    with pytest.raises(CompensationRefused, match="still RUNNING"):
        compensation_plan.plan(ORDER, instance("OrderPlaced", "PaymentProcessed"))
    stuck = instance("OrderPlaced", "PaymentProcessed", now=T0 + 10 * ORDER.stuck_after_ms)
    planned = compensation_plan.plan(ORDER, stuck)
    assert [e.step for e in planned.events] == ["payment", "order"]
    assert planned.causation_id == "c1-1"  # no failure: the last event


def test_a_template_the_events_cannot_fill_refuses_the_plan_naming_step_and_field():
    found = instance("OrderPlaced", "PaymentFailed")
    body = dict(found.step("order").done.event.headers)
    assert body  # the event exists, but its value lacks customerId below
    event = found.step("order").done.event
    stripped = Event(
        event.topic, event.partition, event.offset, event.timestamp, event.key, b'{"orderId": "X"}', event.headers
    )
    collector = instances.Collector(ORDER, lambda e: dict(e.headers)["correlation_id"].decode())
    collector.add([stripped, found.step("payment").failed.event])
    (broken,) = collector.instances(T0)
    with pytest.raises(CompensationRefused, match=r"step 'order', field 'compensation.payload.customerId'"):
        compensation_plan.plan(ORDER, broken)


def test_audit_log_appends_and_filters(tmp_path):
    log = audit.AuditLog(tmp_path / "audit" / "log.jsonl")
    assert log.records() == []
    planned = compensation_plan.plan(ORDER, instance("OrderPlaced", "PaymentFailed"))
    run = compensation.Execution(planned, outcome="done")
    log.append(compensation.audit_record(run, profile="p", broker="local(path=x)", reason="why"))
    log.append({"correlation_id": "other", "outcome": "refused"})
    (record,) = log.records("c1")
    assert record["who"].count("@") == 1 and record["reason"] == "why" and record["plan"][0]["step"] == "order"
    assert len(log.records()) == 2


def test_matchers_on_values_are_evaluated_per_event_and_type_only_ones_per_type():
    definition = sagas.parse_saga(
        "pay",
        {
            "topics": ["p"],
            "steps": [
                {
                    "name": "charge",
                    "kind": "pivot",
                    "done_when": 'type == "Charged" and topic == "p"',
                    "failed_when": 'type == "Declined" and value.amount > 10',
                },
                {"name": "ship", "kind": "retriable", "done_when": 'type == "Shipped"'},
            ],
        },
        "test",
    )

    def event(offset: int, type_: str, amount: float, topic: str = "p") -> Event:
        return Event(
            topic,
            0,
            offset,
            T0 + offset,
            None,
            json.dumps({"amount": amount}).encode(),
            (("ce_type", type_.encode()), ("correlation_id", f"c{offset}".encode())),
        )

    collector = instances.Collector(definition, sagas.SagaDef.correlator(definition))
    collector.add(
        [
            event(0, "Declined", 5),
            event(1, "Declined", 20),
            event(2, "Charged", 1),
            event(3, "Charged", 1, topic="q"),
            event(4, "Shipped", 0),
        ]
    )
    states = {i.correlation_id: (i.state, [s.status for s in i.steps]) for i in collector.instances(T0)}
    assert states == {
        "c1": ("FAILED", ["failed", "pending"]),
        "c2": ("RUNNING", ["done", "pending"]),
        "c4": ("COMPLETED", ["pending", "done"]),
    }


def test_a_saga_s_own_correlation_rules_group_its_events():
    definition = sagas.parse_saga(
        "pay",
        {
            "topics": ["p"],
            "correlation": ["json:$.orderId"],
            "steps": [{"name": "charge", "kind": "pivot", "done_when": 'type == "Charged"'}],
        },
        "test",
    )
    charged = Event("p", 0, 0, T0, None, b'{"orderId": "ORD-9"}', (("ce_type", b"Charged"), ("correlation_id", b"x")))
    collector = instances.Collector(definition, definition.correlator())
    collector.add([charged])
    assert [i.correlation_id for i in collector.instances(T0)] == ["ORD-9"]
    with pytest.raises(Exception, match="saga 'pay'"):
        sagas.parse_saga(
            "pay",
            {
                "topics": ["p"],
                "correlation": ["nonsense:rule"],
                "steps": [{"name": "charge", "kind": "pivot", "done_when": "true"}],
            },
            "test",
        )
