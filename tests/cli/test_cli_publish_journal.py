"""publish --journal: a re-run skips the lines that were confirmed, and says so (local adapter)."""

from __future__ import annotations

import json


def lines(n: int, start: int = 1) -> str:
    return "".join(json.dumps({"key": f"k{i}", "value": f"seq-{i}"}) + "\n" for i in range(start, start + n))


def values(wb, topic: str) -> list[str]:
    done = wb("tail", topic, "--from", "beginning", "-o", "jsonl")
    assert done.exit_code == 0, done.output
    return [json.loads(line)["value"] for line in done.stdout.splitlines()]


def test_rerun_with_the_journal_sends_only_what_was_not_confirmed(wb, tmp_path):
    source, journal = tmp_path / "in.jsonl", tmp_path / "in.journal"
    source.write_text(lines(5))
    assert wb("topics", "create", "t").exit_code == 0
    first = wb("publish", "t", "--file", str(source), "--journal", str(journal), "-o", "json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["confirmed"] == 5

    again = wb("publish", "t", "--file", str(source), "--journal", str(journal), "-o", "json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["confirmed"], report["skipped"]) == (0, 5)
    assert "5 event(s) already confirmed are skipped" in again.stderr
    assert values(wb, "t") == [f"seq-{i}" for i in range(1, 6)]


def test_a_failed_run_is_completed_by_the_rerun_without_doubles(wb, tmp_path):
    """The first run fails (the topic is missing) after the journal recorded part of an earlier run."""
    source, journal = tmp_path / "in.jsonl", tmp_path / "in.journal"
    source.write_text(lines(6))
    assert wb("topics", "create", "t").exit_code == 0
    # Lines 1-3 were confirmed by an earlier run that then stopped (as a broker outage would leave it).
    header = {"event_workbench_journal": 1, "topic": "t", "broker": f"local:{wb.db}", "lines": 6}
    from workbench.journal import input_digest

    header["input_sha256"] = input_digest(source.read_bytes(), None, [], False, False)
    journal.write_text(json.dumps(header) + "\nc 1-3\n")
    done = wb("publish", "t", "--file", str(source), "--journal", str(journal))
    assert done.exit_code == 0, done.output
    assert "3 confirmed, 0 failed, 0 not sent, 3 skipped" in done.stdout
    assert values(wb, "t") == ["seq-4", "seq-5", "seq-6"]
    assert journal.read_text().splitlines()[1:] == ["c 1-3", "c 4-6"]


def test_unconfirmed_lines_are_not_recorded(wb, tmp_path):
    source, journal = tmp_path / "in.jsonl", tmp_path / "in.journal"
    source.write_text(lines(2))
    assert wb("topics", "create", "t").exit_code == 0
    done = wb("publish", "missing", "--file", str(source), "--journal", str(journal))
    assert done.exit_code == 5  # the topic does not exist: nothing was sent
    assert journal.read_text().splitlines()[1:] == []


def test_journal_refuses_another_input_and_wrong_modes(wb, tmp_path):
    source, journal = tmp_path / "in.jsonl", tmp_path / "in.journal"
    source.write_text(lines(2))
    assert wb("topics", "create", "t").exit_code == 0
    assert wb("publish", "t", "--file", str(source), "--journal", str(journal)).exit_code == 0
    source.write_text(lines(3))
    changed = wb("publish", "t", "--file", str(source), "--journal", str(journal))
    assert changed.exit_code == 8 and "written for another input" in changed.stderr
    other_topic = wb("publish", "u", "--file", str(source), "--journal", str(journal))
    assert other_topic.exit_code == 8 and "another topic" in other_topic.stderr
    with_value = wb("publish", "t", "--value", "x", "--journal", str(journal))
    assert with_value.exit_code == 2 and "goes with --file" in with_value.stderr
    streaming = wb("publish", "t", "--file", str(source), "--stream", "--journal", str(journal))
    assert streaming.exit_code == 2 and "--stream" in streaming.stderr


def test_crlf_and_blank_lines_keep_their_line_numbers(wb, tmp_path):
    source, journal = tmp_path / "in.jsonl", tmp_path / "in.journal"
    source.write_bytes(b'{"value": "a"}\r\n\r\n  \nplain\r\n')
    assert wb("topics", "create", "t").exit_code == 0
    assert wb("publish", "t", "--file", str(source), "--journal", str(journal)).exit_code == 0
    assert journal.read_text().splitlines()[1:] == ["c 1,4"]
    assert values(wb, "t") == ["a", "plain"]
