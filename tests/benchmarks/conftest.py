"""Benchmarks run on demand: `python3 -m pytest tests/benchmarks -m benchmark -s`.

Each measures the workbench and a baseline in the same run and asserts on their ratio, never on
a fixed number of seconds. Figures are printed; the README's Benchmarks section quotes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """Mark this folder's tests (the hook sees the whole session's items)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.benchmark)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: bytes
    stderr: bytes


def measure(argv: list[str], *, stdin=None, stdout=subprocess.PIPE, env=None) -> Run:
    """Wall time and peak resident memory of one child process (os.wait4 gives that child's rusage)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env or os.environ.copy())
    out, err = b"", b""
    if stdout is subprocess.PIPE:
        out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.decode(errors="replace")
    return Run(seconds, usage.ru_maxrss / 1024, out, err)


def best_of(n: int, argv: list[str], **kwargs) -> Run:
    return min((measure(argv, **kwargs) for _ in range(n)), key=lambda r: r.seconds)


def report(name: str, **figures) -> None:
    shown = ", ".join(f"{k}={v:,.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\nBENCH {name}: {shown}", file=sys.stderr)
