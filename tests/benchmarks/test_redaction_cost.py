"""What redaction costs: `tail -o jsonl --redact` against `tail -o jsonl` (the same 100,000 events,
read from the same local event log, in the same run), with the README's example rules: three
fields, a wildcard-free hash rule (filterable), a last4 rule and the card-number pattern, on the
demo's order shape (a customer with name, e-mail and phone; a card with holder and number).

The ratio is printed for the README; the assert is a regression floor (redacting may not cost more
than 8 times the plain read). Every event is checked: no e-mail is left, each carries the marker.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.benchmarks.conftest import best_of, report
from workbench.demo.scenario import card_details, customer_details

EVENTS = 100_000
MASK = """
[mask]
salt = "bench"
fields = ["value.customer.email", "value.customer.phone", "value.card.holder"]
patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']

[[mask.rules]]
field = "value.customer.name"
style = "hash"
filterable = true

[[mask.rules]]
field = "value.card.number"
style = "last4"
"""


@pytest.fixture(scope="module")
def orders(tmp_path_factory):
    where = tmp_path_factory.mktemp("redaction")
    (where / "workbench.toml").write_text(MASK)
    lines = []
    for n in range(EVENTS):
        customer = f"CUS-{n % 500:05d}"
        value = {
            "orderId": f"ORD-{n:08X}",
            "customerId": customer,
            "customer": customer_details(customer),
            "card": card_details(customer),
            "items": [{"sku": "SKU-MUG-LOGO", "qty": 2, "price": 14.0}],
            "amount": 28.0,
            "currency": "EUR",
            "correlationId": f"c-{n}",
        }
        lines.append(json.dumps({"key": value["orderId"], "value": json.dumps(value)}))
    (where / "orders.jsonl").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "WORKBENCH_CONFIG": str(where / "workbench.toml")}
    broker = ["--broker", f"local:{where / 'events.db'}"]
    base = [sys.executable, "-m", "workbench", *broker]
    best_of(1, [*base, "topics", "create", "orders"], env=env)
    best_of(1, [*base, "publish", "orders", "--file", str(where / "orders.jsonl")], env=env)
    return base, env


def test_redacting_a_read_costs_a_bounded_factor(orders):
    base, env = orders
    plain = best_of(3, [*base, "tail", "orders", "-o", "jsonl"], env=env)
    redacted = best_of(3, [*base, "tail", "orders", "-o", "jsonl", "--redact"], env=env)
    assert plain.stdout.count(b"\n") == redacted.stdout.count(b"\n") == EVENTS
    assert b"@example.com" in plain.stdout and b"@example.com" not in redacted.stdout
    assert redacted.stdout.count(b"workbench-redacted") == EVENTS
    ratio = redacted.seconds / plain.seconds
    report(
        "tail -o jsonl --redact (100,000 demo orders, local log)",
        plain_s=plain.seconds,
        redacted_s=redacted.seconds,
        redacted_over_plain=ratio,
        per_event_us=(redacted.seconds - plain.seconds) / EVENTS * 1e6,
    )
    assert ratio <= 8.0
