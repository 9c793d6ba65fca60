"""dlq: why dead letters died, grouped by cause; and ``replay --to-origin``, which sends them home."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import OutputOption, app, compile_filter, fail, fmt_of, run, scan_progress, target_of
from workbench.errors import PublishFailed, WorkbenchError
from workbench.events.envelope import format_timestamp
from workbench.positions import POSITION_HELP, UNTIL_HELP, parse_position, parse_until

dlq_app = typer.Typer(
    help="Dead letters: why they died (Spring Kafka, Kafka Connect and RabbitMQ headers), grouped by cause.\n\n"
    "Send them home with `workbench replay DLQ --to-origin` (a dry run unless --execute).\n\n"
    "Examples:\n  workbench dlq summary orders.DLT\n  workbench dlq history",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

PEEK_HELP = (
    "The source is a RabbitMQ classic or quorum queue: take up to N messages and requeue them at once "
    "(they are marked redelivered, as with `workbench peek`; refused on read-only profiles)."
)


def _window(start: str | None, until: str | None):
    return parse_position(start or "beginning"), None if until is None else parse_until(until)


@dlq_app.command("summary")
def dlq_summary(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="TOPIC|QUEUE", help="The dead-letter topic, stream or queue.")],
    start: Annotated[
        str | None, typer.Option("--from", help=f"Where to start: {POSITION_HELP}. Default: beginning.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help=f"Where to stop: {UNTIL_HELP}.")] = None,
    filter_expr: Annotated[
        str | None, typer.Option("--filter", help="Only events matching this expression (as for tail).")
    ] = None,
    peek: Annotated[int | None, typer.Option("--peek", min=1, metavar="N", help=PEEK_HELP)] = None,
    output_format: OutputOption = None,
) -> None:
    """Dead letters grouped by their recorded cause: one line per cause with its count, origin,
    first and last time, and an example (DLQ/partition/offset, or a peeked message's id).

    Read from the headers the frameworks write: Spring Kafka (kafka_dlt-exception-fqcn,
    kafka_dlt-original-topic ...), Kafka Connect (__connect.errors.*) and RabbitMQ (x-death,
    x-first-death-*). The cause is the exception class, or RabbitMQ's reason (rejected, expired,
    maxlen, delivery_limit). Events without such headers are counted apart.

    Examples:
      workbench dlq summary orders.DLT --from 2026-11-27T08:00:00Z
      workbench -p rabbit dlq summary orders.dlq --peek 500 -o json
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    try:
        position, end = _window(start, until)
        match = compile_filter(filter_expr)
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service
    from workbench.triage import dlq

    async def body() -> dlq.Summary:
        summary = dlq.Summary(source)
        async with service.connect(target) as conn:
            with scan_progress(None) as on_scanned:
                reader = dlq.read_dead_letters(
                    conn, source, position, until=end, peek=peek, match=match, on_scanned=on_scanned
                )
                async for batch in reader:
                    summary.add(batch)
        return summary

    summary = run(body)
    if fmt != "table":
        output.emit_json(summary.as_dict() if fmt == "json" else [c.as_dict() for c in summary.ranked()], fmt)
        return
    rows = [
        [
            c.count,
            c.convention,
            c.cause,
            c.origin or "-",
            _time(c.first),
            _time(c.last),
            c.example,
            _short(c.message),
        ]
        for c in summary.ranked()
    ]
    if rows:
        title = output.safe(f"{summary.dead_letters} dead letter(s) in {source}, {len(rows)} cause(s)", "bold")
        output.print_table(
            ["COUNT", "CONVENTION", "CAUSE", "ORIGIN", "FIRST", "LAST", "EXAMPLE", "MESSAGE"], rows, title=title
        )
    else:
        output.stderr.print(output.safe(f"no dead letters in {source} ({summary.scanned} event(s) read)"))
    if summary.other:
        output.stderr.print(output.safe(f"{summary.other} event(s) without dead-letter headers", "yellow"))
    if rows:
        output.stderr.print(output.safe(f"send them home: workbench replay {source} --to-origin"))


def _short(text: str | None, limit: int = 60) -> str:
    if not text:
        return "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(ms: int | None) -> str:
    return "-" if ms is None else str(format_timestamp(ms))


