"""`workbench lag` on a big cluster: what needs attention first, healthy groups folded, every group in
machine output, a table as quick as the JSON, and progress on a terminal (issue 19).

The data: a local event log with many groups committed on 24 partitions (``lag_groups.seed``), a few
of them lagging and named in the middle of the name order.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests.cli.conftest import Workbench
from tests.cli.lag_groups import group_name, lagging_names, seed
from workbench.broker import GroupLag, PartitionLag
from workbench.lag import LagTracker, Verdict

GROUPS, LAGGING, PARTITIONS = 300, 5, 24


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Workbench:
    db = tmp_path_factory.mktemp("lag-scale") / "events.db"
    seed(db, groups=GROUPS, partitions=PARTITIONS, lagging=LAGGING)
    return Workbench(db)


def table_groups(stdout: str) -> list[str]:
    """The groups of a table, in the order their rows come (each once)."""
    rows = stdout.splitlines()[1:]
    return list(dict.fromkeys(row.split()[0] for row in rows))


# --------------------------------------------------------------------------- what needs attention first


def test_table_leads_with_the_lagging_groups_and_folds_the_healthy_ones(cluster):
    result = cluster("lag")
    assert result.exit_code == 0, result.stderr
    worst_first = list(reversed(lagging_names(GROUPS, LAGGING)))  # the later, the further behind
    assert table_groups(result.stdout) == worst_first
    assert len(result.stdout.splitlines()) == 1 + LAGGING * PARTITIONS
    notes = result.stderr.splitlines()
    assert [line.split(":")[0] for line in notes[:-1]] == worst_first
    assert notes[-1] == f"{GROUPS - LAGGING} groups OK (lag 0): --all to list them"


def test_all_lists_every_group_worst_first_then_the_healthy_ones_by_name(cluster):
    result = cluster("lag", "--all")
    assert result.exit_code == 0, result.stderr
    shown = table_groups(result.stdout)
    worst_first = list(reversed(lagging_names(GROUPS, LAGGING)))
    assert shown[:LAGGING] == worst_first
    assert shown[LAGGING:] == sorted(set(map(group_name, range(GROUPS))) - set(worst_first))
    assert len(result.stdout.splitlines()) == 1 + GROUPS * PARTITIONS
    assert "--all to list them" not in result.stderr


def test_a_group_asked_for_by_name_is_shown_with_no_lag(cluster):
    result = cluster("lag", "--group", group_name(0))
    assert result.exit_code == 0, result.stderr
    assert table_groups(result.stdout) == [group_name(0)]
    assert "OK (lag 0)" not in result.stderr


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_machine_output_stays_complete_and_in_name_order(cluster, fmt):
    result = cluster("lag", "-o", fmt)
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout) if fmt == "json" else [json.loads(line) for line in result.stdout.splitlines()]
    assert [g["group"] for g in found] == [group_name(i) for i in range(GROUPS)]
    assert sum(len(g["partitions"]) for g in found) == GROUPS * PARTITIONS
    assert result.stderr == ""


def test_all_healthy_says_so_in_one_line(tmp_path: Path):
    seed(tmp_path / "ok.db", groups=3, partitions=2)
    result = Workbench(tmp_path / "ok.db")("lag")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip() == "all 3 groups OK (lag 0): --all to list them"


def test_watch_order_is_verdict_then_time_lag_then_lag():
    """STOP before STALL before WARN whatever their lag; same verdict: the older lag (in time) first."""
    from workbench.cli.lag_table import arrange

    now = [1_000_000.0]
    tracker = LagTracker(window=3, clock=lambda: now[0])
    # (committed per refresh, end per refresh, state): 5 refreshes one second apart
    plans = {
        "warn-big": ([10, 20, 30, 40, 50], [1000, 1100, 1200, 1300, 1400], "Stable"),  # consuming, lag grows
        "stop-small": ([5, 5, 5, 5, 5], [6, 6, 6, 6, 7], "Empty"),  # no commits, no member, window passed
        "stall-old": ([10, 10, 10, 10, 10], [100, 200, 300, 400, 500], "Stable"),  # behind since long
        "stall-new": ([480, 480, 480, 480, 480], [460, 470, 490, 495, 500], "Stable"),
        "fine": ([100, 200, 300, 400, 500], [100, 200, 300, 400, 500], "Stable"),
    }
    for i in range(5):
        now[0] += 1.0
        tracker.observe(
            [
                GroupLag(g, state, (PartitionLag("t", 0, c[i], 0, e[i]),), int(now[0] * 1000))
                for g, (c, e, state) in plans.items()
            ]
        )
    shown, folded = arrange(
        [
            GroupLag(g, s, (PartitionLag("t", 0, c[-1], 0, e[-1]),), int(now[0] * 1000))
            for g, (c, e, s) in plans.items()
        ],
        tracker,
        show_all=False,
    )
    assert [(s.group.group_id, s.assessment.verdict) for s in shown] == [
        ("stop-small", Verdict.STOP),
        ("stall-old", Verdict.STALL),
        ("stall-new", Verdict.STALL),
        ("warn-big", Verdict.WARN),
    ]
    assert folded == 1


# --------------------------------------------------------------------------- wording, safety, layout


def test_a_queue_that_does_not_shrink_never_drains(monkeypatch, cluster):
    """RabbitMQ gives in/out rates; out below in means it never drains ("drains in never" before)."""
    from workbench import service

    queue = GroupLag(
        "billing", "Stable", (PartitionLag("billing", 0, 10, 10, 110),), 0, metadata={"in_rate": 9.0, "out_rate": 3.0}
    )
    draining = GroupLag(
        "audit", "Stable", (PartitionLag("audit", 0, 10, 10, 110),), 0, metadata={"in_rate": 2.0, "out_rate": 7.0}
    )

    async def fake_lag(conn, group=None, **kwargs):
        return [queue, draining]

    monkeypatch.setattr(service, "lag", fake_lag)
    result = cluster("lag")
    assert result.exit_code == 0, result.stderr
    assert "billing: total lag 100 (billing 100; never drains at these rates)" in result.stderr
    assert "audit: total lag 100 (audit 100; drains in ~20s)" in result.stderr
    assert "drains in never" not in result.stderr


def test_hostile_names_stay_inert_and_columns_line_up():
    from workbench.cli import lag_table

    evil = GroupLag("evil\x1b]52;c;aGk=\x07\u202e", "Stable", (PartitionLag("t\x1b[31m", 0, 1, 0, 5),), 0)
    wide = GroupLag("注文-service", "Stable", (PartitionLag("t", 10, 2, 0, 5),), 0)
    out, err = Console(file=io.StringIO(), width=200), Console(file=io.StringIO())
    lag_table.render([evil, wide], out=out, err=err)
    text = out.file.getvalue() + err.file.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b]52;c;aGk=\\x07\\u202e" in text
    lines = out.file.getvalue().splitlines()
    assert all(line == line.rstrip() for line in lines)
    from rich.cells import cell_len

    words = ("STATE", "Stable", "Stable")
    starts = {cell_len(line[: line.index(word)]) for line, word in zip(lines, words, strict=True)}
    assert len(starts) == 1  # a wide-character group name does not push the next column


def test_on_a_terminal_verdicts_are_coloured_and_the_rule_is_cut_to_the_width():
    from workbench.cli import lag_table

    now = [1_000.0]
    tracker = LagTracker(window=3, clock=lambda: now[0])
    for _ in range(2):
        now[0] += 1
        tracker.observe([GroupLag("g", "Empty", (PartitionLag("t", 0, 1, 0, 50),), int(now[0] * 1000))])
    out = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="standard")
    err = Console(file=io.StringIO(), force_terminal=True)
    lag_table.render(
        [GroupLag("g", "Empty", (PartitionLag("t", 0, 1, 0, 50),), int(now[0] * 1000))], tracker, out=out, err=err
    )
    from rich.text import Text

    lines = out.file.getvalue().splitlines()
    assert "\x1b[31mSTALL" in lines[1]  # VERDICT_STYLES: STALL is red
    assert all(Text.from_ansi(line).cell_len <= 100 for line in lines)
    assert Text.from_ansi(lines[1]).plain.endswith("…")


# --------------------------------------------------------------------------- speed and progress


def test_the_table_costs_no_more_than_the_json(tmp_path: Path):
    """Rich's Table took 280 of 283 s for 10,008 groups x 24 partitions, the JSON 8.5 s. Here 1,000
    groups x 24, every one lagging (so nothing is folded), through the CLI in this process, best of
    two each (the benchmark runs 10,000)."""
    seed(tmp_path / "big.db", groups=1000, partitions=PARTITIONS, lagging=1000)
    wb = Workbench(tmp_path / "big.db")

    def timed(*args: str) -> float:
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            result = wb("lag", *args)
            best = min(best, time.perf_counter() - started)
            assert result.exit_code == 0, result.stderr
            assert result.stdout.count("\n") >= 1000 * PARTITIONS
        return best

    json_s, table_s = timed("-o", "json"), timed()
    assert table_s <= 1.5 * json_s, f"table {table_s:.2f} s, json {json_s:.2f} s"


def run_progress(delay_s: float, *, terminal: bool, report: tuple[int, int] | None = None) -> str:
    from workbench.cli.lag import with_progress

    console = Console(file=io.StringIO(), force_terminal=True, width=100)

    async def read(on_progress):
        if report and on_progress:
            on_progress(*report)
        await asyncio.sleep(delay_s)
        return ["figures"]

    async def go():
        return await with_progress(read, console=console, terminal=terminal, after_s=0.2)

    assert asyncio.run(go()) == ["figures"]
    return console.file.getvalue()


def test_progress_on_a_terminal_while_the_lag_is_read():
    assert "reading consumer lag" in run_progress(0.6, terminal=True)
    assert "3,000 of 10,008 groups" in run_progress(0.6, terminal=True, report=(3000, 10008))


def test_no_progress_when_quick_or_not_on_a_terminal():
    assert run_progress(0.0, terminal=True) == ""
    assert run_progress(0.6, terminal=False) == ""
