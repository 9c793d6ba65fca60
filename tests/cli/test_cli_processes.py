"""Two terminals: `workbench publish` in one process is seen by `workbench tail --follow` in another."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

from workbench.errors import ExitCode


def read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """One line of the child's stdout, or b"" if none arrived in time."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


def test_follow_sees_another_process_publish_within_a_second(wb):
    assert wb.subprocess("topics", "create", "live").returncode == 0
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "--broker",
            f"local:{wb.db}",
            "tail",
            "live",
            "--from",
            "beginning",
            "--follow",
            "-o",
            "jsonl",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # a first event proves the follower is up (it reads from the beginning)
        assert wb.subprocess("publish", "live", "--value", "warm-up").returncode == 0
        assert json.loads(read_line(tail, 30))["value"] == "warm-up"

        published = wb.subprocess("publish", "live", "--value", "hello")
        seen_at = time.monotonic()
        assert published.returncode == 0, published.stderr
        line = read_line(tail, 5)
        delay = time.monotonic() - seen_at
        assert json.loads(line)["value"] == "hello"
        assert delay < 1.0, f"seen after {delay:.2f} s"

        tail.send_signal(signal.SIGINT)
        assert tail.wait(10) == ExitCode.INTERRUPTED
    finally:
        tail.kill()
        tail.wait()


def test_output_to_a_closed_pipe_ends_quietly(wb):
    wb.subprocess("topics", "create", "t")
    wb.subprocess("publish", "t", "--value", "x", "--count", "5000")
    cmd = f"{sys.executable} -m workbench --broker local:{wb.db} tail t -o jsonl | head -n 1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=60, env=os.environ.copy())
    assert done.stdout.count(b"\n") == 1
    assert done.returncode == 0 and done.stderr == b"", done.stderr


def count_events(wb, topic: str) -> int:
    return sum(t["count"] for t in json.loads(wb.subprocess("topics", "-o", "json").stdout) if t["name"] == topic)


def test_a_following_tail_piped_into_a_streaming_publish_copies_events_as_they_come(wb):
    for topic in ("src", "dst"):
        assert wb.subprocess("topics", "create", topic).returncode == 0
    base = f"{sys.executable} -m workbench --broker local:{wb.db}"
    pipeline = subprocess.Popen(
        ["bash", "-c", f"{base} tail src --from beginning --follow -o jsonl | {base} publish dst --file - --stream"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for n in range(3):
            assert wb.subprocess("publish", "src", "--value", f"event-{n}", "--key", f"k{n}").returncode == 0
        deadline = time.monotonic() + 20
        while count_events(wb, "dst") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the copy with a deadline, not a fixed wait
        copied = [json.loads(line) for line in wb.subprocess("tail", "dst", "-o", "jsonl").stdout.splitlines()]
        assert [(e["key"], e["value"]) for e in copied] == [("k0", "event-0"), ("k1", "event-1"), ("k2", "event-2")]
    finally:
        os.killpg(pipeline.pid, signal.SIGINT)
        try:
            pipeline.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(pipeline.pid, signal.SIGKILL)
            raise


def test_streaming_publish_stops_at_a_malformed_line_after_publishing_those_before(wb, tmp_path):
    wb.subprocess("topics", "create", "t")
    path = tmp_path / "in.jsonl"
    path.write_text('{"value": "a"}\n{"value": "b"}\n{"value": oops}\n{"value": "d"}\n')
    done = wb.subprocess("publish", "t", "--file", str(path), "--stream")
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert f"{path}:3".encode() in done.stderr
    assert b"2 confirmed, 0 failed" in done.stdout
    assert count_events(wb, "t") == 2
