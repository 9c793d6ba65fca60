"""`workbench` alone goes straight to the app (no typer, no verb modules) only when the command
line holds nothing but where to connect; everything else goes the ordinary way through typer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.cli import launch


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),
        (["-p", "dev"], {"profile": "dev"}),
        (["--profile", "dev"], {"profile": "dev"}),
        (["--broker=local:x.db"], {"broker": "local:x.db"}),
        (["-b", "local:x.db", "-p", "dev"], {"broker": "local:x.db", "profile": "dev"}),
    ],
)
def test_connection_options_alone_go_the_quick_way(argv, expected):
    assert launch.connection_options(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["topics"],
        ["--help"],
        ["--version"],
        ["-o", "json"],
        ["--broker"],  # no value: typer says so
        ["-b", "--help"],  # a value like an option
        ["-p", "a", "-p", "b"],  # twice
        ["--profile="],
        ["-pdev"],
        ["-b", "local:x.db", "topics"],
    ],
)
def test_anything_else_goes_through_typer(argv):
    assert launch.connection_options(argv) is None


def test_a_local_log_that_exists_is_opened_the_quick_way(tmp_path):
    db = tmp_path / "events.db"
    subprocess.run(
        [sys.executable, "-m", "workbench", "--broker", f"local:{db}", "topics", "create", "t"],
        check=True,
        capture_output=True,
    )
    target = launch.tui_target(["--broker", f"local:{db}"], {})
    assert target is not None and target.adapter == "local"


def test_mistakes_and_warnings_are_left_to_the_ordinary_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert launch.tui_target(["--broker", "nosuchscheme://x"], {}) is None
    assert launch.tui_target(["-p", "a", "-b", "local:x.db"], {}) is None  # exclusive
    assert launch.tui_target([], {"WORKBENCH_PROFILE": "no-such-profile"}) is None


def test_the_quick_way_imports_neither_typer_nor_textual():
    code = "import sys, workbench.cli.launch; print(sorted({'typer', 'textual'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
