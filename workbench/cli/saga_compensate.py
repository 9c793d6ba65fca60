"""saga compensate: undo a failed saga, a dry run unless --execute, every execution audited."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import OutputOption, fail, fmt_of, run
from workbench.cli.saga import SagaOption, Setup, SinceOption, find_saga, saga_app
from workbench.errors import CompensationRefused, ExitCode, UsageError, WorkbenchError


def interactive() -> bool:
    """Whether someone can type the id back (stdin is a terminal)."""
    return sys.stdin.isatty()


@saga_app.command("compensate")
def saga_compensate(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Argument(metavar="ID", help="The saga's correlation id.")],
    execute: Annotated[bool, typer.Option("--execute", help="Publish the compensations (default: show them).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).")] = None,
    override: Annotated[
        bool, typer.Option("--override", help="Compensate even past the pivot, or a RUNNING/COMPLETED saga.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to type the id back (for scripts).")] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to watch for the confirming events after publishing.")
    ] = 10.0,
    saga: SagaOption = None,
    since: SinceOption = None,
    output_format: OutputOption = None,
) -> None:
    """Undo a failed saga: one compensating event per completed compensatable step, newest first.

    A dry run unless --execute: every event that would be published is shown (destination, key,
    headers, payload). Refused past the saga's pivot step, and for a RUNNING saga, unless
    --override. Each event carries the correlation id, a causation id (the failure event's id) and
    an idempotency key used as its id (ce_id): an event already on the destination with that id is
    not published again, so a second --execute publishes nothing. --execute re-reads the saga and
    refuses if anything changed since the plan, asks you to type the id back (--yes skips that;
    without a terminal --yes is required), then waits up to --wait seconds for the confirming
    events. Every --execute is recorded in the audit log (`workbench saga history ID`).

    Exit codes: 0 done (or dry run), 6 refused (read-only profile, past the pivot, changed), 7 a
    publish failed, 9 published but not confirmed within --wait.

    Examples:
      workbench saga compensate ID
      workbench saga compensate ID --execute --reason "payment provider outage"
      workbench saga compensate ID --execute --yes --wait 30 -o json
    """
    setup = Setup(ctx, saga, since)
    fmt = fmt_of(ctx, output_format)
    profile = setup.target.profile
    if execute:
        try:  # before anything is read
            profile.ensure_writable(f"publish compensations for saga {correlation_id!r}")
            if not yes and not interactive():
                raise UsageError(
                    "--execute without a terminal needs --yes (nobody can type the id back)",
                    hint="check the dry run first, then add --yes",
                )
        except WorkbenchError as exc:
            fail(exc)
    from workbench import service
    from workbench.sagas import compensation, compensation_plan

    audit = setup.sagas.audit if execute else None
    code: list[ExitCode] = []

    async def body() -> None:
        async with service.connect(setup.target, originals=True) as conn:  # compensations carry original fields
            definition, instance = await find_saga(conn, setup, correlation_id)
            try:
                planned = compensation_plan.plan(definition, instance, override=override)
            except CompensationRefused as exc:
                if execute and audit is not None:
                    audit.append(
                        compensation.refused_record(
                            definition.name,
                            instance.correlation_id,
                            exc,
                            profile=profile.name,
                            broker=profile.shown_broker(),
                            reason=reason,
                            override=override,
                            state=instance.state,
                            fingerprint=instance.fingerprint,
                        )
                    )
                raise
            if not execute:
                _print_plan(shown_plan(planned, profile), fmt, dry_run=True)
                output.stderr.print(
                    f"dry run: nothing published; add --execute to publish {len(planned.events)} event(s)"
                )
                return
            if fmt == "table" or not planned.events:
                _print_plan(shown_plan(planned, profile), fmt, dry_run=False)
            if not yes and planned.events:
                typed = typer.prompt(
                    f"publish {len(planned.events)} compensation(s)? type the correlation id "
                    f"{instance.correlation_id} to confirm",
                    default="",
                    show_default=False,
                    err=True,
                )
                if typed.strip() != instance.correlation_id:
                    assert audit is not None
                    audit.append(
                        compensation.refused_record(
                            definition.name,
                            instance.correlation_id,
                            CompensationRefused("not confirmed"),
                            profile=profile.name,
                            broker=profile.shown_broker(),
                            reason=reason,
                            override=override,
                            state=instance.state,
                            fingerprint=instance.fingerprint,
                        )
                    )
                    raise CompensationRefused("not confirmed: the id typed does not match; nothing was published")
            assert audit is not None
            done = await compensation.execute_and_record(
                conn,
                definition,
                planned,
                setup.sagas.correlate_for(definition),
                audit,
                profile=profile.name,
                broker=profile.shown_broker(),
                reason=reason,
                since_ms=setup.since_ms,
                wait_s=wait,
                redactor=config.redactor_of(profile),
            )
        _print_execution(replace(done, plan=shown_plan(done.plan, profile)), fmt)
        if done.outcome == "failed":
            code.append(ExitCode.PUBLISH_FAILED)
        elif done.outcome == "unconfirmed":
            code.append(ExitCode.TIMEOUT)

    run(body)
    if code:
        raise typer.Exit(int(code[0]))


def shown_plan(planned: Any, profile: Any) -> Any:
    """The plan as printed: its events redacted by the [mask] rules (what is published is not)."""
    return planned.redacted(config.redactor_of(profile))


def _print_plan(planned: Any, fmt: str, *, dry_run: bool) -> None:
    if fmt != "table":
        if dry_run:  # an execution's report carries its plan
            output.emit_json({"dry_run": True, **planned.as_dict()}, "json")
        return
    head = f"saga {planned.saga} {planned.correlation_id} ({planned.state}): "
    head += (
        f"{len(planned.events)} compensating event(s), newest step first" if planned.events else "nothing to publish"
    )
    output.stdout.print(output.safe(head, "bold"))
    for note in planned.notes:
        output.stdout.print(output.safe(f"  note: {note}", "yellow"))
    if planned.already:
        output.stdout.print(output.safe(f"  already compensated: {', '.join(planned.already)}"))
    for n, event in enumerate(planned.events, 1):
        output.stdout.print(output.safe(f"{n}. step {event.step} -> {event.topic}"))
        output.stdout.print(
            output.safe(f"   key: {'-' if event.key is None else event.key.decode('utf-8', 'replace')}")
        )
        output.stdout.print(output.safe("   headers:"))
        for name, value in event.headers:
            output.stdout.print(output.safe(f"     {name}: {value.decode('utf-8', 'replace')}"))
        output.stdout.print(output.safe("   payload:"))
        for line in json.dumps(json.loads(event.value), indent=2, ensure_ascii=False).splitlines():
            output.stdout.print(output.safe(f"     {line}"))
        output.stdout.print(output.safe(f"   confirmed by: {event.confirm}", "dim"))


def _print_execution(done: Any, fmt: str) -> None:
    if fmt != "table":
        output.emit_json({"dry_run": False, **done.plan.as_dict(), **done.as_dict()}, "json")
        return
    rows = [
        (
            r.step,
            r.topic,
            output.safe(r.status, "red" if r.status == "failed" else ""),
            r.position,
            "-" if r.confirmed is None else ("confirmed" if r.confirmed else "unconfirmed"),
            r.confirmed_by or r.error,
        )
        for r in done.results
    ]
    if rows:
        output.print_table(("STEP", "TOPIC", "STATUS", "POSITION", "CONFIRMATION", "BY / ERROR"), rows)
    output.stderr.print(
        output.safe(
            f"{done.outcome}: {done.published} published, "
            f"{sum(1 for r in done.results if r.status == 'already published')} already "
            f"published; recorded in the audit log"
        )
    )
    if done.error:
        output.stderr.print(output.safe(f"error: {done.error}", "red"))
