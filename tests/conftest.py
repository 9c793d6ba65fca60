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


@pytest.fixture(scope="session", autouse=True)
def shared_cluster_and_leak_check():
    """Under the test command (EW_SUITE_CHECKS=1, set by tests/run.sh) the suite meets a Kafka shaped
    like a shared production cluster, and must leave both brokers as it found them.

    Before the first test: the brokers' inventory is taken, then 10,000 unrelated consumer groups are
    seeded on Kafka (unless present). After the last: the seeded groups are removed and whatever else
    is new on either broker is a leak, named in the failure. Plain `pytest` runs (a developer's file or
    two, maybe beside other runs) do neither.
    """
    if os.environ.get("EW_SUITE_CHECKS") != "1":
        yield
        return
    from tests.brokers import inventory, shared_groups

    before = inventory.inventory()
    seeded = shared_groups.seed(int(os.environ.get("EW_SHARED_GROUPS", "10000")))
    yield
    if seeded:
        shared_groups.remove()
    left = inventory.leaks(before, inventory.inventory())
    if left:
        pytest.fail(
            f"the test run left {len(left)} object(s) on the brokers (a test must remove what it makes):\n  "
            + "\n  ".join(left),
            pytrace=False,
        )
