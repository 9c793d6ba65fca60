"""saga: list and show saga instances, compensate a failed one (dry run first), its audit history."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from workbench import config
from workbench.broker import BrokerError
from workbench.cli import output
from workbench.cli.base import (
    OutputOption,
    app,
    fail,
    fmt_of,
    run,
    scan_progress,
    target_of,
)
from workbench.errors import CompensationRefused, ExitCode, UsageError, WorkbenchError

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


def interactive() -> bool:
    """Whether someone can type the id back (stdin is a terminal)."""
    return sys.stdin.isatty()


def _now() -> int:
    return time.time_ns() // 1_000_000


class _Setup:
    """What every saga verb needs: the target, the saga definitions, correlation rules, the window."""

    def __init__(self, ctx: typer.Context, saga: str | None, since: str | None) -> None:
        from workbench.positions import parse_duration
        from workbench.sagas import compensation
        from workbench.sagas import definitions as sagas

        try:
            self.target = target_of(ctx)
            self.sagas = compensation.SagaSettings.load(config.load_config())
            self.chosen = sagas.choose(self.sagas.definitions, saga)
            self.now = _now()
            self.since_ms = None if since is None else self.now - parse_duration(since, "--since")
        except (WorkbenchError, BrokerError) as exc:
            fail(exc)


def _time(ms: int | None) -> str:
    from workbench.events.envelope import format_timestamp

    shown = format_timestamp(ms)
    return "-" if shown is None else str(shown)


#: What a partial instance (its start before the window) shows for its state and unseen steps.
PARTIAL = "PARTIAL"
UNKNOWN_MARK = "?"


def _steps_text(instance: Any) -> Text:
    from workbench.sagas.instances import STEP_MARKS

    text = Text()
    for n, step in enumerate(instance.steps):
        if n:
            text.append(" ")
        style = {"failed": "red", "compensated": "yellow", "done": "green"}.get(step.status, "dim")
        unseen = instance.partial and step.status == "pending"  # maybe done before the window
        text.append(output.safe(f"{step.name}{UNKNOWN_MARK if unseen else STEP_MARKS[step.status]}", style))
    return text


def shown_state(instance: Any) -> str:
    """The state, or PARTIAL when the window cut the instance's start off (its state is unknown)."""
    return PARTIAL if instance.partial else instance.state


def instance_dict(instance: Any) -> dict[str, Any]:
    return {
        "saga": instance.saga,
        "correlation_id": instance.correlation_id,
        "state": shown_state(instance),
        "partial": instance.partial,
        **({"observed_state": instance.state} if instance.partial else {}),
        "started": None if instance.partial else _time(instance.started),
        "first_seen": _time(instance.started),
        "last": _time(instance.last),
        "past_pivot": instance.past_pivot,
        "fingerprint": instance.fingerprint,
        "failure": None if instance.failure is None else instance.failure.as_dict(),
        "steps": [
            {
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                **{
                    role: (None if getattr(s, role) is None else getattr(s, role).as_dict())
                    for role in ("done", "failed", "compensated")
                },
            }
            for s in instance.steps
        ],
        "events": [e.as_dict() for e in instance.events],
    }


# --------------------------------------------------------------------------- list / show


