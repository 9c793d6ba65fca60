"""Helpers of the security suite: the real `workbench` command in a subprocess, and profile files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        """stdout and stderr together, as text (for greps)."""
        return (self.out + b"\n" + self.err).decode("utf-8", "replace")


class Cli:
    """`python -m workbench ...` in a subprocess with this test's environment (and profile file)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = os.environ.copy()

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 90) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=self.env,
            cwd=self.home,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(isolated_home) -> Cli:
    return Cli(isolated_home)


def write_profiles(home: Path, text: str, mode: int = 0o600) -> Path:
    """``workbench.toml`` in the working directory, with the given file mode."""
    path = home / "workbench.toml"
    path.write_text(text)
    path.chmod(mode)
    return path
