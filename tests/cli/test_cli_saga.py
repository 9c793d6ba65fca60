"""`workbench saga` on the local adapter, seeded with the demo: from `list --state failed` to a
confirmed compensation with an audit record, and every refusal on the way."""

from __future__ import annotations

import json
import textwrap

import pytest

from workbench.cli import saga_compensate as saga_cli
from workbench.sagas import audit


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def seeded(wb):
    result = wb("demo")
    assert result.exit_code == 0, result.output
    return wb


def failed(wb, *, past_pivot: bool = False, compensations: int | None = None) -> dict:
    result = wb("saga", "list", "--state", "failed", "-o", "jsonl")
    assert result.exit_code == 0, result.output
    found = [
        i
        for i in jsonl(result)
        if i["past_pivot"] == past_pivot
        and (
            compensations is None
            or sum(s["status"] == "done" and s["kind"] == "compensatable" for s in i["steps"]) == compensations
        )
    ]
    assert found, result.output
    return found[0]


def counts(wb) -> dict[str, int]:
    result = wb("topics", "-o", "json")
    return {t["name"]: t["count"] for t in json.loads(result.stdout)}


def test_list_show_and_states_of_the_demo(seeded):
    result = seeded("saga", "list", "-o", "jsonl")
    assert result.exit_code == 0, result.output
    states = {i["state"] for i in jsonl(result)}
    assert states == {"RUNNING", "COMPLETED", "FAILED", "COMPENSATING", "COMPENSATED", "STUCK"}
    table = seeded("saga", "list", "--state", "stuck")
    assert table.exit_code == 0 and "STUCK" in table.stdout and "RUNNING" not in table.stdout
    assert "1 of 200 instances" in table.stderr
    one = failed(seeded)
    show = seeded("saga", "show", one["correlation_id"])
    assert show.exit_code == 0, show.output
    assert "FAILED" in show.stdout and "PaymentFailed" in show.stdout and "payments/" in show.stdout
    as_json = json.loads(seeded("saga", "show", one["correlation_id"], "-o", "json").stdout)
    assert as_json["failure"]["type"] == "PaymentFailed" and as_json["steps"][0]["done"]["topic"] == "orders"
    missing = seeded("saga", "show", "no-such-id")
    assert missing.exit_code == 5 and "no saga instance with correlation id 'no-such-id'" in missing.stderr


