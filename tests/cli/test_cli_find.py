"""Finding the event with `tail` on the local adapter: key search, --until windows, --max-matches,
the `scanned` completeness line (text and JSON), named filters and the `live` line."""

from __future__ import annotations

import json
import zlib

import pytest

from workbench.partitioning import partition_for

PARTITIONS = 4


@pytest.fixture
def orders(wb):
    """Topic ``orders`` (4 partitions): 40 events, keys order-0..order-9, every 7th a PaymentFailed."""
    assert wb("topics", "create", "orders", "--partitions", str(PARTITIONS)).exit_code == 0
    lines = [
        json.dumps({"key": f"order-{i % 10}", "value": {"n": i, "type": "PaymentFailed" if i % 7 == 0 else "Ok"}})
        for i in range(1, 41)
    ]
    done = wb("publish", "orders", "--file", "-", input="\n".join(lines) + "\n")
    assert done.exit_code == 0, done.stderr
    return wb


def scanned(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("scanned")]
    assert len(lines) == 1, stderr
    return lines[0]


def scanned_json(stderr: str) -> dict:
    return json.loads(scanned(stderr).removeprefix("scanned "))


def test_a_key_search_reads_only_the_partition_of_the_key_and_says_which_hash(orders):
    home = zlib.crc32(b"order-3") % PARTITIONS  # the local adapter places keys like librdkafka
    done = orders("tail", "orders", "--key", "order-3", "-o", "jsonl")
    assert done.exit_code == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["value"] for e in events] == [
        json.dumps({"n": n, "type": "Ok"}, separators=(",", ":")) for n in (3, 13, 23, 33)
    ]
    assert {e["partition"] for e in events} == {home}
    assert "murmur2 -> " in done.stderr and "crc32 -> " in done.stderr
    figures = scanned_json(done.stderr)
    read = {p["partition"] for p in figures["partitions"]}
    assert read == {partition_for(b"order-3", PARTITIONS, "murmur2"), home}
    assert figures["partitions_read"] == len(read) < PARTITIONS and figures["partition_count"] == PARTITIONS
    assert figures["matched"] == 4 and figures["complete"] is True and figures["stopped"] is None
    # one hash named: one partition; every partition when asked
    one = scanned_json(orders("tail", "orders", "--key", "order-3", "--partitioner", "crc32", "-o", "jsonl").stderr)
    assert [p["partition"] for p in one["partitions"]] == [home]
    every = orders("tail", "orders", "--key", "order-3", "--all-partitions", "-o", "jsonl")
    assert scanned_json(every.stderr)["partitions_read"] == PARTITIONS and len(every.stdout.splitlines()) == 4


def test_the_scanned_line_in_words_per_partition(orders):
    done = orders("tail", "orders", "--filter", 'value.type == "PaymentFailed"')
    assert done.exit_code == 0, done.stderr
    line = scanned(done.stderr)
    assert line.startswith("scanned orders: 4 of 4 partitions, 40 events, 5 matched; every window read to its end")
    for p in range(PARTITIONS):
        assert f"p{p} offsets 0-" in line
    assert line.count(", read to the end") == PARTITIONS


def test_max_matches_stops_and_the_scan_says_what_was_not_read(orders):
    done = orders("tail", "orders", "--filter", 'value.type == "PaymentFailed"', "--max-matches", "1", "-o", "jsonl")
    assert done.exit_code == 0 and len(done.stdout.splitlines()) == 1
    figures = scanned_json(done.stderr)
    assert figures["matched"] == 1 and figures["complete"] is False
    assert "--max-matches" in figures["stopped"]
    assert any(not p["complete"] for p in figures["partitions"])
    assert figures["scanned"] < 40  # it stopped reading


