from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app


class Workbench:
    """Runs `workbench` in-process (CliRunner) against a local event log of the test's own."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, broker: bool = True):
        argv = (["--broker", f"local:{self.db}"] if broker else []) + list(args)
        return self.runner.invoke(app, argv, input=input, catch_exceptions=False)

    def subprocess(self, *args: str, input: bytes | None = None, timeout: float = 60, env=None):
        argv = [sys.executable, "-m", "workbench", "--broker", f"local:{self.db}", *args]
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env or os.environ.copy())


@pytest.fixture
def wb(tmp_path) -> Workbench:
    return Workbench(tmp_path / "events.db")