@dlq_app.command("history")
def dlq_history(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Every redrive executed (who, when, reason, from where, how many to which destination), oldest first.

    Kept in the same append-only audit log as saga compensations ([sagas] audit_log = "PATH").

    Example: workbench dlq history -o json
    """
    fmt = fmt_of(ctx, output_format)
    from workbench.sagas import audit, settings

    try:
        log = audit.AuditLog(settings.audit_log_setting(config.load_config()))
        records = log.records(kind=audit.REDRIVE)
    except WorkbenchError as exc:
        fail(exc)
    if fmt != "table":
        output.emit_json(records, fmt)
        return
    rows = [
        (
            r.get("at"),
            r.get("who"),
            r.get("source"),
            ", ".join(f"{d} {n}" for d, n in (r.get("plan") or {}).items()) or "-",
            r.get("outcome"),
            r.get("published"),
            r.get("already_redriven"),
            r.get("error") or r.get("reason") or "-",
        )
        for r in records
    ]
    output.print_table(("AT", "WHO", "SOURCE", "PLAN", "OUTCOME", "PUBLISHED", "ALREADY", "ERROR / REASON"), rows)
    output.stderr.print(output.safe(f"{len(records)} redrive(s) in {log.path}"))


# --------------------------------------------------------------------------- replay --to-origin


def redrive(
    target: config.Target,
    source: str,
    *,
    start: str | None,
    until: str | None,
    filter_expr: str | None,
    max_events: int | None,
    peek: int | None,
    rate: float | None,
    reason: str | None,
    execute: bool,
    fmt: output.Format,
) -> None:
    """``workbench replay SOURCE --to-origin``: see that command's help."""
    try:
        if execute:
            target.profile.ensure_writable(f"redrive the dead letters of {source!r}")
        position, end = _window(start, until)
        match = compile_filter(filter_expr)
        audit = _audit_log() if execute else None
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service
    from workbench.sagas.audit import who
    from workbench.triage import redrive as redriving

    async def body() -> tuple[redriving.RedrivePlan, redriving.Run | None]:
        async with service.connect(target, originals=True) as conn:  # what is sent: the originals
            plan = await redriving.plan_redrive(
                conn, source, position, until=end, peek=peek, limit=max_events, match=match
            )
            if not execute or not plan.sendable:
                return plan, None
            assert audit is not None
            context = {
                "who": who(),
                "profile": target.profile.name,
                "broker": target.profile.shown_broker(),
                "reason": reason,
            }
            done = await redriving.execute_and_record(
                conn, plan, audit, context=context, filter_text=filter_expr, rate=rate
            )
            return plan, done

    plan, done = run(body)
    if not plan.items:
        output.stderr.print(output.safe(f"no dead letters to redrive in {source} ({plan.scanned} event(s) read)"))
        return
    if done is None:
        _print_plan(plan, fmt)
        if execute:
            output.stderr.print(output.safe("nothing to send: no dead letter names where it came from", "yellow"))
        else:
            output.stderr.print(
                output.safe(
                    f"dry run: {len(plan.sendable)} dead letter(s) would go back; add --execute to send them", "yellow"
                )
            )
        return
    _print_run(done, fmt)
    if done.outcome == "failed":
        fail(PublishFailed(f"redrive stopped: {done.error}", hint="`workbench dlq history` shows what was sent"))


def _audit_log():
    from workbench.sagas import audit, settings

    return audit.AuditLog(settings.audit_log_setting(config.load_config()))


def _print_plan(plan: Any, fmt: output.Format) -> None:
    if fmt != "table":
        doc = plan.as_dict()
        if fmt == "jsonl":
            output.emit_json([{"destination": d, "events": n} for d, n in doc["destinations"].items()], fmt)
        else:
            output.emit_json({**doc, "dry_run": True}, fmt)
        return
    rows = [(n, d) for d, n in plan.by_destination().items()]
    output.print_table(["EVENTS", "DESTINATION"], rows, title=output.safe(f"redrive plan for {plan.source}", "bold"))
    for item in plan.homeless:
        output.stderr.print(output.safe(f"{item.ref}: its headers name no origin ({item.cause}); left alone", "yellow"))
    if plan.not_dead_letters:
        output.stderr.print(output.safe(f"{plan.not_dead_letters} event(s) without dead-letter headers left alone"))


def _print_run(done: Any, fmt: output.Format) -> None:
    if fmt != "table":
        doc = {"source": done.plan.source, "plan": done.plan.by_destination(), **done.as_dict()}
        output.emit_json(doc if fmt == "json" else doc["results"], fmt)
        return
    per: dict[str, dict[str, int]] = {}
    for r in done.results:
        counts = per.setdefault(r.destination, {"published": 0, "already redriven": 0, "failed": 0})
        if r.status in counts:
            counts[r.status] += 1
    rows = [(d, c["published"], c["already redriven"], c["failed"], done.checked.get(d, "-")) for d, c in per.items()]
    output.print_table(["DESTINATION", "PUBLISHED", "ALREADY REDRIVEN", "FAILED", "CHECKED IN"], rows)
    output.stderr.print(
        output.safe(
            f"{done.count('published')} published, {done.count('already redriven')} already redriven "
            f"(recorded in the audit log: workbench dlq history)"
        )
    )
