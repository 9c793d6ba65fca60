"""What the fault tests share: the workbench as a real subprocess, broker stop/start, polling.

The tests run ``python -m workbench ...`` (this checkout's code, see tests/conftest.py) and
watch its stdout and stderr line by line from reader threads, so a test can wait for "the 200th
event" or "the outage was reported" without a fixed sleep. Brokers are stopped and started with
``bash tests/brokers/brokers.sh down|up kafka|rabbitmq``: that disturbs anything else using them,
so each fault test file restarts a broker at most once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import endpoints

REPO = Path(__file__).resolve().parents[2]
KAFKA_URL = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"
#: The guest password of the loopback test broker is not a secret.
RABBIT_URL = endpoints.RABBIT_AMQP_URL


def require_kafka() -> None:
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(
            f"Kafka does not answer on {endpoints.KAFKA_BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`",
            pytrace=False,
        )


def brokers(*args: str, timeout: float = 240) -> None:
    """``brokers.sh ARGS``; fails the test with the script's own words when it fails."""
    done = subprocess.run(
        ["bash", str(endpoints.BROKERS_SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"brokers.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}"


def eventually(check: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


async def until(check: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``check()`` (awaited if it is a coroutine function) until it returns something truthy;
    fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


class Workbench:
    """One ``python -m workbench ARGS`` process; its stdout and stderr lines are collected as they come.

    ``read_stdout=False`` leaves stdout a pipe nobody reads (a blocked consumer) until
    :meth:`start_reading`.
    """

    def __init__(self, *args: str, read_stdout: bool = True, stdin: Any = subprocess.DEVNULL) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.pid = self.proc.pid
        self.out: list[bytes] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump_err, daemon=True)]
        self._threads[0].start()
        if read_stdout:
            self.start_reading()

    def _pump_err(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.err.append(line.decode("utf-8", "replace").rstrip("\n"))

    def _pump_out(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.out.append(line)

    def start_reading(self) -> None:
        thread = threading.Thread(target=self._pump_out, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------ watching

    def records(self) -> list[dict[str, Any]]:
        """stdout's JSON lines so far (the JSONL envelope of ``tail -o jsonl``)."""
        return [json.loads(line) for line in list(self.out)]

    def stderr_text(self) -> str:
        return "\n".join(self.err)

    def wait_lines(self, n: int, timeout: float) -> None:
        try:
            eventually(lambda: len(self.out) >= n or self._dead(), f"{n} lines on stdout", timeout)
        except AssertionError as exc:
            raise AssertionError(self._report(f"{exc}, {len(self.out)} so far")) from None
        assert len(self.out) >= n, self._report(f"ended after {len(self.out)} of {n} lines")

    def wait_stderr(self, text: str, timeout: float, *, after: int = 0) -> int:
        """Wait until a stderr line from index ``after`` on contains ``text``; returns its index."""

        def find() -> int | None:
            for i, line in enumerate(list(self.err)[after:], start=after):
                if text in line:
                    return i + 1
            return None if self.proc.poll() is None else -1

        found = eventually(find, f"{text!r} on stderr of {self.args}", timeout)
        assert found > 0, self._report(f"ended before saying {text!r}")
        return found - 1

    def _dead(self) -> bool:
        return self.proc.poll() is not None

    def _report(self, what: str) -> str:
        return (
            f"workbench {' '.join(self.args)}: {what}; exit {self.proc.poll()}; stderr:\n{self.stderr_text()[-3000:]}"
        )

    # ------------------------------------------------------------------ ending

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a person would end ``tail --follow``; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(self._report(f"still running after {timeout:g} s")) from None
        for thread in self._threads:
            thread.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def close(self) -> None:
        """Always called: no workbench process outlives its test."""
        self.kill()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def run_workbench(*args: str, timeout: float = 120, input_text: str | None = None) -> tuple[int, str, str, float]:
    """Run ``python -m workbench ARGS`` to its end: (exit code, stdout, stderr, seconds it took)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input=input_text,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def rss_kb(pid: int) -> int:
    """Resident memory of a process (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def seq_value(phase: str, n: int) -> str:
    """The value of the n-th published event of a phase: the tests check sequences by it."""
    return json.dumps({"phase": phase, "seq": n}, separators=(",", ":"))


def check_exactly(records: Sequence[dict[str, Any]], expected: dict[int, list[str]]) -> int:
    """Every partition's printed values are exactly the expected ones, in order, at contiguous
    offsets: no gap, no duplicate. Returns how many events were checked."""
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_partition.setdefault(r["partition"], []).append(r)
    assert sorted(by_partition) == sorted(p for p, v in expected.items() if v), "events in unexpected partitions"
    for p, values in expected.items():
        got = by_partition.get(p, [])
        seen = [r["value"] for r in got]
        duplicates = len(seen) - len(set(seen))
        missing = [v for v in values if v not in set(seen)]
        assert not duplicates and not missing and seen == values, (
            f"partition {p}: {len(seen)} printed, {len(values)} published, {duplicates} duplicated, "
            f"{len(missing)} missing (first: {missing[:3]})"
        )
        offsets = [r["offset"] for r in got]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), f"partition {p}: offsets not contiguous"
    return sum(len(v) for v in expected.values())
