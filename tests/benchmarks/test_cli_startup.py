"""CLI start-up: `workbench --help` against a bare typer app, and `workbench topics` on the local log."""

from __future__ import annotations

import sys

from tests.benchmarks.conftest import best_of, report

BARE_TYPER = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str = "x") -> None:
    print(name)
@app.command()
def bye() -> None:
    pass
app()
"""


def test_help_is_close_to_a_bare_typer_app(tmp_path):
    bare = best_of(7, [sys.executable, "-c", BARE_TYPER, "--help"])
    ours = best_of(7, [sys.executable, "-m", "workbench", "--help"])
    ratio = ours.seconds / bare.seconds
    report("cli-help", bare_typer_s=bare.seconds, workbench_s=ours.seconds, ratio=ratio)
    assert ratio <= 1.2


def test_topics_wall_time(tmp_path):
    db = tmp_path / "events.db"
    best_of(1, [sys.executable, "-m", "workbench", "--broker", f"local:{db}", "topics", "create", "orders"])
    bare = best_of(7, [sys.executable, "-c", BARE_TYPER, "bye"])
    topics = best_of(7, [sys.executable, "-m", "workbench", "--broker", f"local:{db}", "topics"])
    report(
        "cli-topics", bare_typer_s=bare.seconds, workbench_topics_s=topics.seconds, ratio=topics.seconds / bare.seconds
    )
    assert topics.seconds / bare.seconds <= 3.0  # connects, opens the log, renders: a regression guard