@saga_app.command("list")
def saga_list(
    ctx: typer.Context,
    state: Annotated[StateChoice | None, typer.Option("--state", help="Only instances in this state.")] = None,
    saga: SagaOption = None,
    since: SinceOption = None,
    output_format: OutputOption = None,
) -> None:
    """Saga instances reconstructed from the events of the saga's topics, oldest first.

    States: RUNNING, COMPLETED, FAILED (a step failed, nothing compensated yet), COMPENSATING (partly
    compensated), COMPENSATED, STUCK (no new event for longer than the saga's stuck_after). Steps:
    ✓ done, ✗ failed, ↺ compensated, · pending.

    With --since, an instance whose first step falls before the window is read again from further
    back (as far back as the window is long, at least the saga's stuck_after); one whose start is
    still not found is PARTIAL: its state is unknown and unseen steps show ? (--state never lists it).

    Examples:
      workbench saga list --state failed
      workbench saga list --since 2h -o jsonl
    """
    setup = _Setup(ctx, saga, since)
    fmt = fmt_of(ctx, output_format)
    from workbench import service
    from workbench.sagas import compensation
    from workbench.sagas.instances import STATE_STYLES, count_by_state

    widened: list[int] = []  # instances read again from before the window

    async def body() -> None:
        async with service.connect(setup.target) as conn:
            total = None if setup.since_ms is not None else await compensation.expected_events(conn, setup.chosen)
            found = []
            with scan_progress(total, minimum=20_000) as progress:
                for definition in setup.chosen:
                    correlate = setup.sagas.correlate_for(definition)
                    seen = await compensation.observe(
                        conn, definition, correlate, now=setup.now, since_ms=setup.since_ms, on_scanned=progress
                    )
                    if setup.since_ms is not None:
                        seen = await _widened(
                            conn, definition, correlate, seen, now=setup.now, since_ms=setup.since_ms, widened=widened
                        )
                    found += seen
        partial = sum(1 for i in found if i.partial)
        counts = count_by_state(i for i in found if not i.partial)
        shown = [i for i in found if state is None or (not i.partial and i.state == state.value.upper())]
        if fmt != "table":
            output.emit_json([instance_dict(i) for i in shown], fmt)
        else:
            output.print_table(
                ("SAGA", "CORRELATION ID", "STATE", "STEPS", "STARTED", "LAST EVENT"),
                [
                    (
                        i.saga,
                        i.correlation_id,
                        output.safe(shown_state(i), STATE_STYLES.get(shown_state(i), "yellow")),
                        _steps_text(i),
                        f"before {_time(i.started)}" if i.partial else _time(i.started),
                        _time(i.last),
                    )
                    for i in shown
                ],
            )
        summary = ", ".join(f"{k.lower()} {output.count(v)}" for k, v in counts.items() if v)
        if partial:
            summary += f"{', ' if summary else ''}partial {output.count(partial)}"
        output.stderr.print(
            output.safe(f"{output.count(len(shown))} of {output.count(len(found))} instances ({summary or 'none'})")
        )
        if widened:
            output.stderr.print(
                output.safe(
                    f"note: {output.count(sum(widened))} instance(s) began before --since {since}: their earlier events "
                    f"were read from further back{f'; {partial} still begin earlier (PARTIAL)' if partial else ''}"
                )
            )
        if shown and state in (StateChoice.failed, StateChoice.stuck, StateChoice.compensating):
            output.stderr.print(output.safe(f"next: workbench saga compensate {shown[0].correlation_id}"))

    run(body)


@saga_app.command("show")
def saga_show(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Argument(metavar="ID", help="The saga's correlation id.")],
    saga: SagaOption = None,
    since: SinceOption = None,
    output_format: OutputOption = None,
) -> None:
    """One saga instance: its state and each step with the events behind it (topic/partition/offset).

    Example: workbench saga show 6a52ce18-21c8-4e28-b24e-3a02a5956772
    """
    setup = _Setup(ctx, saga, since)
    fmt = fmt_of(ctx, output_format)
    from workbench import service

    async def body() -> None:
        async with service.connect(setup.target) as conn:
            _, instance = await _find(conn, setup, correlation_id)
        if fmt != "table":
            output.emit_json(instance_dict(instance), fmt)
            return
        _print_instance(instance)

    run(body)


