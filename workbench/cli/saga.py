"""saga: the command group, and what its verbs share (the options, the setup, times, finding one).

The verbs are beside it: list and show (:mod:`workbench.cli.saga_instances`), compensate
(:mod:`workbench.cli.saga_compensate`), history (:mod:`workbench.cli.saga_history`).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from workbench import config
from workbench.broker import BrokerError
from workbench.cli.base import app, fail, target_of
from workbench.errors import WorkbenchError

__all__ = ["SagaOption", "Setup", "SinceOption", "StateChoice", "find_saga", "saga_app", "shown_time"]

saga_app = typer.Typer(
    help="Saga instances reconstructed from the events, and their compensations.\n\n"
    "Sagas are defined in the profile file ([sagas.NAME]; the demo's order saga when none is); a "
    "compensation is a dry run unless --execute.\n\n"
    "Examples:\n  workbench saga list --state failed\n  workbench saga compensate ID --execute",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(saga_app, name="saga")


class StateChoice(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    compensating = "compensating"
    compensated = "compensated"
    stuck = "stuck"


SagaOption = Annotated[str | None, typer.Option("--saga", "-s", help="Only this saga (by name).")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Only events of the last DURATION (90s, 15m, 2h, 1d). Default: all.")
]


def _now() -> int:
    return time.time_ns() // 1_000_000


class Setup:
    """What every saga verb needs: the target, the saga definitions, correlation rules, the window."""

    def __init__(self, ctx: typer.Context, saga: str | None, since: str | None) -> None:
        from workbench.positions import parse_duration
        from workbench.sagas import settings

        try:
            self.target = target_of(ctx)
            self.sagas = settings.SagaSettings.load(config.load_config())
            self.chosen = settings.choose(self.sagas.definitions, saga)
            self.now = _now()
            self.since_ms = None if since is None else self.now - parse_duration(since, "--since")
        except (WorkbenchError, BrokerError) as exc:
            fail(exc)


def shown_time(ms: int | None) -> str:
    from workbench.events.envelope import format_timestamp

    shown = format_timestamp(ms)
    return "-" if shown is None else str(shown)


async def find_saga(conn: Any, setup: Setup, correlation_id: str) -> tuple[Any, Any]:
    """The definition and instance of ``correlation_id`` among the chosen sagas, in the window."""
    from workbench.sagas import observing

    return await observing.find_instance(
        conn, setup.chosen, setup.sagas.correlate_for, correlation_id, now=setup.now, since_ms=setup.since_ms
    )
