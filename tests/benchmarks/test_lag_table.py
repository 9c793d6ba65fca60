"""`workbench lag` on a shared cluster's worth of groups: 10,000 groups x 24 partitions in a local
event log (10 of them lagging, named in the middle of the name order).

Baseline, in the same run on the same file: `workbench lag -o json` (every group, every partition).
Measured: the default table (what needs attention, the rest folded into one line) and `--all`
(all 240,000 rows), each a subprocess writing into a file, best of two. Issue 19: Rich's table took
1 min 40 s where the JSON took 8.5 s; the table must stay within 1.5x the JSON.
"""

from __future__ import annotations

import sys

from tests.benchmarks.conftest import measure, report
from tests.cli.lag_groups import seed

GROUPS, PARTITIONS, LAGGING = 10_000, 24, 10
ROUNDS = 2
MAX_RATIO = 1.5


def test_lag_table_against_the_json(tmp_path):
    db = tmp_path / "groups.db"
    seed(db, groups=GROUPS, partitions=PARTITIONS, lagging=LAGGING)
    argv = [sys.executable, "-m", "workbench", "--broker", f"local:{db}", "lag"]

    def timed(*args: str, name: str):
        """Best of ROUNDS, each into a fresh file; and how many lines the output has."""
        runs = []
        for _ in range(ROUNDS):
            with open(tmp_path / name, "wb") as out:
                runs.append(measure(argv + list(args), stdout=out))
        return min(runs, key=lambda r: r.seconds), (tmp_path / name).read_bytes().count(b"\n")

    as_json, _ = timed("-o", "json", name="lag.json")
    table, table_lines = timed(name="lag.txt")
    every, every_lines = timed("--all", name="all.txt")
    assert table_lines == 1 + LAGGING * PARTITIONS
    assert every_lines == 1 + GROUPS * PARTITIONS
    assert f"{GROUPS - LAGGING:,} groups OK (lag 0)" in table.stderr.decode()
    report(
        "lag table",
        groups=GROUPS,
        partitions=GROUPS * PARTITIONS,
        json_s=as_json.seconds,
        table_s=table.seconds,
        table_ratio=table.seconds / as_json.seconds,
        all_s=every.seconds,
        all_ratio=every.seconds / as_json.seconds,
        json_rss_mb=as_json.peak_rss_mb,
        all_rss_mb=every.peak_rss_mb,
    )
    assert every.seconds / as_json.seconds <= MAX_RATIO, f"--all: {every.seconds:.2f} s, json {as_json.seconds:.2f} s"
    assert table.seconds / as_json.seconds <= MAX_RATIO, f"table: {table.seconds:.2f} s, json {as_json.seconds:.2f} s"