async def _widened(
    conn: Any, definition: Any, correlate: Any, found: list[Any], *, now: int, since_ms: int, widened: list[int]
) -> list[Any]:
    """The instances of a ``--since`` window, those whose first step falls before it read again.

    A saga's events seldom span long, so the window is widened for those ids only, back by as long
    as it is (at least the saga's stuck_after), not to the beginning: a bounded scan stays bounded.
    What still lacks its first step is marked partial (its state and start are unknown).
    """
    from workbench import service
    from workbench.broker import Position
    from workbench.sagas.instances import Collector, marked_partial, starts_observed

    cut = {i.correlation_id for i in found if not starts_observed(definition, i)}
    if not cut:
        return found
    widened.append(len(cut))
    earlier = since_ms - max(now - since_ms, definition.stuck_after_ms)
    start = Position.at_time(earlier) if earlier > 0 else Position.beginning()
    collector = Collector(definition, correlate, only=cut)
    for topic in definition.topics:
        async for batch in service.tail(conn, topic, start):
            collector.add(batch)
    again = {i.correlation_id: i for i in collector.instances(now)}
    result = []
    for instance in found:
        instance = again.get(instance.correlation_id, instance)
        result.append(instance if starts_observed(definition, instance) else marked_partial(instance))
    return sorted(result, key=lambda i: (i.started or 0, i.correlation_id))


async def _find(conn: Any, setup: _Setup, correlation_id: str) -> tuple[Any, Any]:
    from workbench.sagas import compensation

    return await compensation.find_instance(
        conn, setup.chosen, setup.sagas.correlate_for, correlation_id, now=setup.now, since_ms=setup.since_ms
    )


def _print_instance(instance: Any) -> None:
    from workbench.sagas.instances import STATE_STYLES

    title = Text()
    title.append(output.safe(f"saga {instance.saga} {instance.correlation_id}: "))
    title.append(output.safe(instance.state, STATE_STYLES.get(instance.state, "")))
    title.append(
        output.safe(
            f"  (started {_time(instance.started)}, last event {_time(instance.last)}"
            f"{', past the pivot' if instance.past_pivot else ''})"
        )
    )
    rows: list[tuple[object, ...]] = []
    for step in instance.steps:
        facts = [(role, getattr(step, role)) for role in ("done", "failed", "compensated") if getattr(step, role)]
        status = output.safe(step.status, STATE_STYLES.get(step.status.upper(), "") or "dim")
        if not facts:
            rows.append((step.name, step.kind, status, None, None, None, None))
        for n, (role, seen) in enumerate(facts):
            rows.append(
                (
                    "" if n else step.name,
                    "" if n else step.kind,
                    "" if n else status,
                    role,
                    seen.type,
                    seen.position,
                    _time(seen.timestamp),
                )
            )
    output.stdout.print(title)
    output.print_table(("STEP", "KIND", "STATUS", "EVENT ROLE", "TYPE", "AT", "TIME"), rows)


# --------------------------------------------------------------------------- compensate


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
    setup = _Setup(ctx, saga, since)
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
    from workbench.sagas import compensation

    audit = setup.sagas.audit if execute else None
    code: list[ExitCode] = []

    async def body() -> None:
        async with service.connect(setup.target) as conn:
            definition, instance = await _find(conn, setup, correlation_id)
            try:
                planned = compensation.plan(definition, instance, override=override)
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
                _print_plan(planned, fmt, dry_run=True)
                output.stderr.print(
                    f"dry run: nothing published; add --execute to publish {len(planned.events)} event(s)"
                )
                return
            if fmt == "table" or not planned.events:
                _print_plan(planned, fmt, dry_run=False)
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
            )
        _print_execution(done, fmt)
        if done.outcome == "failed":
            code.append(ExitCode.PUBLISH_FAILED)
        elif done.outcome == "unconfirmed":
            code.append(ExitCode.TIMEOUT)

    run(body)
    if code:
        raise typer.Exit(int(code[0]))


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


# --------------------------------------------------------------------------- history


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
    from workbench.sagas import audit
    from workbench.sagas import definitions as sagas

    try:
        path = sagas.audit_log_setting(config.load_config())
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
