"""dlq summary, dlq history and replay --to-origin through the CLI, on the demo's dead letters (local adapter)."""

from __future__ import annotations

import json

import pytest

from workbench.demo import dead_letters
from workbench.errors import ExitCode


@pytest.fixture
def demo(wb, isolated_home):
    (isolated_home / "workbench.toml").write_text('[sagas]\naudit_log = "audit.jsonl"\n')
    seeded = wb("demo", "--orders", "20")
    assert seeded.exit_code == 0, seeded.output
    return wb


def test_demo_says_where_its_dead_letters_are(demo):
    assert "dead letters: orders.DLT 6, warehouse-sink.dlq 4, shipping.dlq 5" in demo("demo").stderr


def test_summary_groups_each_convention_by_cause(demo):
    spring = json.loads(demo("dlq", "summary", dead_letters.SPRING_DLT, "-o", "json").stdout)
    assert spring["dead_letters"] == 6 and spring["without_dead_letter_headers"] == 0
    assert [(c["convention"], c["cause"].rsplit(".", 1)[-1], c["origin"], c["count"]) for c in spring["causes"]] == [
        ("spring", "DeserializationException", "orders", 4),
        ("spring", "ListenerExecutionFailedException", "orders", 2),
    ]
    connect = json.loads(demo("dlq", "summary", dead_letters.CONNECT_DLQ, "-o", "json").stdout)
    assert [(c["convention"], c["origin"], c["count"]) for c in connect["causes"]] == [
        ("connect", "payments", 3),
        ("connect", "payments", 1),
    ]
    rabbit = demo("dlq", "summary", dead_letters.RABBIT_DLQ, "-o", "jsonl").stdout.splitlines()
    causes = [json.loads(line) for line in rabbit]
    assert [(c["cause"], c["origin"], c["count"]) for c in causes] == [
        ("rejected", "shipping-labels", 3),
        ("expired", "shipping-labels", 2),
    ]
    assert all(c["first"] <= c["last"] for c in causes)
    table = demo("dlq", "summary", dead_letters.SPRING_DLT)
    assert table.exit_code == 0
    assert "DeserializationException" in table.stdout and f"{dead_letters.SPRING_DLT}/0/0" in table.stdout
    assert f"workbench replay {dead_letters.SPRING_DLT} --to-origin" in table.stderr


def test_summary_window_and_a_topic_without_dead_letters(demo):
    first_two = json.loads(demo("dlq", "summary", dead_letters.SPRING_DLT, "--until", "1", "-o", "json").stdout)
    assert first_two["dead_letters"] == 2
    later = json.loads(demo("dlq", "summary", dead_letters.SPRING_DLT, "--from", "4", "-o", "json").stdout)
    assert later["dead_letters"] == 2
    plain = demo("dlq", "summary", "payments")
    assert plain.exit_code == 0 and "no dead letters in payments" in plain.stderr
    assert "without dead-letter headers" in plain.stderr
    assert demo("dlq", "summary", "nope").exit_code == ExitCode.NOT_FOUND
    assert demo("dlq", "summary", "payments", "--from", "yesterday-ish").exit_code == ExitCode.USAGE
    assert demo("dlq", "summary", "payments", "--peek", "5").exit_code == ExitCode.UNSUPPORTED


def test_redrive_is_a_dry_run_then_sends_once_and_is_audited(demo):
    before = json.loads(demo("describe", "shipping", "-o", "json").stdout)["count"]
    dry = demo("replay", dead_letters.RABBIT_DLQ, "--to-origin")
    assert dry.exit_code == 0
    assert "shipping (routing key label.create)" in dry.stdout and "dry run: 5" in dry.stderr
    assert json.loads(demo("describe", "shipping", "-o", "json").stdout)["count"] == before
    done = demo("replay", dead_letters.RABBIT_DLQ, "--to-origin", "--execute", "--reason", "carrier back", "-o", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["published"] == 5
    sent = [json.loads(line) for line in demo("tail", "shipping", "--from", "-5", "-o", "jsonl").stdout.splitlines()]
    redriven = [e for e in sent if any(h[0] == "workbench-redriven-from" for h in e["headers"])]
    assert len(redriven) == 5 and {e["key"] for e in redriven} == {"label.create"}
    assert not any(h[0].startswith("x-") for e in redriven for h in e["headers"])
    again = json.loads(demo("replay", dead_letters.RABBIT_DLQ, "--to-origin", "--execute", "-o", "json").stdout)
    assert (again["published"], again["already_redriven"]) == (0, 5)
    history = demo("dlq", "history")
    assert history.exit_code == 0 and "carrier back" in history.stdout and "2 redrive(s)" in history.stderr
    assert json.loads(demo("saga", "history", "-o", "json").stdout) == []


def test_replay_needs_one_destination_and_a_writable_profile(demo, isolated_home):
    assert demo("replay", dead_letters.SPRING_DLT).exit_code == ExitCode.USAGE
    assert demo("replay", dead_letters.SPRING_DLT, "--to", "x", "--to-origin").exit_code == ExitCode.USAGE
    assert demo("replay", dead_letters.SPRING_DLT, "--to", "x", "--rate", "5").exit_code == ExitCode.USAGE
    (isolated_home / "workbench.toml").write_text(
        f'[sagas]\naudit_log = "audit.jsonl"\n[profiles.ro]\nbroker = "local:{demo.db}"\nread_only = true\n'
    )
    refused = demo("-p", "ro", "replay", dead_letters.SPRING_DLT, "--to-origin", "--execute", broker=False)
    assert refused.exit_code == ExitCode.DENIED
    assert not (isolated_home / "audit.jsonl").exists()


def test_redrive_through_a_real_subprocess(demo):
    done = demo.subprocess("replay", dead_letters.CONNECT_DLQ, "--to-origin", "--execute", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"] == 4
