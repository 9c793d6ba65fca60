"""Help, version and shell completion: what `workbench --help`, `--version` and the completion options say."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from typer.testing import CliRunner

from workbench.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, terminal_width=100)


def test_version_prints_the_distribution_version_and_exits_0():
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"workbench {version('event-workbench')}"


def test_shell_completion_is_offered():
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_examples_are_shown_one_per_line():
    lines = invoke("tail", "--help").stdout.splitlines()
    examples = [line.strip() for line in lines if line.strip().startswith("workbench tail ")]
    assert examples == [
        "workbench tail orders --from -5",
        """workbench tail payments --follow --filter 'type == "PaymentFailed"'""",
        "workbench tail orders --key order-42 --from 2026-11-27T08:00:00Z --until 2026-11-27T09:00:00Z",
        "workbench tail payments --filter @failed --max-matches 1",
        "workbench tail orders --from beginning -o jsonl > orders.jsonl",
        "workbench tail orders -o jsonl --redact > for-the-ticket.jsonl",
    ]


def test_the_command_list_shows_whole_first_lines():
    listing = " ".join(invoke("--help").stdout.split())
    assert "Re-publish events, e.g. from a dead-letter topic" in listing  # not cut at "e.g."
    assert "Example:" not in listing and "Examples:" not in listing  # summaries, not examples


def test_every_verb_has_a_summary_that_stands_alone():
    from typer.main import get_command

    root = get_command(app)

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield f"{path} {name}", sub
            yield from walk(sub, f"{path} {name}")

    for path, command in walk(root, "workbench"):
        summary = command.get_short_help_str(200)
        assert summary, f"{path} has no summary"
        assert "Example" not in summary, f"{path}: {summary!r}"
        assert not summary.endswith(("e.g.", "...")), f"{path}: {summary!r}"