def test_until_an_offset_is_inclusive_and_ends_the_window(orders):
    done = orders("tail", "orders", "-P", "1", "--from", "2", "--until", "5", "-o", "jsonl")
    assert [json.loads(line)["offset"] for line in done.stdout.splitlines()] == [2, 3, 4, 5]
    figures = scanned_json(done.stderr)
    assert figures["until"] == "5" and figures["complete"] is True
    assert figures["partitions"][0]["first_offset"] == 2 and figures["partitions"][0]["last_offset"] == 5
    # across partitions, each ends at the offset
    every = orders("tail", "orders", "--until", "1", "-o", "jsonl")
    assert sorted(json.loads(line)["offset"] for line in every.stdout.splitlines()) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_until_a_time_and_until_now(orders):
    past = orders("tail", "orders", "--until", "2001-01-01T00:00:00Z", "-o", "jsonl")
    assert past.exit_code == 0 and past.stdout == ""
    assert scanned_json(past.stderr)["scanned"] == 0 and scanned_json(past.stderr)["complete"] is True
    later = orders("tail", "orders", "--until", "2999-01-01T00:00:00Z", "-o", "jsonl")
    assert len(later.stdout.splitlines()) == 40
    now = orders("tail", "orders", "--until", "now")
    assert "until now" in scanned(now.stderr) and now.stdout.count("order-") == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--follow", "--until", "now"], "--follow never does"),
        (["--until", "soon"], "is not an end"),
        (["--from", "9", "--until", "3"], "is before --from"),
        (["--key", "k", "-P", "0"], "--key chooses the partitions"),
        (["--partitioner", "fnv", "--key", "k"], "fnv"),
        (["--max-matches", "0"], "--max-matches"),
    ],
)
def test_bad_windows_and_searches_are_refused(orders, args, message):
    done = orders("tail", "orders", *args)
    assert done.exit_code == 2, done.stderr
    assert message in done.stderr and done.stdout == ""


def test_named_filters_from_the_profile_file(orders, isolated_home):
    (isolated_home / "workbench.toml").write_text(
        f"""
[filters]
failed = 'value.type == "PaymentFailed"'

[profiles.here]
broker = "local:{orders.db}"

[profiles.here.filters]
late = 'value.n > 30 and @failed'
""",
        encoding="utf-8",
    )
    late = orders("--profile", "here", "tail", "orders", "--filter", "@late", "-o", "jsonl", broker=False)
    assert late.exit_code == 0, late.stderr
    assert [json.loads(json.loads(line)["value"])["n"] for line in late.stdout.splitlines()] == [35]
    # the file's [filters] also serve a --broker URL; @name inside an expression
    mixed = orders("tail", "orders", "--filter", "@failed and partition == 0", "-o", "jsonl")
    assert mixed.exit_code == 0 and all(json.loads(x)["partition"] == 0 for x in mixed.stdout.splitlines())
    unknown = orders("tail", "orders", "--filter", "@nope")
    assert unknown.exit_code == 2 and "no named filter @nope" in unknown.stderr and "@failed" in unknown.stderr
    listed = orders("--profile", "here", "-o", "json", "filters", broker=False)
    assert listed.exit_code == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"failed", "late"} and all(r["valid"] for r in rows.values())
    assert rows["late"]["defined_in"].endswith("[profiles.here.filters]")


def test_filters_lists_a_broken_filter_and_exits_2(wb, isolated_home):
    (isolated_home / "workbench.toml").write_text("[filters]\nbroken = 'value.x >'\n", encoding="utf-8")
    done = wb("filters", broker=False)
    assert done.exit_code == 2 and "@broken" in done.stdout and "column" in done.stdout
    (isolated_home / "workbench.toml").write_text("[filters]\n'not a name' = 'x'\n", encoding="utf-8")
    bad = wb("filters", broker=False)
    assert bad.exit_code != 0 and "not a name" in bad.stderr


def test_a_follow_read_says_live_once_attached(orders):
    """In a real process: the live line comes on stderr before any event published after it is shown."""
    import subprocess
    import sys
    import time

    argv = [
        sys.executable,
        "-m",
        "workbench",
        "--broker",
        f"local:{orders.db}",
        "tail",
        "orders",
        "--follow",
        "-o",
        "jsonl",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "live" in line, line
        assert orders("publish", "orders", "--value", '{"n": 99}', "--key", "after").exit_code == 0
        deadline = time.monotonic() + 20
        out = proc.stdout.readline()
        assert time.monotonic() < deadline and json.loads(out)["key"] == "after"
    finally:
        proc.terminate()
        proc.wait(10)
