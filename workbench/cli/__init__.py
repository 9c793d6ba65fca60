"""The `workbench` command line (typer): one module per family of verbs, all on one app.

The verb modules are imported when the app is first asked for (``workbench.cli.app``), not with
this package: `workbench` alone on a terminal opens the full-screen app without them (see
:mod:`workbench.cli.launch`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["app", "load_app", "main"]


def load_app() -> typer.Typer:
    """The typer app with every verb registered on it."""
    # isort: off
    # each registers its verbs, in help order (saga_* register the verbs of the saga group)
    from workbench.cli import browse, tail, publish, lag, saga, saga_instances, saga_compensate, saga_history  # noqa: F401
    from workbench.cli import filters, schemas, triage, dlq, demo, profiles  # noqa: F401

    # isort: on
    from workbench.cli.base import app

    return app


def __getattr__(name: str) -> object:
    if name == "app":
        return load_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point: what escapes the verbs (a closed pipe, a bug) still ends cleanly."""
    from workbench.cli import launch

    target = launch.tui_target(sys.argv[1:], os.environ) if launch.on_terminal() else None
    try:
        if target is not None:
            launch.open_tui(target)
        else:
            load_app()()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except Exception as exc:  # noqa: BLE001
        import typer

        from workbench.cli.base import fail

        try:
            fail(exc)
        except typer.Exit as exit_:
            sys.exit(exit_.exit_code)
