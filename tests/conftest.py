"""Shared fixtures: every test runs with its own user config/data directories and working directory."""

from __future__ import annotations

import os

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user's profiles or event log."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    monkeypatch.delenv("WORKBENCH_PROFILE", raising=False)
    monkeypatch.chdir(home)
    # subprocesses (`python -m workbench`) run this checkout's code, whatever pip installed last
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return home
