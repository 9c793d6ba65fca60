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
        [sys.executable, "-m", "workbench", "--broker", f"local:{wb.db}", "tail", "live",
         "--from", "beginning", "--follow", "-o", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
