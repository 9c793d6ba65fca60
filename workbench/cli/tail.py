"""Read verbs: tail (positions, follow, filters, formats) and peek (RabbitMQ queues)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from workbench.broker import BrokerError, TopicInfo
from workbench.cli import output
from workbench.cli.base import (
    REDACT_HELP,
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
from workbench.partitioning import PARTITIONER_HELP, plan_key_search
from workbench.positions import POSITION_HELP, UNTIL_HELP, check_window, parse_position, parse_until
from workbench.scan import ScanReport


class TailFormat(StrEnum):
    table = "table"
    json = "json"  # events are a stream: one JSON envelope per line, as jsonl (and as the global -o json)
    jsonl = "jsonl"
    raw = "raw"


class PeekFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


def event_format(ctx: typer.Context, local: StrEnum | None) -> str:
    """table, jsonl or raw: ``-o json`` (the verb's or the global one) writes JSON lines, one envelope
    per event, since a stream of events (``--follow``) never ends to close one document."""
    chosen = local.value if local else fmt_of(ctx, None)
    return "jsonl" if chosen == "json" else chosen


# --------------------------------------------------------------------------- tail


class PartitionerChoice(StrEnum):
    both = "both"
    murmur2 = "murmur2"
    crc32 = "crc32"


@app.command()
def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic to read.")],
    start: Annotated[
        str | None,
        typer.Option("--from", help=f"Where to start: {POSITION_HELP}. Default: beginning, or end with --follow."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help=f"Where the window ends (a bounded read): {UNTIL_HELP}."),
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-P", help="Only this partition (repeatable).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            "-k",
            help="Only events with this key (its UTF-8 bytes), reading only the partitions the key can be in "
            "(see --partitioner); the hash used is said on stderr.",
        ),
    ] = None,
    partitioner: Annotated[
        PartitionerChoice,
        typer.Option("--partitioner", help=f"How producers placed --key: {PARTITIONER_HELP}."),
    ] = PartitionerChoice.both,
    all_partitions: Annotated[
        bool,
        typer.Option(
            "--all-partitions",
            help="With --key: read every partition (a key placed by an explicit partition, a custom "
            "partitioner, or before partitions were added).",
        ),
    ] = False,
    max_events: Annotated[int | None, typer.Option("--max", "-n", min=1, help="Stop after N events.")] = None,
    max_matches: Annotated[
        int | None,
        typer.Option("--max-matches", min=1, help="Stop after N matches (of --filter and --key)."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep waiting for new events.")] = False,
    filter_expr: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="Only events matching this expression, e.g. 'value.status == \"failed\"'; @NAME is a named "
            "filter of the profile file (see `workbench filters`).",
        ),
    ] = None,
    output_format: Annotated[
        TailFormat | None,
        typer.Option(
            "--output",
            "-o",
            help="table (safe one-line previews), jsonl (the exact envelope, one event per line), "
            "json (the same, plus what a schema decoded: value_decoded, value_schema), raw (values).",
        ),
    ] = None,
    decoded: Annotated[
        bool,
        typer.Option(
            "--decoded",
            help="With -o jsonl: add what a schema decoded (value_decoded, value_schema) beside the exact bytes.",
        ),
    ] = False,
    redact: Annotated[bool, typer.Option("--redact", help=REDACT_HELP)] = False,
) -> None:
    """Read events from a position, optionally following new ones; never commits, never consumes.

    A bounded read (no --follow) ends with a line on stderr that begins with `scanned`: per partition
    the offsets read, the events scanned and matched, and whether its window was read to its end
    (with -o json or jsonl, the same figures as JSON after `scanned `). A --follow read says `live`
    on stderr once it is attached: every event published from then on is shown.

    Examples:
      workbench tail orders --from -5
      workbench tail payments --follow --filter 'type == "PaymentFailed"'
      workbench tail orders --key order-42 --from 2026-11-27T08:00:00Z --until 2026-11-27T09:00:00Z
      workbench tail payments --filter @failed --max-matches 1
      workbench tail orders --from beginning -o jsonl > orders.jsonl
      workbench tail orders -o jsonl --redact > for-the-ticket.jsonl
    """
    from workbench import config

    target = target_of(ctx)
    fmt = event_format(ctx, output_format)
    decoded = decoded or (output_format.value if output_format else fmt_of(ctx, None)) == "json"
    try:
        if fmt == "raw" and sys.stdout.isatty():
            raise UsageError(
                "-o raw writes payload bytes unchanged, escape sequences included: not to a terminal",
                hint="redirect it to a file or pipe, or use -o table (safe previews) or -o jsonl",
            )
        if follow and until is not None:
            raise UsageError("--until ends the read; --follow never does", hint="choose one of them")
        if key is not None and partition:
            raise UsageError(
                "--key chooses the partitions to read itself; --partition would contradict it",
                hint="drop --partition, or use --partitioner / --all-partitions",
            )
        position = parse_position(start or ("end" if follow else "beginning"))
        end = parse_until(until) if until is not None else None
        if end is not None:
            check_window(position, end)
        named = {n: f.expression for n, f in config.named_filters(target.profile).items()} if filter_expr else {}
        match = compile_filter(filter_expr, named)
        originals = wants_originals(
            target, machine=fmt != "table", redact=redact, what=f"write -o {fmt} without --redact"
        )
    except WorkbenchError as exc:
        fail(exc)
    limit = min(n for n in (max_events, max_matches) if n is not None) if max_events or max_matches else None
    from workbench import service

    printer = output.EventPrinter(fmt, decoded=decoded)  # type: ignore[arg-type]
    machine = fmt != "table"
    report: ScanReport | None = None

    async def body() -> int:
        nonlocal report
        shown = 0
        async with service.connect(target, originals=originals) as conn:
            info = await conn.describe_topic(topic)
            if notice := info.metadata.get("read_notice"):
                output.stderr.print(output.safe(f"note: {notice}", "yellow"))
            chosen, wanted, search = partition, match, None
            if key is not None:
                search = plan_key_search(
                    key.encode(), max(len(info.partitions), 1), partitioner.value, all_partitions=all_partitions
                )
                output.stderr.print(output.safe(search.explain()))
                chosen = list(search.partitions)
                wanted = search.matches(match)
            if not follow:
                report = ScanReport.plan(info, position, chosen, end, search.explain() if search else None)
            total = None if follow else service.expected_count(info, position, chosen)
            with scan_progress(total) as on_scanned:
                async for batch in service.tail(
                    conn,
                    topic,
                    position,
                    partitions=chosen,
                    follow=follow,
                    limit=limit,
                    match=wanted,
                    on_scanned=on_scanned,
                    on_outage=report_outage,
                    on_dropped=report_dropped,
                    until=end,
                    report=report,
                    on_live=(lambda: report_live(topic, info)) if follow else None,
                ):
                    printer.print_batch(batch)
                    shown += len(batch)
        return shown

    flag = "--max-matches" if max_matches and limit == max_matches else "--max"
    try:
        shown = run(body)
    except typer.Exit as exc:
        if report is not None and exc.exit_code:  # an error or Ctrl-C: say what was read (a closed pipe: quiet)
            report.stop("stopped before the end (interrupted or failed)")
            report_scan(report, machine, flag)
        raise
    if report is not None:
        report_scan(report, machine, flag)
    if not follow and sys.stderr.isatty() and report is None:
        output.stderr.print(f"{output.count(shown)} event(s)")


def report_scan(report: ScanReport, machine: bool, limit_flag: str) -> None:
    """The completeness line: ``scanned ...`` in words, or followed by the figures as JSON."""
    if report.stopped and report.stopped.startswith("stopped after"):
        report.stopped += f" ({limit_flag})"
    if machine:
        sys.stderr.write("scanned " + json.dumps(report.as_dict(), ensure_ascii=True) + "\n")
        sys.stderr.flush()
    else:
        output.stderr.print(output.safe(report.line()))


def report_live(topic: str, info: TopicInfo) -> None:
    """A follow read is attached: from now on it sees every event published (scripts wait for it)."""
    what = {"exchange": "the tap queue is bound to exchange"}.get(info.kind, f"reading {info.kind}")
    output.stderr.print(output.safe(f"live: {what} {topic!r}; every event published from now on is shown", "green"))


def report_outage(error: BrokerError | None) -> None:
    """A follow read lost its broker (and keeps retrying), or reads again: say so on stderr."""
    if error is None:
        output.stderr.print("resumed", style="green")
    else:
        output.stderr.print(output.safe(f"broker unreachable, retrying... ({error})", "yellow"))


def report_dropped(total: int) -> None:
    """The broker side dropped events this read was too slow to take (e.g. a capped tap queue)."""
    output.stderr.print(
        output.safe(
            f"warning: at least {total} event(s) dropped so far by the broker-side tap's cap: "
            "this read is slower than the publishers",
            "yellow",
        )
    )


@app.command()
def peek(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="Queue to peek (a classic or quorum queue).")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Take up to N messages.")] = 10,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    output_format: Annotated[
        PeekFormat | None,
        typer.Option(
            "--output",
            "-o",
            help="table (safe one-line previews), jsonl or json (the exact envelope, one message per line).",
        ),
    ] = None,
    redact: Annotated[bool, typer.Option("--redact", help=REDACT_HELP)] = False,
) -> None:
    """Show the messages at the head of a queue by taking them and requeueing them (asks first).

    A queue hands each message to one consumer, so peeking takes the messages and puts them back
    at once: RabbitMQ keeps their place but marks them redelivered (a quorum queue also counts a
    delivery attempt). Refused on read-only profiles.

    Example: workbench peek billing --count 5 --yes
    """
    from workbench import service
    from workbench.broker import Unsupported

    target = target_of(ctx)
    fmt = event_format(ctx, output_format)
    try:
        target.profile.ensure_writable(f"peek queue {queue!r} (requeues its messages)")
        originals = wants_originals(
            target, machine=fmt != "table", redact=redact, what=f"write -o {fmt} without --redact"
        )
        if not service.capabilities(target).peek_requeue:  # before any warning about requeueing
            raise Unsupported(
                f"the {target.adapter} adapter cannot peek a queue: peek takes and requeues the messages "
                "of a RabbitMQ classic or quorum queue",
                hint=f"read it with `workbench tail {queue}`",
            )
    except (WorkbenchError, BrokerError) as exc:
        fail(exc)

    async def peekable(conn) -> TopicInfo:
        """The queue, once it is known to be one that can be peeked (else Unsupported / NotFound)."""
        info = await conn.describe_topic(queue)
        if info.kind != "queue":
            follow = " --follow" if info.kind == "exchange" else ""
            raise Unsupported(
                f"{info.kind} {queue!r} cannot be peeked: only queues are",
                hint=f"read it with `workbench tail {queue}{follow}`",
            )
        return info

    def warn(info: TopicInfo) -> None:
        notice = info.metadata.get("peek_notice") or "they are marked redelivered and consumers may see them again"
        output.stderr.print(
            output.safe(f"peeking takes up to {count} message(s) from {queue!r} and requeues them at once: {notice}")
        )

    async def check() -> TopicInfo:
        async with service.connect(target) as conn:
            return await peekable(conn)

    checked = False
    if not yes:  # check, warn, ask, then peek: a prompt never holds a connection open
        warn(run(check))
        if not sys.stdin.isatty():
            fail(UsageError(f"peeking {queue!r} needs confirmation", hint="pass --yes in scripts"))
        typer.confirm(f"Peek {queue!r} and requeue its messages?", abort=True, err=True)
        checked = True
    printer = output.EventPrinter(fmt)  # type: ignore[arg-type]

    async def body() -> int:
        async with service.connect(target, originals=originals) as conn:
            if not checked:
                warn(await peekable(conn))
            events = await conn.peek(queue, count)
        printer.print_batch(events)
        return len(events)

    shown = run(body)
    if sys.stderr.isatty():
        output.stderr.print(f"{shown} message(s), requeued")
