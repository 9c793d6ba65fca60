"""trace, capture and replay as a user drives them, on local event logs (CliRunner + one subprocess)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Workbench

T0 = 1_790_000_000_000  # a fixed past time (ms): events are placed relative to it


def envelope(value, *, key=None, headers=(), ts=T0, partition=None) -> str:
    doc = {
        "value": value if isinstance(value, str) else json.dumps(value),
        "headers": [list(h) for h in headers],
        "timestamp": ts,
    }
    if key is not None:
        doc["key"] = key
    if partition is not None:
        doc["partition"] = partition
    return json.dumps(doc)


def publish(wb: Workbench, topic: str, *lines: str, partitions: int = 1) -> None:
    created = wb("topics", "create", topic, "--partitions", str(partitions))
    assert created.exit_code == 0, created.stderr
    done = wb("publish", topic, "--file", "-", input="\n".join(lines) + "\n")
    assert done.exit_code == 0, done.stderr


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """No profile file from the developer's machine: an empty one of the test's own."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "workbench.toml"
    config.write_text("")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    return config


@pytest.fixture
def shop(wb: Workbench, isolated) -> Workbench:
    publish(
        wb,
        "orders",
        envelope(
            {"orderId": 1},
            key="o1",
            headers=[("correlation_id", "c-1"), ("ce_type", "OrderPlaced"), ("ce_source", "/orders")],
            ts=T0,
            partition=0,
        ),
        envelope({"orderId": 2}, key="o2", headers=[("correlation_id", "c-2")], ts=T0 + 5, partition=1),
        partitions=2,
    )
    publish(
        wb,
        "payments",
        envelope(
            {"correlationId": "c-1", "status": "failed"},
            key="o1",
            headers=[("ce_type", "PaymentFailed"), ("ce_source", "/payments"), ("causation_id", "evt-1")],
            ts=T0 + 1200,
        ),
        envelope({"correlationId": "c-2"}, key="o2", ts=T0 + 1300),
    )
    publish(wb, "shipping", envelope("plain text, no id", ts=T0 + 2000))
    return wb


# --------------------------------------------------------------------------- trace


def test_trace_lists_the_hops_in_time_order_with_gaps(shop: Workbench):
    result = shop("trace", "c-1", "--since", "beginning")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "/0" in line or "/1" in line]
    assert "orders" in lines[0] and "OrderPlaced" in lines[0] and "/orders" in lines[0]
    assert "payments" in lines[1] and "+1.2 s" in lines[1] and "PaymentFailed" in lines[1]
    assert "c-2" not in result.stdout and len(lines) == 2


def test_trace_json_has_envelopes_gaps_and_causation(shop: Workbench):
    data = json.loads(shop("trace", "c-1", "--since", "beginning", "-o", "json").stdout)
    assert data["correlation_id"] == "c-1" and data["topics"] == 3 and data["scanned"] == 5
    assert [(h["topic"], h["gap_ms"]) for h in data["hops"]] == [("orders", None), ("payments", 1200)]
    assert data["hops"][1]["causation_id"] == "evt-1" and data["hops"][0]["key"] == "o1"
    jsonl = shop("trace", "c-1", "--since", "beginning", "-o", "jsonl").stdout.splitlines()
    assert [json.loads(line)["offset"] for line in jsonl] == [0, 0]


def test_trace_since_bounds_the_scan_and_topics_narrow_it(shop: Workbench):
    # Events are in the past (T0): a one-hour window finds nothing, and says what it scanned.
    recent = shop("trace", "c-1", "--since", "1h")
    assert recent.exit_code == 5 and recent.stdout == ""  # not found, as everywhere
    assert "no event carries correlation id 'c-1' (0 event(s) scanned in 3 topic(s)" in recent.stderr
    only = json.loads(shop("trace", "c-1", "--since", "beginning", "-t", "payments", "-o", "json").stdout)
    assert [h["topic"] for h in only["hops"]] == ["payments"] and only["topics"] == 1


