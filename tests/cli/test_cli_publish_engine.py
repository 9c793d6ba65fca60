"""publish through the engine (local adapter): checked first, then sent batch by batch; stdin spooled;
every problem line named; -o json's events for inputs larger than a batch; the reported time."""

from __future__ import annotations

import gc
import json
import time


def lines(n: int) -> str:
    return "".join(json.dumps({"key": f"k{i}", "value": f"seq-{i}"}) + "\n" for i in range(1, n + 1))


def values(wb, topic: str) -> list[str]:
    done = wb("tail", topic, "--from", "beginning", "-o", "jsonl")
    assert done.exit_code == 0, done.output
    return [json.loads(line)["value"] for line in done.stdout.splitlines()]


def test_more_events_than_a_batch_are_all_listed_in_json(wb, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(lines(12_345))
    assert wb("topics", "create", "t", "--partitions", "2").exit_code == 0
    done = wb("publish", "t", "--file", str(source), "-o", "json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["confirmed"], report["failed"], report["not_sent"]) == (12_345, 0, 0)
    assert [e["origin"] for e in report["events"]] == [f"{source}:{i}" for i in range(1, 12_346)]
    assert {e["partition"] for e in report["events"]} == {0, 1}
    one_line = wb("publish", "t", "--file", str(source), "-o", "jsonl")
    assert len(one_line.stdout.splitlines()) == 1 and len(json.loads(one_line.stdout)["events"]) == 12_345


def test_stdin_is_checked_whole_then_published_and_journaled(wb, tmp_path):
    journal = tmp_path / "in.journal"
    assert wb("topics", "create", "t").exit_code == 0
    first = wb("publish", "t", "--file", "-", "--journal", str(journal), input=lines(7))
    assert first.exit_code == 0, first.output
    again = wb("publish", "t", "--file", "-", "--journal", str(journal), "-o", "json", input=lines(7))
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["confirmed"], json.loads(again.stdout)["skipped"]) == (0, 7)
    assert values(wb, "t") == [f"seq-{i}" for i in range(1, 8)]


def test_a_bad_stdin_names_every_problem_line_and_publishes_nothing(wb):
    assert wb("topics", "create", "t").exit_code == 0
    text = lines(3) + "{broken\n" + lines(2) + '{"value": null}\n' + '{"value": "x", "colour": 1}\n'
    done = wb("publish", "t", "--file", "-", input=text)
    assert done.exit_code == 8
    assert "stdin:4: not valid JSON" in done.stderr
    assert "2 more line(s) with problems: 7, 8" in done.stderr
    assert values(wb, "t") == []


def test_the_reported_time_covers_the_whole_command(wb, tmp_path):
    """The rate publish prints is over the command's run: the check pass and connecting count too."""
    source = tmp_path / "in.jsonl"
    source.write_text(lines(3000))
    assert wb("topics", "create", "t").exit_code == 0
    began = time.monotonic()
    done = wb.subprocess("publish", "t", "--file", str(source), "-o", "json")
    wall = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    # from the process's start (interpreter, imports, the check) to the last confirmation: most of
    # the wall time (sending 3,000 events alone is a few percent of it)
    assert 0.6 * wall <= json.loads(done.stdout)["seconds"] <= wall


def test_the_garbage_collector_is_back_after_a_publish_in_the_same_process(wb):
    assert wb("topics", "create", "t").exit_code == 0
    assert gc.isenabled()
    assert wb("publish", "t", "--value", "x").exit_code == 0
    assert wb("publish", "missing", "--value", "x").exit_code == 5
    assert gc.isenabled() and gc.get_freeze_count() == 0
