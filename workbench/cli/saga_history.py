"""saga history: the audit log of compensation attempts, oldest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import OutputOption, fail, fmt_of
from workbench.cli.saga import saga_app
from workbench.errors import WorkbenchError


@saga_app.command("history")
def saga_history(
    ctx: typer.Context,
    correlation_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="A saga's correlation id (default: all).")
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """The audit log of compensation attempts (who, when, reason, plan, results, outcome), oldest first.

    The log is append-only JSONL in the user data directory, or where [sagas] audit_log = "PATH" says.

    Example: workbench saga history 6a52ce18-21c8-4e28-b24e-3a02a5956772 -o json
    """
    fmt = fmt_of(ctx, output_format)
    from workbench.sagas import audit, settings

    try:
        path = settings.audit_log_setting(config.load_config())
        log = audit.AuditLog(path)
        records = log.records(correlation_id)
    except WorkbenchError as exc:
        fail(exc)
    if fmt != "table":
        output.emit_json(records, fmt)
        return
    rows = []
    for r in records:
        steps = ", ".join(
            f"{x.get('step')}: {x.get('status')}"
            + (f" ({'confirmed' if x['confirmed'] else 'unconfirmed'})" if x.get("confirmed") is not None else "")
            for x in r.get("results") or []
        )
        rows.append(
            (
                r.get("at"),
                r.get("who"),
                r.get("correlation_id"),
                output.safe(r.get("outcome"), _outcome_style(r)),
                r.get("published"),
                steps or r.get("error"),
                r.get("reason"),
            )
        )
    output.print_table(("AT", "WHO", "CORRELATION ID", "OUTCOME", "PUBLISHED", "STEPS / ERROR", "REASON"), rows)
    output.stderr.print(output.safe(f"{len(records)} record(s) in {log.path}"))


def _outcome_style(record: dict[str, Any]) -> str:
    styles = {"done": "green", "refused": "yellow", "failed": "red", "unconfirmed": "yellow"}
    return styles.get(record.get("outcome", ""), "")
