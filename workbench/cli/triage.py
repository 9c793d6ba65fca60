"""Incident triage: trace a correlation id, capture events to a file, replay them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import (
    OutputOption,
    app,
    compile_filter,
    fail,
    fmt_of,
    run,
    scan_progress,
    target_of,
    wants_originals,
)
from workbench.errors import UsageError, WorkbenchError
from workbench.events import codecs
from workbench.events.envelope import format_timestamp
from workbench.events.redaction import ORIGINAL
from workbench.positions import (
    DEFAULT_SINCE,
    POSITION_HELP,
    SINCE_HELP,
    parse_position,
    parse_since,
)

# --------------------------------------------------------------------------- trace


@app.command()
def trace(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Argument(metavar="ID", help="The correlation id to follow.")],
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Only this topic (repeatable); PROFILE:TOPIC for a profile of --across."),
    ] = None,
    since: Annotated[str, typer.Option("--since", help=f"Scan from: {SINCE_HELP}.")] = DEFAULT_SINCE,
    across: Annotated[
        list[str] | None, typer.Option("--across", help="Also scan this profile of the profile file (repeatable).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Also keep the events found in a capture file (FILE.db) for offline use.")
    ] = None,
    redact: Annotated[
        bool, typer.Option("--redact", help="With --to: keep the events redacted by the [mask] rules in the file.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the --to file if it exists.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List each skipped topic with the broker's reason.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Every event carrying a correlation id, across topics (and profiles), in time order.

    The id is read by the profile file's [correlation] rules (default: correlation_id header,
    the AMQP correlation_id, CloudEvents correlationid, traceparent, then correlationId in the
    JSON value). Each topic is scanned from --since to its end; topics the broker cannot read
    back (e.g. a RabbitMQ exchange: trace the stream bound to it) are summed up in one line on
    stderr (-v lists each with the reason). Exit 5 when no event carries the id.

    Examples:
      workbench trace 7f3c0e1a --since 2h
      workbench -p kafka trace order-42 --across rabbit --topic orders --topic rabbit:audit-stream
      workbench trace order-42 --since beginning --to incident-42.db
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    try:
        start = parse_since(since)
        if not correlation_id.strip():
            raise UsageError("the correlation id is empty")
        plan = _trace_plan(target, across or [], topic)
        destination = _destination(to, force)
        rules = _rules()
        originals = destination is not None and all(
            wants_originals(each, machine=True, redact=redact, what="capture to a file without --redact")
            for each, _ in plan
        )
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service
    from workbench.triage.trace import Trace, TraceNotFound, scan

    async def body() -> Trace:
        result = Trace(correlation_id)
        with scan_progress(None) as on_scanned:
            for each, topics in plan:
                async with service.connect(each, keep_originals=originals) as conn:
                    await scan(
                        conn,
                        correlation_id,
                        start,
                        profile=each.profile.name,
                        topics=topics,
                        rules=rules,
                        on_scanned=on_scanned,
                        trace=result,
                    )
        if destination is not None and result.hops:
            from workbench.triage.capture import capture_events, open_capture

            async with open_capture(destination, force=force) as sink:
                kept = [
                    (h.profile, h.event.metadata.get(ORIGINAL, h.event) if originals else h.event) for h in result.hops
                ]
                await capture_events(sink, kept)
        return result

    result = run(body)
    _report_skipped(result.skipped, verbose=verbose, several=bool(across))
    if not result.hops:
        fail(
            TraceNotFound(
                f"no event carries correlation id {correlation_id!r} ({result.scanned} event(s) scanned in "
                f"{result.topics} topic(s) since {start})",
                hint="--since beginning scans everything the topics hold; -t names the topics to scan",
            )
        )
    _render_trace(result, fmt, several=bool(across))
    if destination is not None:
        output.stderr.print(
            output.safe(
                f"{len(result.hops)} event(s) kept in {destination} (open it with --broker local:{destination})"
            )
        )


def _report_skipped(skipped, *, verbose: bool, several: bool) -> None:
    """The topics a trace could not read, on stderr: one summary line, or one line each with -v."""
    if not skipped:
        return
    if verbose:
        for s in skipped:
            where = f"{s.profile}:{s.topic}" if several else s.topic
            output.stderr.print(output.safe(f"skipped {where}: {s.reason}", "yellow"))
        return
    from workbench.triage.trace import skipped_summary

    output.stderr.print(
        output.safe(f"{skipped_summary(skipped, with_profile=several)} (-v lists each with the reason)", "yellow")
    )


def _rules():
    from workbench.events.correlation import rules_from_config

    return rules_from_config(config.load_config())


def _trace_plan(
    target: config.Target, across: list[str], topics: list[str] | None
) -> list[tuple[config.Target, list[str] | None]]:
    """Which profile scans which topics (None: all of its topics)."""
    targets = [target]
    if across:
        loaded = config.load_config()
        for name in dict.fromkeys(across):
            if name != target.profile.name:
                targets.append(config.resolve(loaded.profile(name)))
    names = {t.profile.name for t in targets[1:]}
    if not topics:
        return [(t, None) for t in targets]
    chosen: dict[str, list[str]] = {t.profile.name: [] for t in targets}
    for item in topics:
        prefix, sep, rest = item.partition(":")
        if sep and prefix in names and rest:
            chosen[prefix].append(rest)
        else:
            chosen[target.profile.name].append(item)
    return [(t, chosen[t.profile.name]) for t in targets if chosen[t.profile.name]]


def _destination(to: str | None, force: bool):
    if to is None:
        return None
    from workbench.triage.capture import check_destination

    return check_destination(to, force)


def _render_trace(result, fmt: output.Format, *, several: bool) -> None:
    from workbench.triage.trace import format_gap, hop_dict

    if fmt != "table":
        hops = [hop_dict(h) for h in result.hops]
        if fmt == "jsonl":
            output.emit_json(hops, "jsonl")
            return
        output.emit_json(
            {
                "correlation_id": result.correlation_id,
                "hops": hops,
                "scanned": result.scanned,
                "topics": result.topics,
                "skipped": [
                    {"profile": s.profile, "topic": s.topic, "kind": s.kind, "reason": s.reason} for s in result.skipped
                ],
            },
            "json",
        )
        return
    if not result.hops:
        return
    columns = ["TIME", "GAP", *(["PROFILE"] if several else []), "TOPIC", "P/OFFSET", "TYPE", "SOURCE", "KEY"]
    rows = [
        [
            format_timestamp(h.event.timestamp) or "-",
            format_gap(h.gap_ms),
            *([h.profile] if several else []),
            h.event.topic,
            f"{h.event.partition}/{h.event.offset}",
            h.type or "-",
            h.source or "-",
            "-" if h.event.key is None else codecs.preview(h.event.key, 30),
        ]
        for h in result.hops
    ]
    span = result.hops[-1].event.timestamp, result.hops[0].event.timestamp
    spread = (
        f", {format_gap(span[0] - span[1])} from first to last" if len(result.hops) > 1 and None not in span else ""
    )
    title = output.safe(f"{result.correlation_id}: {len(result.hops)} event(s){spread}", "bold")
    output.print_table(columns, rows, title=title)


# --------------------------------------------------------------------------- capture


@app.command()
def capture(
    ctx: typer.Context,
    topics: Annotated[list[str], typer.Argument(metavar="TOPIC...", help="Topics (or RabbitMQ streams) to copy.")],
    to: Annotated[str, typer.Option("--to", help="The capture file to write (FILE.db).")],
    since: Annotated[str | None, typer.Option("--since", help=f"Copy from: {SINCE_HELP}.")] = None,
    start: Annotated[str | None, typer.Option("--from", help=f"Copy from a position: {POSITION_HELP}.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    redact: Annotated[
        bool,
        typer.Option(
            "--redact",
            help="Write the events redacted by the [mask] rules (a file for a ticket; replay refuses it).",
        ),
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Copy events to a file that the whole workbench opens offline (--broker local:FILE.db).

    Exact bytes, headers, original partitions/offsets and timestamps, plus a snapshot of the
    consumer groups' committed offsets (so `lag` offline shows the lag at capture time). Default:
    from the beginning. The file appears only once complete (never half-written).

    Examples:
      workbench capture orders payments --since 1h --to incident.db
      workbench capture orders --since 1h --redact --to for-the-ticket.db
      workbench --broker local:incident.db tail orders
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    try:
        if since is not None and start is not None:
            raise UsageError("--since and --from are exclusive", hint="choose one")
        position = parse_since(since) if since is not None else parse_position(start or "beginning")
        from workbench.triage.capture import check_destination

        destination = check_destination(to, force)
        originals = wants_originals(target, machine=True, redact=redact, what="capture without --redact")
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service
    from workbench.triage.capture import CaptureReport, open_capture
    from workbench.triage.capture import capture as copy_topics

    async def body() -> CaptureReport:
        async with service.connect(target, originals=originals) as source:
            with scan_progress(None) as on_scanned:
                async with open_capture(destination, force=force) as sink:
                    return await copy_topics(source, sink, topics, position, on_scanned=on_scanned)

    report = run(body)
    if fmt == "table":
        per_topic = ", ".join(f"{t} {n}" for t, n in report.events.items())
        output.stdout.print(
            output.safe(
                f"{report.total} event(s) ({per_topic}); lag snapshot of {len(report.groups)} group(s)"
                + (f"; {report.schemas} schema(s) to decode offline" if report.schemas else "")
                + f" -> {destination}"
            )
        )
    else:
        output.emit_json(
            {
                "file": str(destination),
                "events": report.events,
                "total": report.total,
                "groups": report.groups,
                "lag_note": report.lag_note,
                "schemas": report.schemas,
            },
            "json",
        )
    if report.lag_note:
        output.stderr.print(output.safe(f"note: {report.lag_note}", "yellow"))
    if sys.stderr.isatty():
        output.stderr.print(output.safe(f"open it offline: workbench --broker local:{destination} tail {topics[0]}"))


# --------------------------------------------------------------------------- replay


@app.command()
def replay(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A topic of the profile, or a capture file (FILE.db).")],
    to: Annotated[str | None, typer.Option("--to", help="Destination topic (on the profile's broker).")] = None,
    to_origin: Annotated[
        bool, typer.Option("--to-origin", help="Each dead letter back where its headers say it came from.")
    ] = False,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="From a capture file: only this topic (repeatable).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help=f"Where to start: {POSITION_HELP}. Default: beginning.")
    ] = None,
    filter_expr: Annotated[
        str | None, typer.Option("--filter", help="Only events matching this expression (as for tail).")
    ] = None,
    max_events: Annotated[int | None, typer.Option("--max", "-n", min=1, help="At most N events.")] = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Publish (without it: a dry run that shows what would be).")
    ] = False,
    until: Annotated[
        str | None, typer.Option("--until", help="With --to-origin: where to stop (as dlq summary).")
    ] = None,
    peek: Annotated[
        int | None, typer.Option("--peek", min=1, metavar="N", help="With --to-origin: N messages of a RabbitMQ queue.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.1, help="With --to-origin: at most this many events a second.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="With --to-origin: why (kept in the audit log).")
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Re-publish events, e.g. from a dead-letter topic, keeping keys, values and headers.

    --to-origin (instead of --to) sends each dead letter home: to the topic its Spring Kafka or
    Kafka Connect headers name, or the exchange and routing key of its RabbitMQ x-death (see
    `workbench dlq summary`), with workbench-redriven-from naming the dead letter. The dry run is
    the plan (how many to which destination). --execute first checks every destination for copies
    redriven before (so a second run sends nothing twice; a RabbitMQ exchange cannot be read back,
    so there the audit log is checked), then sends, at --rate events a second when given, and
    appends a record to the audit log (`workbench dlq history`).

    Dead-letter headers are stripped (__connect.errors.*, kafka_dlt-*, x-death, x-first-death-*,
    x-last-death-*) and workbench-replayed-from (topic/partition/offset) and workbench-replayed-at
    are added. A dry run unless --execute; --execute is refused on read-only profiles; each
    event is confirmed (exit 7 if any is not).

    Examples:
      workbench replay orders.DLT --to orders --filter 'headers["kafka_dlt-exception-message"] != null'
      workbench replay incident.db --topic orders --to orders-replay --execute
      workbench replay orders.DLT --to-origin --execute --rate 50 --reason "schema fix deployed"
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    if (to is None) == (not to_origin):
        fail(UsageError("give --to TOPIC or --to-origin (one of them)", hint="--to-origin sends dead letters home"))
    if to_origin:
        from workbench.cli.dlq import redrive

        if topic:
            fail(UsageError("--topic selects topics of a capture file; --to-origin reads SOURCE only"))
        redrive(target, source, start=start, until=until, filter_expr=filter_expr, max_events=max_events, peek=peek,
                rate=rate, reason=reason, execute=execute, fmt=fmt)  # fmt: skip
        return
    if until is not None or peek is not None or rate is not None or reason is not None:
        fail(UsageError("--until, --peek, --rate and --reason go with --to-origin"))
    assert to is not None
    from workbench.triage import replay as replaying

    try:
        if execute:
            target.profile.ensure_writable(f"replay to {to!r}")
        position = parse_position(start or "beginning")
        match = compile_filter(filter_expr)
        reader = replaying.replay_source(source, topic, target)
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service

    async def body() -> tuple[replaying.ReplayPlan, service.PublishReport | None]:
        async with service.connect(reader.target, originals=True) as conn:  # what is sent: the originals
            plan = await replaying.plan_replay(conn, reader, to, position, limit=max_events, match=match)
        if not execute or not plan.items:
            return plan, None
        async with service.connect(target) as conn:
            with scan_progress(
                len(plan.items), counted=lambda r: r.confirmed + len(r.failures), minimum=1000
            ) as progress:
                report = await replaying.execute_replay(conn, plan, on_progress=progress)
        return plan, report

    plan, report = run(body)
    items = list(plan.items)
    if not items:
        output.stderr.print(output.safe(f"nothing to replay from {source}"))
        return
    if report is None:
        _render_dry_run(items, to, fmt, target)
        output.stderr.print(
            output.safe(
                f"dry run: {len(items)} event(s) would be published to {to!r}; add --execute to publish", "yellow"
            )
        )
        return
    from workbench.cli.publish_report import report_publish

    problem = report_publish(to, report, fmt)
    if problem:
        fail(problem)


def _render_dry_run(items, to: str, fmt: output.Format, target: config.Target) -> None:
    """The plan as a person or a file sees it: redacted by the [mask] rules (what is sent is not)."""
    from workbench.broker import Event

    shown = [Event(to, 0, 0, None, r.event.key, r.event.value, r.event.headers) for r in items]
    redactor = config.redactor_of(target.profile)
    if redactor is not None:
        shown = redactor.redact_all(shown)
    if fmt != "table":
        from workbench.events.envelope import event_to_envelope

        def envelope(r, event) -> dict:
            doc = event_to_envelope(event)
            for name in ("partition", "offset", "timestamp"):  # left to the destination broker
                del doc[name]
            return {"replayed_from": r.origin, **doc, "stripped": list(r.stripped)}

        output.emit_json([envelope(r, e) for r, e in zip(items, shown, strict=True)], fmt)
        return
    output.print_table(
        ["FROM", "KEY", "STRIPPED", "VALUE"],
        [
            [
                r.origin,
                "-" if e.key is None else codecs.preview(e.key, 30),
                ", ".join(r.stripped) or "-",
                codecs.preview(e.value, 80),
            ]
            for r, e in zip(items, shown, strict=True)
        ],
        title=output.safe(f"would publish to {to}", "bold"),
    )
