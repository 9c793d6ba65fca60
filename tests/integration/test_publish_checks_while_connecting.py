"""publish --file checks its input while it connects (Kafka's producer gets its id meanwhile), and the
input's problem is still the one reported, whatever the broker does: at once when the broker is
silent, and after a broker's failure that came first (the check had not ended yet).

Real subprocesses against a loopback port that never answers and one that refuses; the time bound
is on a failure path (the broker's timeout is not waited out), not a performance figure.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.brokers import endpoints
from tests.integration.faults_support import REPO, require_kafka, run_workbench
from tests.integration.test_faults_connect import UNREACHABLE, free_port, silent  # noqa: F401 - a fixture

BAD_INPUT = 8
SILENT_TIMEOUT_S = 30  # the broker's timeout_s: a bad input must not wait for it


def source_with_a_bad_line(tmp_path, n: int = 2000):
    path = tmp_path / "in.jsonl"
    lines = [f'{{"key": "k{i}", "value": "v{i}"}}\n' for i in range(1, n + 1)]
    lines.insert(n // 2, '{"value": "x", "colour": 1}\n')
    path.write_text("".join(lines))
    return path


@pytest.mark.kafka
def test_a_bad_input_is_reported_at_once_while_a_silent_broker_is_still_being_connected(silent, tmp_path):  # noqa: F811
    source = source_with_a_bad_line(tmp_path)
    code, out, err, seconds = run_workbench(
        "-b", f"kafka://127.0.0.1:{silent.port}?timeout_s={SILENT_TIMEOUT_S}", "publish", "t", "--file", str(source)
    )
    assert code == BAD_INPUT, err
    assert f"{source}:1001: field 'colour'" in err
    assert out == "" and "Traceback" not in err
    assert seconds < SILENT_TIMEOUT_S / 2, f"the bad input waited for the broker ({seconds:.1f} s)"


@pytest.mark.kafka
def test_a_good_input_then_reports_the_silent_broker(silent, tmp_path):  # noqa: F811
    source = tmp_path / "in.jsonl"
    source.write_text('{"value": "v"}\n')
    code, out, err, _ = run_workbench(
        "-b", f"kafka://127.0.0.1:{silent.port}?timeout_s=3", "publish", "t", "--file", str(source)
    )
    assert code == UNREACHABLE, err
    assert f"127.0.0.1:{silent.port}" in err and out == ""


@pytest.mark.kafka
def test_the_input_problem_wins_over_a_broker_failure_that_came_first():
    """A refused connection is known within about a second; the input (a pipe still open) is checked
    after it: the command waits for the whole input, then names its bad line, not the broker."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "-b", f"kafka://127.0.0.1:{free_port()}", "publish", "t", "--file", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b'{"value": "ok"}\n{broken\n')
        proc.stdin.flush()
        with pytest.raises(subprocess.TimeoutExpired):  # the refusal alone does not end the command
            proc.wait(timeout=6)
        out, err = proc.communicate(b'{"value": "ok"}\n', timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == BAD_INPUT, err
    assert b"stdin:2: not valid JSON" in err and out == b""


@pytest.mark.kafka
def test_the_input_problem_wins_over_a_missing_topic(tmp_path):
    """With a live broker the destination is looked up during the check: a topic that does not exist
    (NotFound, known first) is not what is reported while the input has a bad line."""
    require_kafka()
    source = source_with_a_bad_line(tmp_path)
    code, out, err, _ = run_workbench(
        "-b", f"kafka://{endpoints.KAFKA_BOOTSTRAP}", "publish", "no-such-topic-ever", "--file", str(source)
    )
    assert code == BAD_INPUT, err
    assert f"{source}:1001: field 'colour'" in err and "no-such-topic-ever" not in err