def test_failed_to_compensated_once_with_an_audit_trail(seeded):
    target = failed(seeded, compensations=2)  # paid, then out of stock: refund, then cancel
    corr = target["correlation_id"]
    before = counts(seeded)

    dry = seeded("saga", "compensate", corr, "-o", "json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True
    assert [(e["step"], e["topic"]) for e in plan["events"]] == [("payment", "payments"), ("order", "orders")]
    headers = dict(plan["events"][0]["headers"])
    assert headers["correlation_id"] == corr and headers["ce_id"] == plan["events"][0]["id"]
    assert headers["causation_id"] == target["failure"]["id"]
    assert counts(seeded) == before  # a dry run publishes nothing
    assert "payload" in seeded("saga", "compensate", corr).stdout

    no_tty = seeded("saga", "compensate", corr, "--execute")
    assert no_tty.exit_code == 2 and "--yes" in no_tty.stderr

    first = seeded(
        "saga", "compensate", corr, "--execute", "--yes", "--wait", "10", "--reason", "stock sync bug", "-o", "json"
    )
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["outcome"] == "done" and report["published"] == 2
    assert [(r["step"], r["status"], r["confirmed"]) for r in report["results"]] == [
        ("payment", "published", True),
        ("order", "published", True),
    ]
    after = counts(seeded)
    assert (after["payments"] - before["payments"], after["orders"] - before["orders"]) == (1, 1)
    shown = json.loads(seeded("saga", "show", corr, "-o", "json").stdout)
    assert shown["state"] == "COMPENSATED"

    second = seeded("saga", "compensate", corr, "--execute", "--yes", "-o", "json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["events"] == [] and counts(seeded) == after
    third = seeded("saga", "compensate", corr, "--execute", "--yes")
    assert third.exit_code == 0 and third.stdout.count("nothing to publish") == 1, third.output  # said once

    history = seeded("saga", "history", corr, "-o", "json")
    records = json.loads(history.stdout)
    assert [(r["outcome"], r["published"]) for r in records] == [("done", 2), ("done", 0), ("done", 0)]
    assert records[0]["reason"] == "stock sync bug" and "@" in records[0]["who"]
    assert records[0]["fingerprint"] == plan["fingerprint"] and records[0]["plan"][0]["id"] == plan["events"][0]["id"]
    table = seeded("saga", "history", corr)
    assert table.exit_code == 0 and "stock sync bug" in table.stdout and "3 record(s)" in table.stderr


def test_the_idempotency_key_stops_a_second_publish(seeded, isolated_home):
    """Even when the saga does not see its compensation (compensated_when never matches), the event
    id found on the destination means "already published"."""
    from workbench.sagas.builtin import SAGA_TOML

    profile = SAGA_TOML.replace(
        "compensated_when = 'type == \"OrderCancelled\"'", "compensated_when = 'type == \"OrderCancellationConfirmed\"'"
    )
    (isolated_home / "workbench.toml").write_text(profile)
    corr = failed(seeded, compensations=1)["correlation_id"]
    first = seeded("saga", "compensate", corr, "--execute", "--yes", "--wait", "0.5", "-o", "json")
    assert first.exit_code == 9, first.output  # published, but nothing confirmed it within --wait
    report = json.loads(first.stdout)
    assert report["outcome"] == "unconfirmed"
    assert [(r["status"], r["confirmed"]) for r in report["results"]] == [("published", False)]
    before = counts(seeded)
    second = seeded("saga", "compensate", corr, "--execute", "--yes", "--wait", "0.5", "-o", "json")
    results = json.loads(second.stdout)["results"]
    assert [r["status"] for r in results] == ["already published"] and results[0]["position"].startswith("orders/")
    assert counts(seeded) == before


def test_confirmation_by_typing_the_id_back(seeded, monkeypatch):
    monkeypatch.setattr(saga_cli, "interactive", lambda: True)
    corr = failed(seeded, compensations=1)["correlation_id"]
    before = counts(seeded)
    wrong = seeded("saga", "compensate", corr, "--execute", input="not-it\n")
    assert wrong.exit_code == 6 and "not confirmed" in wrong.stderr and counts(seeded) == before
    right = seeded("saga", "compensate", corr, "--execute", "--wait", "5", input=f"{corr}\n")
    assert right.exit_code == 0, right.output
    assert "confirmed" in right.stdout and counts(seeded)["orders"] == before["orders"] + 1
    outcomes = [r["outcome"] for r in json.loads(seeded("saga", "history", corr, "-o", "json").stdout)]
    assert outcomes == ["refused", "done"]


def test_past_the_pivot_is_refused_and_recorded(seeded):
    corr = failed(seeded, past_pivot=True)["correlation_id"]
    before = counts(seeded)
    refused = seeded("saga", "compensate", corr, "--execute", "--yes")
    assert refused.exit_code == 6 and "past its pivot" in refused.stderr and "--override" in refused.stderr
    assert counts(seeded) == before
    (record,) = json.loads(seeded("saga", "history", corr, "-o", "json").stdout)
    assert record["outcome"] == "refused" and "pivot" in record["error"]
    forced = json.loads(seeded("saga", "compensate", corr, "--override", "-o", "json").stdout)
    assert [e["step"] for e in forced["events"]] == ["payment", "order"] and forced["override"]


def test_read_only_profile_is_refused_up_front(seeded, isolated_home):
    (isolated_home / "workbench.toml").write_text(
        textwrap.dedent(f"""
        [profiles.ops]
        adapter = "local"
        path = "{seeded.db}"
        read_only = true
    """)
    )
    corr = failed(seeded)["correlation_id"]
    dry = seeded("--profile", "ops", "saga", "compensate", corr, broker=False)
    assert dry.exit_code == 0, dry.output  # looking is allowed
    refused = seeded("--profile", "ops", "saga", "compensate", corr, "--execute", "--yes", broker=False)
    assert refused.exit_code == 6 and "read-only" in refused.stderr


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            """
     [sagas.pay]
     topics = ["payments"]
     [[sagas.pay.steps]]
     name = "charge"
     kind = "compensatable"
     done_when = 'type == "Charged"'
     """,
            "saga 'pay', step 'charge', field 'compensation': a compensatable step needs a compensation",
        ),
        (
            """
     [sagas.pay]
     topics = ["payments"]
     [[sagas.pay.steps]]
     name = "charge"
     kind = "pivot"
     done_when = 'type = "Charged"'
     """,
            "saga 'pay', step 'charge', field 'done_when'",
        ),
        (
            """
     [sagas.pay]
     topics = ["payments"]
     [[sagas.pay.steps]]
     name = "reserve"
     kind = "compensatable"
     done_when = 'type == "Reserved"'
     compensation = { topic = "stock", type = "Released", payload = { id = "{charge.value.id}" } }
     [[sagas.pay.steps]]
     name = "charge"
     kind = "pivot"
     done_when = 'type == "Charged"'
     """,
            "saga 'pay', step 'reserve', field 'compensation.payload.id': {charge.value.id} refers to no step",
        ),
    ],
)
def test_bad_definitions_are_config_errors_naming_the_place(seeded, isolated_home, toml, expected):
    path = isolated_home / "workbench.toml"
    path.write_text(textwrap.dedent(toml))
    result = seeded("saga", "list")
    assert result.exit_code == 3, result.output
    assert f"{path}: {expected}" in result.stderr.replace("\n", " ")


def test_unknown_saga_and_bad_since_are_usage_errors(seeded):
    unknown = seeded("saga", "list", "--saga", "refunds")
    assert unknown.exit_code == 2 and "known sagas: order" in unknown.stderr
    since = seeded("saga", "list", "--since", "yesterday")
    assert since.exit_code == 2 and "--since 'yesterday' is not a duration" in since.stderr
    recent = seeded("saga", "list", "--since", "3m", "-o", "jsonl")
    assert recent.exit_code == 0, recent.output
    assert 1 <= len(jsonl(recent)) < 200 and "RUNNING" in {i["state"] for i in jsonl(recent)}


def test_the_audit_log_can_live_where_the_profile_file_says(seeded, isolated_home):
    from workbench.sagas.builtin import SAGA_TOML

    (isolated_home / "workbench.toml").write_text('[sagas]\naudit_log = "ops/audit.jsonl"\n' + SAGA_TOML)
    corr = failed(seeded, past_pivot=True)["correlation_id"]
    seeded("saga", "compensate", corr, "--execute", "--yes")
    records = audit.AuditLog(isolated_home / "ops" / "audit.jsonl").records(corr)
    assert [r["outcome"] for r in records] == ["refused"]


def test_a_saga_on_a_missing_topic_names_saga_and_topic(seeded, isolated_home):
    (isolated_home / "workbench.toml").write_text(
        textwrap.dedent("""
        [sagas.ghost]
        topics = ["no-such-topic"]
        [[sagas.ghost.steps]]
        name = "only"
        kind = "pivot"
        done_when = 'type == "X"'
    """)
    )
    result = seeded("saga", "list")
    assert result.exit_code == 5, result.output
    assert "saga 'ghost'" in result.stderr and "'no-such-topic'" in result.stderr
