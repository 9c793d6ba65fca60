"""The CLI says what is true (issue 19): a --since window that cuts a saga's start, a filter that can
never match because of a type mismatch, one hint for a bad JSON line."""

from __future__ import annotations

import json
import time

from workbench.errors import ExitCode


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- item 5: saga windows


def saga_event(topic: str, type_: str, corr: str, minutes_ago: float) -> str:
    ts = int(time.time() * 1000 - minutes_ago * 60_000)
    return json.dumps(
        {
            "value": {"orderId": corr},
            "key": corr,
            "timestamp": ts,
            "headers": [["ce_type", type_], ["correlation_id", corr]],
        }
    )


def test_saga_list_since_reads_earlier_events_of_the_instances_it_cuts(wb, tmp_path):
    for topic in ("orders", "payments", "inventory", "shipping"):
        wb("topics", "create", topic)
    # in time order, as a broker appends them: "early" began 40 minutes ago, "ancient" 3 hours ago
    orders = [
        saga_event("orders", "OrderPlaced", "ancient", 180),
        saga_event("orders", "OrderPlaced", "early", 40),
        saga_event("orders", "OrderCancelled", "early", 10),
        saga_event("orders", "OrderCancelled", "ancient", 10),
    ]
    payments = [
        saga_event("payments", "PaymentFailed", "ancient", 179),
        saga_event("payments", "PaymentFailed", "early", 39),
    ]
    for topic, rows in (("orders", orders), ("payments", payments)):
        (tmp_path / f"{topic}.jsonl").write_text("\n".join(rows) + "\n")
        assert wb("publish", topic, "--file", str(tmp_path / f"{topic}.jsonl")).exit_code == 0
    result = wb("saga", "list", "--since", "30m", "-o", "jsonl")
    assert result.exit_code == 0, result.output
    found = {i["correlation_id"]: i for i in lines(result)}
    early = found["early"]
    assert early["state"] == "COMPENSATED" and not early["partial"]
    assert [s["status"] for s in early["steps"][:2]] == ["compensated", "failed"]  # not "pending"
    assert early["started"] == early["first_seen"] < early["last"]  # its OrderPlaced, 40 minutes ago
    assert early["steps"][0]["done"]["type"] == "OrderPlaced"
    ancient = found["ancient"]
    assert ancient["state"] == "PARTIAL" and ancient["partial"] and ancient["started"] is None
    assert ancient["observed_state"] == "COMPENSATED"
    table = wb("saga", "list", "--since", "30m")
    assert "PARTIAL" in table.stdout and "payment?" in table.stdout and "before " in table.stdout
    assert "partial 1" in table.stderr
    only = wb("saga", "list", "--since", "30m", "--state", "compensated", "-o", "jsonl")
    assert [i["correlation_id"] for i in lines(only)] == ["early"]


# --------------------------------------------------------------------------- item 8: warnings and hints


def test_a_filter_type_mismatch_is_said_once(wb, tmp_path):
    wb("topics", "create", "t")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"value": {"amount": n}}) + "\n" for n in range(5)))
    wb("publish", "t", "--file", str(tmp_path / "in.jsonl"))
    result = wb("tail", "t", "--filter", 'value.amount > "x"', "-o", "jsonl")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.count("warning: --filter:") == 1
    assert "compares a number with a string" in result.stderr
    missing = wb("tail", "t", "--filter", "value.nope > 3", "-o", "jsonl")  # a missing field is no match, silently
    assert "warning" not in missing.stderr and missing.stderr.startswith("scanned ")


def test_a_bad_json_line_gets_one_hint_and_its_file_line(wb, tmp_path):
    wb("topics", "create", "t")
    source = tmp_path / "in.jsonl"
    source.write_text('{"value": 1}\n\n  {"value": 1,}\n')
    result = wb("publish", "t", "--file", str(source))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{source}:3: not valid JSON" in result.stderr and "(column 15)" in result.stderr
    assert result.stderr.count("--raw") == 1
