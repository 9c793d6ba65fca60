"""`lag` on the local event log: --fail-on/--once, watch changes, --serve, `lag explain` with the
profile's dead letters, NOCONSUMER's place in the table, the streamed JSON, the incremental refresh."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tests.cli.conftest import Workbench
from workbench.broker import GroupLag, NotFound, OutgoingEvent, PartitionLag
from workbench.errors import ExitCode
from workbench.lag import Verdict
from workbench_local import LocalAdapter

REPO = Path(__file__).resolve().parents[2]


def seed_stuck(db: Path) -> None:
    """ "orders": 2 partitions x 10 events (key k<n>, a correlation id each); "orders.DLT" holds the
    event "billing" is stuck at on partition 0; "billing" committed 4 and 7, "audit" is caught up."""

    async def go() -> None:
        conn = await LocalAdapter(LocalAdapter.options_from_url(f"local:{db}")).connect()
        try:
            await conn.create_topic("orders", 2)
            await conn.create_topic("orders.DLT", 1)
            await conn.publish(
                "orders",
                [
                    OutgoingEvent(
                        value=json.dumps({"n": n, "correlationId": f"c-{n}"}).encode(),
                        key=b"k%d" % n,
                        partition=n % 2,
                    )
                    for n in range(20)
                ],
            )
            await conn.publish("orders.DLT", [OutgoingEvent(value=b'{"correlationId": "c-8"}', key=b"other")])
            await conn.commit_offsets("billing", {("orders", 0): 4, ("orders", 1): 7})
            await conn.commit_offsets("audit", {("orders", 0): 10, ("orders", 1): 10})
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture
def stuck(tmp_path) -> Workbench:
    seed_stuck(tmp_path / "events.db")
    return Workbench(tmp_path / "events.db")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--watch", "--fail-on", "STALL,SLOW"], "not a verdict: SLOW"),
        (["--fail-on", "STALL"], "--fail-on judges verdicts, which take a window"),
        (["--serve", "localhost"], "--serve 'localhost' is not HOST:PORT"),
        (["--serve", "127.0.0.1:99999"], "is not HOST:PORT"),
    ],
)
def test_bad_alarm_and_serve_options_are_usage_errors(stuck, args, said):
    result = stuck("lag", *args)
    assert result.exit_code == ExitCode.USAGE
    assert said in result.stderr


# --------------------------------------------------------------------------- alarms and changes


def test_once_with_fail_on_exits_11_and_names_the_stalled_group(stuck):
    result = stuck("lag", "--once", "--window", "2", "--interval", "0.1", "--fail-on", "STALL,STOP")
    assert result.exit_code == ExitCode.LAG_ALARM == 11
    assert "alarm: billing STALL: committed offset not moving while lag > 0 (committed " in result.stderr
    assert "alarm: audit" not in result.stderr
    assert "billing" in result.stdout.splitlines()[1]  # the window's table, worst first


def test_once_without_a_matching_verdict_exits_0(stuck):
    result = stuck("lag", "--once", "--window", "2", "--interval", "0.1", "--fail-on", "NOCONSUMER,REWIND")
    assert result.exit_code == 0, result.stderr


def test_watch_jsonl_writes_each_change_once(stuck):
    result = stuck("lag", "--watch", "--iterations", "4", "--window", "2", "--interval", "0.1", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["group"], x["previous"], x["verdict"]) for x in lines] == [
        ("audit", None, "OK"),
        ("billing", None, "UNKNOWN"),
        ("billing", "UNKNOWN", "STALL"),
    ]
    stall = lines[-1]
    assert stall["figures"]["samples"] == 2 and stall["worst_partition"] == {
        "topic": "orders",
        "partition": 0,
        "committed": 4,
        "end": 10,
        "lag": 6,
        "verdict": "STALL",
    }
    assert stall["in_rate"] == 0 and stall["out_rate"] == 0 and stall["seconds_to_drain"] is None
    assert [line for line in result.stderr.splitlines() if line.startswith("refresh ")] == [
        "refresh 1: 2 verdict change(s)",
        "refresh 2: 1 verdict change(s)",
        "refresh 3: 0 verdict change(s)",
        "refresh 4: 0 verdict change(s)",
    ]


# --------------------------------------------------------------------------- explain


def test_explain_uses_the_profiles_dead_letters(stuck, tmp_path):
    config = tmp_path / "workbench.toml"
    config.write_text(
        f'[profiles.local]\nbroker = "local:{stuck.db}"\n[profiles.local.dead_letters]\nbilling = "orders.DLT"\n',
        encoding="utf-8",
    )
    result = stuck.runner.invoke(
        __import__("workbench.cli", fromlist=["app"]).app,
        ["--profile", "local", "lag", "explain", "billing", "--samples", "2", "--interval", "0.1", "-o", "json"],
        env={"WORKBENCH_CONFIG": str(config)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["dead_letters"] == "orders.DLT" and found["verdict"] == "STALL"
    first, second = found["partitions"]
    assert (first["partition"], first["lag"], second["partition"], second["lag"]) == (0, 6, 1, 3)
    assert first["event"]["offset"] == 4 and first["event"]["key"] == "k8"  # partition 0 holds the even n
    check = first["dead_letter_check"]
    assert check == {
        "source": "orders.DLT",
        "scanned": 1,
        "key_found": False,
        "correlation_id": "c-8",
        "correlation_found": True,
        "found": True,
        "error": None,
    }
    assert second["event"]["key"] == "k15" and second["dead_letter_check"]["found"] is False


def test_explain_of_a_caught_up_group_says_so_and_of_an_unknown_one_is_not_found(stuck):
    fine = stuck("lag", "explain", "audit", "--samples", "2", "--interval", "0.1")
    assert fine.exit_code == 0, fine.stderr
    assert "no partition is behind: nothing to explain" in fine.stdout
    missing = stuck("lag", "explain", "nobody", "--samples", "2", "--interval", "0.1")
    assert missing.exit_code == ExitCode.NOT_FOUND and "nobody" in missing.stderr


def test_explain_keeps_hostile_event_bytes_off_the_terminal(tmp_path):
    db = tmp_path / "evil.db"

    async def go() -> None:
        conn = await LocalAdapter(LocalAdapter.options_from_url(f"local:{db}")).connect()
        try:
            await conn.create_topic("t[red]x[/red]", 1)
            await conn.publish(
                "t[red]x[/red]", [OutgoingEvent(value=b"\x1b]52;c;aGk=\x07[bold]x[/]", key=b"\x1b[2J")] * 3
            )
            await conn.commit_offsets("g\u202e", {("t[red]x[/red]", 0): 1})
        finally:
            await conn.close()

    asyncio.run(go())
    result = Workbench(db)("lag", "explain", "g\u202e", "--samples", "2", "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "[bold]x[/]" in result.stdout and "t[red]x[/red]/0" in result.stdout  # text, not markup


# --------------------------------------------------------------------------- --serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_exposes_the_local_groups(stuck):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "workbench", "--broker", f"local:{stuck.db}", "lag", "--interval", "0.2"]
    proc = subprocess.Popen([*argv, "--serve", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            if (("workbench_group_verdict", (("group", "billing"), ("verdict", "STALL")))) in samples:
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert samples[("workbench_group_lag_events", (("group", "billing"),))] == 9
    assert samples[("workbench_group_verdict", (("group", "billing"), ("verdict", "STALL")))] == 3
    assert samples[("workbench_group_verdict", (("group", "audit"), ("verdict", "OK")))] == 0
    p0 = (("group", "billing"), ("partition", "0"), ("topic", "orders"))
    assert samples[("workbench_lag_events", p0)] == 6
    assert samples[("workbench_lag_drain_seconds", p0)] == float("inf")
    assert samples[("workbench_lag_groups", ())] == 2
    assert "serving the lag figures at http://127.0.0.1:" in proc.stderr.read().decode()


# --------------------------------------------------------------------------- ordering, JSON, incremental


def test_noconsumer_leads_the_table_whatever_the_others_lag():
    from workbench.cli import lag_table

    queue = GroupLag("invoices", "Empty", (PartitionLag("invoices", 0, 0, 0, 10),), 0, metadata={"consumers": 0})
    big = GroupLag("analytics", "Stable", (PartitionLag("t", 0, 0, 0, 10_000),), 0, metadata={"consumers": 2})
    shown, _ = lag_table.arrange([big, queue], None, show_all=False)
    assert [s.group.group_id for s in shown] == ["invoices", "analytics"]
    assert shown[0].assessment is not None and shown[0].assessment.verdict is Verdict.NOCONSUMER
    out, err = Console(file=io.StringIO(), width=200), Console(file=io.StringIO())
    lag_table.render([big, queue], out=out, err=err)
    assert "invoices: total lag 10 (invoices 10; NOCONSUMER: messages waiting and no consumer)" in err.file.getvalue()


def test_streamed_json_has_the_keys_of_the_documented_output():
    from workbench.cli import lag_json, output

    shared = PartitionLag("t", 0, 1, 0, 5)
    groups = [
        GroupLag("a", "Stable", (shared, PartitionLag("t", 1, None, 0, 3)), 1000),
        GroupLag("b", "Empty", (), 2000),
        GroupLag("c", "Stable", (shared,), 3000, metadata={"in_rate": 1.0, "out_rate": 3.0, "consumers": 1}),
    ]
    for fmt in ("json", "jsonl"):
        buffer = io.BytesIO()
        lag_json.write(groups, fmt, buffer)
        text = buffer.getvalue().decode()
        found = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        assert found == [output.lag_dict(g) for g in groups]


def test_incremental_refresh_reads_idle_groups_every_nth_time_only():
    from workbench.lag_watch import IncrementalRefresh

    idle = GroupLag("idle", "Empty", (PartitionLag("t", 0, 5, 0, 5),), 0)
    busy = GroupLag("busy", "Stable", (PartitionLag("t", 0, 1, 0, 5),), 0)
    asked: list[object] = []
    gone = {"flag": False}

    async def read(ids):
        asked.append(None if ids is None else list(ids))
        if gone["flag"] and ids is not None:
            raise NotFound("busy is gone")
        return [g for g in (idle, busy) if ids is None or g.group_id in ids]

    refresh = IncrementalRefresh(read, full_every=3)

    async def go() -> list[list[str]]:
        seen = []
        for _ in range(4):
            seen.append([g.group_id for g in await refresh()])
        gone["flag"] = True
        await refresh()  # partial read fails: a full one instead
        return seen

    seen = asyncio.run(go())
    assert seen == [["busy", "idle"]] * 4
    assert asked == [None, ["busy"], ["busy"], None, ["busy"], None]
    assert [g.group_id for g in refresh.fresh] == ["idle", "busy"]
