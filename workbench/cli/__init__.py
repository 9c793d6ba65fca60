"""The `workbench` command line (typer): one module per family of verbs, all on one app."""

from __future__ import annotations

import os
import sys

import typer

# isort: off
# each registers its verbs, in help order (saga_* register the verbs of the saga group)
from workbench.cli import browse, tail, publish, lag, saga, saga_instances, saga_compensate, saga_history  # noqa: F401
from workbench.cli import schemas, triage, dlq, demo, profiles, filters  # noqa: F401

# isort: on
from workbench.cli.base import app, fail

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: what escapes the verbs (a closed pipe, a bug) still ends cleanly."""
    try:
        app()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except Exception as exc:  # noqa: BLE001
        try:
            fail(exc)
        except typer.Exit as exit_:
            sys.exit(exit_.exit_code)
