"""The demo's scenario: an order platform's topics, groups and catalogue, and its sagas planned (pure).

A saga is planned as a list of :class:`Step` with times relative to "now" (absolute when live),
ending in one of :data:`OUTCOMES`; a scenario mixes fixed shares of each outcome, so every seeded
history has each kind, and the same random seed gives the same steps.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

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
# Personal data, so that redaction ([mask] in workbench.toml) has something to hide: fictional
# names, example.com addresses, the UK's drama phone range and the card networks' public test numbers.
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Dennis")
LAST_NAMES = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Torvalds",
    "Perlman",
    "Ritchie",
)
TEST_CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4242 4242 4242 4242", "3782 822463 10005")


@dataclass(frozen=True, slots=True)
class Step:
    """One planned event of a saga. ``at``: ms, relative to now when seeding, absolute when live."""

    at: int
    topic: str
    type: str
    key: str  # the order id
    correlation_id: str
    data: Mapping[str, Any]


class _LineItem(TypedDict):
    sku: str
    qty: int
    price: float


def customer_details(customer_id: str) -> dict[str, str]:
    """The customer's name, e-mail and phone, derived from the id (the random sequence stays the same)."""
    n = int(customer_id.removeprefix("CUS-"))
    first, last = FIRST_NAMES[n % 10], LAST_NAMES[n // 10 % 10]
    return {
        "name": f"{first} {last}",
        "email": f"{first}.{last}{n}@example.com".lower(),
        "phone": f"+44 7700 900{n % 1000:03d}",
    }


def card_details(customer_id: str) -> dict[str, str]:
    """The card a customer pays with (a public test number)."""
    n = int(customer_id.removeprefix("CUS-"))
    return {
        "holder": customer_details(customer_id)["name"],
        "number": TEST_CARDS[n % len(TEST_CARDS)],
        "expiry": "12/29",
    }


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

    emit((0, 0), "orders", "OrderPlaced", customer=customer_details(customer), items=items, **money)
    card = {"card": card_details(customer)} if method == "card" else {}
    if outcome in ("compensated", "failed_uncompensated"):
        reason = rng.choice(DECLINES)
        emit(
            (80, 1500), "payments", "PaymentFailed", paymentId=payment_id, method=method, **card, **money, reason=reason
        )
        if outcome == "compensated":
            emit((200, 3000), "orders", "OrderCancelled", **money, reason=f"payment failed: {reason}")
        return steps
    emit((80, 1500), "payments", "PaymentProcessed", paymentId=payment_id, method=method, **card, **money)
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