def test_trace_bad_input_is_named(shop: Workbench):
    bad_since = shop("trace", "c-1", "--since", "yesterday-ish")
    assert bad_since.exit_code == 2 and "--since 'yesterday-ish'" in bad_since.stderr
    missing = shop("trace", "c-1", "--since", "beginning", "-t", "nope")
    assert missing.exit_code == 5 and "nope" in missing.stderr
    unknown_profile = shop("trace", "c-1", "--across", "elsewhere")
    assert unknown_profile.exit_code == 3 and "elsewhere" in unknown_profile.stderr


def test_trace_follows_the_profile_files_correlation_rules(shop: Workbench, isolated: Path):
    isolated.write_text('[correlation]\nrules = ["json:$.orderId"]\n')
    data = json.loads(shop("trace", "2", "--since", "beginning", "-o", "json").stdout)
    assert [h["topic"] for h in data["hops"]] == ["orders"]
    isolated.write_text('[correlation]\nrules = ["json:orderId"]\n')
    bad = shop("trace", "2", "--since", "beginning")
    assert bad.exit_code == 3 and "[correlation] rules[0] = 'json:orderId'" in bad.stderr


def test_trace_across_profiles(tmp_path: Path, isolated: Path):
    shop_db, audit_db = tmp_path / "shop.db", tmp_path / "audit.db"
    isolated.write_text(
        f'default_profile = "shop"\n[profiles.shop]\nadapter = "local"\npath = "{shop_db.name}"\n'
        f'[profiles.audit]\nadapter = "local"\npath = "{audit_db.name}"\n'
    )
    publish(Workbench(shop_db), "orders", envelope({"correlationId": "x-1"}, ts=T0))
    publish(Workbench(audit_db), "orders", envelope({"correlationId": "x-1"}, ts=T0 + 50))
    runner = Workbench(shop_db)
    data = json.loads(
        runner("trace", "x-1", "--since", "beginning", "--across", "audit", "-o", "json", broker=False).stdout
    )
    assert [(h["profile"], h["gap_ms"]) for h in data["hops"]] == [("shop", None), ("audit", 50)]
    table = runner("trace", "x-1", "--since", "beginning", "--across", "audit", "-t", "audit:orders", broker=False)
    assert table.exit_code == 0 and "PROFILE" in table.stdout and "audit" in table.stdout
    assert "shop " not in table.stdout  # only the audit profile's topic was asked for


def test_trace_to_a_file_keeps_the_hops_for_offline_use(shop: Workbench, tmp_path: Path):
    kept = tmp_path / "c1.db"
    result = shop("trace", "c-1", "--since", "beginning", "--to", str(kept))
    assert result.exit_code == 0 and "2 event(s) kept" in result.stderr
    offline = Workbench(kept)
    again = json.loads(offline("trace", "c-1", "--since", "beginning", "-o", "json").stdout)
    assert [(h["topic"], h["partition"], h["offset"]) for h in again["hops"]] == [("orders", 0, 0), ("payments", 0, 0)]
    refused = shop("trace", "c-1", "--since", "beginning", "--to", str(kept))
    assert refused.exit_code == 2 and "exists" in refused.stderr


# --------------------------------------------------------------------------- capture


