"""The scripted CLI as a user drives it: exit codes, stdout = data, stderr = diagnostics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.errors import ExitCode


def test_topics_create_list_describe(wb):
    assert wb("topics", "create", "orders", "--partitions", "3").exit_code == 0
    listed = wb("topics")
    assert listed.exit_code == 0 and "orders" in listed.stdout
    data = json.loads(wb("topics", "-o", "json").stdout)
    assert [(t["name"], len(t["partitions"]), t["count"]) for t in data] == [("orders", 3, 0)]
    described = json.loads(wb("describe", "orders", "-o", "json").stdout)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]


def test_global_output_option_applies_to_verbs(wb):
    wb("topics", "create", "t")
    assert json.loads(wb("--output", "json", "topics").stdout)[0]["name"] == "t"


def test_unknown_topic_is_not_found(wb):
    wb("topics", "create", "other")  # creates the log
    result = wb("describe", "nope")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "nope" in result.stderr and result.stdout == ""


def test_publish_value_then_tail_jsonl(wb):
    wb("topics", "create", "orders")
    result = wb("publish", "orders", "--value", '{"orderId": 42}', "--key", "42", "-H", "ce_type=OrderPlaced")
    assert result.exit_code == 0, result.stderr
    assert "1 confirmed, 0 failed" in result.stdout and "offset 0" in result.stdout
    line = json.loads(wb("tail", "orders", "-o", "jsonl").stdout)
    assert line["value"] == '{"orderId": 42}' and line["key"] == "42"
    assert line["headers"] == [["ce_type", "OrderPlaced"]]
    assert (line["topic"], line["partition"], line["offset"]) == ("orders", 0, 0)


def test_a_header_that_is_not_name_value_is_refused_before_anything_is_sent(wb):
    wb("topics", "create", "orders")
    bad = wb("publish", "orders", "--value", "x", "-H", "ce_type=A", "-H", "nope")
    assert bad.exit_code == 2 and "--header: 'nope' is not NAME=VALUE" in bad.stderr
    assert wb("tail", "orders", "-o", "jsonl").stdout == ""


def test_publish_count_and_tail_positions(wb):
    wb("topics", "create", "t")
    assert wb("publish", "t", "--value", "x", "--count", "10").exit_code == 0
    assert len(wb("tail", "t", "-o", "jsonl").stdout.splitlines()) == 10
    assert [json.loads(x)["offset"] for x in wb("tail", "t", "--from", "-3", "-o", "jsonl").stdout.splitlines()] == [
        7,
        8,
        9,
    ]
    assert [json.loads(x)["offset"] for x in wb("tail", "t", "--from", "8", "-o", "jsonl").stdout.splitlines()] == [
        8,
        9,
    ]
    assert len(wb("tail", "t", "--max", "4", "-o", "jsonl").stdout.splitlines()) == 4
    assert wb("tail", "t", "--from", "end", "-o", "jsonl").stdout == ""


def test_tail_filter_and_bad_filter(wb, tmp_path):
    wb("topics", "create", "t")
    lines = [json.dumps({"value": {"status": s, "n": i}}) for i, s in enumerate(["ok", "failed", "ok", "failed"])]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    assert wb("publish", "t", "--file", str(tmp_path / "in.jsonl")).exit_code == 0
    out = wb("tail", "t", "--filter", 'value.status == "failed"', "-o", "jsonl").stdout.splitlines()
    assert [json.loads(json.loads(x)["value"])["n"] for x in out] == [1, 3]
    bad = wb("tail", "t", "--filter", "value.status ==")
    assert bad.exit_code == ExitCode.USAGE and "--filter" in bad.stderr


def test_bad_position_is_a_usage_error(wb):
    wb("topics", "create", "t")
    result = wb("tail", "t", "--from", "yesterday-ish")
    assert result.exit_code == ExitCode.USAGE
    assert "not a position" in result.stderr


def test_malformed_jsonl_names_the_line_and_publishes_nothing(wb, tmp_path):
    wb("topics", "create", "t")
    path = tmp_path / "events.jsonl"
    path.write_text('{"value": "a"}\n{"value": "b"}\n{"value": oops}\n{"value": "d"}\n')
    result = wb("publish", "t", "--file", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:3" in result.stderr
    assert json.loads(wb("topics", "-o", "json").stdout)[0]["count"] == 0  # nothing half-done


def test_unreadable_file(wb, tmp_path):
    wb("topics", "create", "t")
    result = wb("publish", "t", "--file", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == ExitCode.BAD_INPUT and "cannot read" in result.stderr


def test_publish_to_unknown_topic_is_not_found(wb):
    wb("topics", "create", "other")
    result = wb("publish", "nope", "--value", "x")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""  # checked before anything is sent
    assert "nope" in result.stderr


def test_a_partition_the_topic_lacks_names_the_line_and_publishes_nothing(wb, tmp_path):
    wb("topics", "create", "t", "--partitions", "2")
    path = tmp_path / "in.jsonl"
    path.write_text('{"value": "a", "partition": 0}\n{"value": "b", "partition": 7}\n{"value": "c", "partition": 1}\n')
    result = wb("publish", "t", "--file", str(path), "-o", "json")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:2: field 'partition'" in result.stderr and result.stdout == ""
    assert json.loads(wb("describe", "t", "-o", "json").stdout)["count"] == 0


def test_tail_jsonl_pipes_back_into_publish_exactly(wb, tmp_path):
    wb("topics", "create", "src")
    wb("topics", "create", "dst")
    lines = [
        json.dumps({"value": "plain \x1b[31m text", "key": "k1", "headers": [["h", "v"], ["h", "w"]]}),
        json.dumps(
            {
                "value": "/w==",
                "value_encoding": "base64",
                "key": "AA==",
                "key_encoding": "base64",
                "headers": [["bin", "//8=", "base64"]],
            }
        ),
        json.dumps({"value": None, "key": "tombstone"}),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    refused = wb("publish", "src", "--file", str(tmp_path / "in.jsonl"))
    assert refused.exit_code == ExitCode.BAD_INPUT and "in.jsonl:3: field 'value' is null" in refused.stderr
    assert wb("publish", "src", "--file", str(tmp_path / "in.jsonl"), "--tombstones").exit_code == 0
    copied = wb("tail", "src", "-o", "jsonl").stdout
    assert wb("publish", "dst", "--file", "-", "--tombstones", input=copied).exit_code == 0

    def strip(text):
        return [
            {k: v for k, v in json.loads(x).items() if k not in ("topic", "offset", "timestamp")}
            for x in text.splitlines()
        ]

    assert strip(wb("tail", "dst", "-o", "jsonl").stdout) == strip(copied)


def test_read_only_profile_refuses_publish(wb, isolated_home):
    (isolated_home / "workbench.toml").write_text(f'[profiles.prod]\nbroker = "local:{wb.db}"\nread_only = true\n')
    result = wb("--profile", "prod", "publish", "t", "--value", "x", broker=False)
    assert result.exit_code == ExitCode.DENIED and "read-only" in result.stderr
    result = wb("--profile", "prod", "topics", "create", "t", broker=False)
    assert result.exit_code == ExitCode.DENIED


def test_unknown_profile(wb):
    result = wb("--profile", "nope", "topics", broker=False)
    assert result.exit_code == ExitCode.CONFIG and "unknown profile 'nope'" in result.stderr


def test_profiles_mask_secrets(wb, isolated_home):
    (isolated_home / "workbench.toml").write_text(
        'default_profile = "a"\n[profiles.a]\nbroker = "amqps://ops:hunter2@rabbit:5671/orders"\nread_only = true\n'
    )
    result = wb("profiles", "-o", "json", broker=False)
    assert "hunter2" not in result.stdout + result.stderr
    assert json.loads(result.stdout)[0]["broker"] == "amqps://ops:***@rabbit:5671/orders"


def test_adapters_lists_without_importing():
    code = (
        "import sys; from typer.testing import CliRunner; from workbench.cli import app;"
        "r = CliRunner().invoke(app, ['adapters', '-o', 'json']);"
        "assert r.exit_code == 0, r.output; print(r.stdout);"
        "assert not any(m.startswith(('adapters.', 'confluent_kafka', 'aio_pika')) for m in sys.modules), sorted(sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert {"local", "kafka"} <= {a["name"] for a in json.loads(out.stdout)}


def test_scripted_cli_never_imports_textual_or_unused_clients(wb):
    wb("topics", "create", "t")
    code = (
        "import sys, runpy; sys.argv = ['workbench', '--broker', sys.argv[1], 'topics'];\n"
        "try:\n    runpy.run_module('workbench', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('textual', 'confluent_kafka', 'aio_pika') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code, f"local:{wb.db}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:5] == ["TOPIC", "KIND", "PARTITIONS", "EVENTS", "t"]


def test_unreachable_local_file_is_a_connection_error(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["--broker", f"local:{tmp_path}/no/such/dir/x.db", "topics", "create", "t"])
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "no/such/dir" in result.stderr


def test_help_for_every_verb(wb):
    for verb in ("topics", "describe", "tail", "publish", "lag", "groups", "demo", "profiles", "adapters"):
        result = wb(verb, "--help", broker=False)
        assert result.exit_code == 0 and "Example" in result.stdout, verb


def test_lag_figures_and_watch_verdicts(wb):
    assert wb("demo").exit_code == 0
    figures = {g["group"]: g for g in json.loads(wb("lag", "-o", "json").stdout)}
    assert figures["billing-service"]["total_lag"] == 0 and figures["shipping-service"]["total_lag"] > 0
    analytics = figures["analytics"]  # rolled up per topic, adding up to the group's total
    assert set(analytics["topic_lag"]) == {"orders", "payments", "inventory", "shipping"}
    assert sum(analytics["topic_lag"].values()) == analytics["total_lag"]
    assert analytics["topic_lag"]["orders"] == sum(p["lag"] for p in analytics["partitions"] if p["topic"] == "orders")
    assert "verdict" not in figures["billing-service"]  # one snapshot has no trend

    watched = wb("lag", "--watch", "--interval", "0.1", "--iterations", "2", "-o", "jsonl")
    assert watched.exit_code == 0, watched.stderr
    rows = [json.loads(line) for line in watched.stdout.splitlines()]  # verdict changes only
    assert [r["group"] for r in rows[: len(figures)]] == sorted(figures)  # the first refresh: every group
    assert all(r["previous"] is None for r in rows[: len(figures)])
    assert len(rows) < 2 * len(figures)  # the second: only the groups whose verdict changed
    last = {r["group"]: r for r in rows}
    assert last["billing-service"]["verdict"] == "OK"
    # just seeded: the local adapter reports the group Stable (alive), its offset does not move
    assert last["shipping-service"]["verdict"] == "STALL"
    assert "not moving" in last["shipping-service"]["rule"]


def test_lag_unknown_group_is_not_found(wb):
    wb("demo")
    assert wb("lag", "--group", "nope").exit_code == ExitCode.NOT_FOUND


def test_a_read_only_connection_refuses_every_change_whoever_asks(wb):
    import asyncio

    from workbench import config, service
    from workbench.broker import OutgoingEvent
    from workbench.errors import ReadOnlyError

    assert wb("topics", "create", "t").exit_code == 0
    profile = config.Profile(name="prod", adapter="local", options={"path": str(wb.db)}, read_only=True)

    async def try_everything() -> None:
        async with service.connect(config.resolve(profile)) as conn:
            assert [t.name for t in await conn.list_topics()] == ["t"]  # reads work
            changes = [
                lambda: conn.publish("t", [OutgoingEvent(b"x")]),
                lambda: conn.create_topic("u"),
                lambda: conn.delete_topic("t"),
                lambda: conn.commit_offsets("g", {("t", 0): 0}),
            ]
            for change in changes:
                with pytest.raises(ReadOnlyError, match="read-only"):
                    await change()

    asyncio.run(try_everything())
    assert [(t["name"], t["count"]) for t in json.loads(wb("topics", "-o", "json").stdout)] == [("t", 0)]