def test_capture_keeps_exact_bytes_headers_positions_and_timestamps(shop: Workbench, tmp_path: Path):
    binary = json.dumps(
        {
            "value": "/wA=",
            "value_encoding": "base64",
            "key": "k",
            "headers": [["bin", "AAH/", "base64"], ["bin", "dup"]],
            "timestamp": T0 + 9,
            "partition": 1,
        }
    )
    assert shop("publish", "orders", "--file", "-", input=binary + "\n").exit_code == 0
    original = shop("tail", "orders", "-o", "jsonl").stdout.splitlines()
    cap = tmp_path / "cap.db"
    result = shop("capture", "orders", "payments", "--to", str(cap), "-o", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["events"] == {"orders": 3, "payments": 2} and summary["file"] == str(cap)
    offline = Workbench(cap)
    assert offline("tail", "orders", "-o", "jsonl").stdout.splitlines() == original
    assert '"value":"/wA=","headers":[["bin","AAH/","base64"],["bin","dup"]]' in original[-1]
    assert not list(tmp_path.glob(".cap.db*"))  # no temporary file left beside it


def test_capture_from_a_position_keeps_original_offsets_and_ends(shop: Workbench, tmp_path: Path):
    more = [envelope({"n": i}, ts=T0 + 10_000 + i) for i in range(5)]
    shop("publish", "shipping", "--file", "-", input="\n".join(more) + "\n")
    cap = tmp_path / "late.db"
    assert shop("capture", "shipping", "--from", "-2", "--to", str(cap)).exit_code == 0
    described = json.loads(Workbench(cap)("describe", "shipping", "-o", "json").stdout)
    part = described["partitions"][0]
    assert (part["start"], part["end"], part["count"]) == (4, 6, 2)
    since = tmp_path / "since.db"
    assert shop("capture", "shipping", "--since", "1h", "--to", str(since)).exit_code == 0
    empty = json.loads(Workbench(since)("describe", "shipping", "-o", "json").stdout)["partitions"][0]
    assert (empty["start"], empty["end"]) == (6, 6)  # nothing that recent, offsets still the broker's


def test_capture_lag_snapshot_gives_the_same_lag_offline(shop: Workbench, tmp_path: Path):
    import asyncio

    from workbench import service
    from workbench.triage.capture import local_target

    async def commit() -> None:
        async with service.connect(local_target(shop.db)) as conn:
            await conn.commit_offsets("billing", {("payments", 0): 1})
            await conn.commit_offsets("audit", {("shipping", 0): 0})  # a topic that is not captured

    asyncio.run(commit())
    cap = tmp_path / "lag.db"
    assert shop("capture", "payments", "--to", str(cap)).exit_code == 0
    after = json.loads(Workbench(cap)("lag", "-o", "json").stdout)
    assert [(g["group"], g["total_lag"], g["topic_lag"]) for g in after] == [("billing", 1, {"payments": 1})]


def test_capture_refuses_to_overwrite_and_bad_input_leaves_no_file(shop: Workbench, tmp_path: Path):
    cap = tmp_path / "cap.db"
    cap.write_bytes(b"precious")
    refused = shop("capture", "orders", "--to", str(cap))
    assert refused.exit_code == 2 and "--force" in refused.stderr and cap.read_bytes() == b"precious"
    missing = shop("capture", "orders", "nope", "--to", str(tmp_path / "half.db"))
    assert missing.exit_code == 5 and "nope" in missing.stderr
    assert not (tmp_path / "half.db").exists() and not list(tmp_path.glob(".half.db*"))
    both = shop("capture", "orders", "--to", str(tmp_path / "x.db"), "--since", "1h", "--from", "beginning")
    assert both.exit_code == 2 and "exclusive" in both.stderr
    forced = shop("capture", "orders", "--to", str(cap), "--force")
    assert forced.exit_code == 0 and sqlite3.connect(cap).execute("PRAGMA application_id").fetchone()[0] != 0


# --------------------------------------------------------------------------- replay

DLT_HEADERS = [
    ("kafka_dlt-exception-message", "boom"),
    ("__connect.errors.topic", "orders"),
    ("x-death", "[]"),
    ("X-First-Death-Reason", "rejected"),
    ("tenant", "acme"),
]


@pytest.fixture
def dlt(wb: Workbench, isolated) -> Workbench:
    publish(
        wb,
        "orders.DLT",
        envelope({"orderId": 1, "status": "failed"}, key="o1", headers=DLT_HEADERS),
        envelope({"orderId": 2, "status": "ok"}, key="o2", headers=DLT_HEADERS[:1]),
    )
    assert wb("topics", "create", "orders").exit_code == 0
    return wb


def test_replay_is_a_dry_run_by_default(dlt: Workbench):
    result = dlt("replay", "orders.DLT", "--to", "orders", "-o", "jsonl")
    assert result.exit_code == 0 and "dry run: 2 event(s)" in result.stderr
    first = json.loads(result.stdout.splitlines()[0])
    names = [h[0] for h in first["headers"]]
    assert names == ["tenant", "workbench-replayed-from", "workbench-replayed-at"]
    assert first["headers"][1][1] == "orders.DLT/0/0" and first["key"] == "o1"
    assert set(first["stripped"]) == {
        "kafka_dlt-exception-message",
        "__connect.errors.topic",
        "x-death",
        "X-First-Death-Reason",
    }
    assert json.loads(dlt("describe", "orders", "-o", "json").stdout)["count"] == 0


def test_replay_execute_publishes_keys_values_and_clean_headers(dlt: Workbench):
    result = dlt("replay", "orders.DLT", "--to", "orders", "--filter", 'value.status == "failed"', "--execute")
    assert result.exit_code == 0, result.stderr
    assert "1 confirmed, 0 failed" in result.stdout
    [line] = dlt("tail", "orders", "-o", "jsonl").stdout.splitlines()
    event = json.loads(line)
    assert event["key"] == "o1" and json.loads(event["value"]) == {"orderId": 1, "status": "failed"}
    assert [h[0] for h in event["headers"]] == ["tenant", "workbench-replayed-from", "workbench-replayed-at"]


def test_replay_from_a_capture_file(dlt: Workbench, tmp_path: Path):
    cap = tmp_path / "dlt.db"
    assert dlt("capture", "orders.DLT", "--to", str(cap)).exit_code == 0
    result = dlt("replay", str(cap), "--to", "orders", "--max", "1", "--execute")
    assert result.exit_code == 0 and "1 confirmed" in result.stdout
    [line] = dlt("tail", "orders", "-o", "jsonl").stdout.splitlines()
    assert ["workbench-replayed-from", "orders.DLT/0/0"] in json.loads(line)["headers"]


def test_replay_refusals_and_errors(dlt: Workbench, isolated: Path, tmp_path: Path):
    bad = dlt("replay", "orders.DLT", "--to", "orders", "--filter", "value.x ==")
    assert bad.exit_code == 2 and "^" in bad.stderr and "--filter" in bad.stderr
    missing = dlt("replay", str(tmp_path / "nowhere.db"), "--to", "orders")
    assert missing.exit_code == 2 and "no capture file" in missing.stderr
    dotted = dlt("replay", "orders.db", "--to", "orders")  # no such file: a topic name like any other
    assert dotted.exit_code == 5 and "topic 'orders.db' does not exist" in dotted.stderr
    gone = dlt("replay", "orders.DLT", "--to", "no-such-topic", "--execute")
    assert gone.exit_code == 5 and "'no-such-topic' does not exist" in gone.stderr  # not found is 5, as everywhere
    isolated.write_text(f'[profiles.ro]\nadapter = "local"\npath = "{dlt.db}"\nread_only = true\n')
    refused = dlt("-p", "ro", "replay", "orders.DLT", "--to", "orders", "--execute", broker=False)
    assert refused.exit_code == 6 and "read-only" in refused.stderr
    assert json.loads(dlt("describe", "orders", "-o", "json").stdout)["count"] == 0


def test_capture_then_trace_offline_in_a_real_process(shop: Workbench, tmp_path: Path):
    cap = tmp_path / "proc.db"
    made = shop.subprocess("capture", "orders", "payments", "--to", str(cap))
    assert made.returncode == 0, made.stderr
    offline = Workbench(cap).subprocess("trace", "c-1", "--since", "beginning", "-o", "jsonl")
    assert offline.returncode == 0, offline.stderr
    assert [json.loads(line)["topic"] for line in offline.stdout.splitlines()] == ["orders", "payments"]
