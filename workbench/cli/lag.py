"""Consumer groups' lag (with --watch verdicts) and offsets reset."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from workbench.broker import BrokerError, GroupLag, Timeout, Unreachable
from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of, run, target_of
from workbench.errors import LagAlarm, UsageError, WorkbenchError
from workbench.events.envelope import format_timestamp
from workbench.positions import RESET_TO_HELP

T = TypeVar("T")
Progress = Callable[[int, int], None]

offsets_app = typer.Typer(
    help="A consumer group's committed offsets: reset them (a dry run unless --execute).\n\n"
    "Example: workbench offsets reset billing-service --topic orders --to earliest",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(offsets_app, name="offsets")


#: Progress shows only once reading the lag takes longer than this (a quick answer does not flicker).
PROGRESS_AFTER_S = 0.3


lag_app = typer.Typer(
    rich_markup_mode=None,
    invoke_without_command=True,
)
app.add_typer(lag_app, name="lag")

#: Refreshes between two full reads of every group while watching (idle groups in between are reused).
FULL_READ_EVERY = 6


@lag_app.callback(invoke_without_command=True)
def lag(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this consumer group.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh, with verdicts and lag in time.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between refreshes.")] = 5.0,
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=1, help="Stop --watch after N refreshes.")
    ] = None,
    window: Annotated[
        int, typer.Option("--window", min=2, help="Refreshes a verdict looks back over (Burrow's window).")
    ] = 10,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="VERDICTS",
            help="With --watch: exit 11 once a group's verdict is one of these (e.g. STALL,STOP,NOCONSUMER).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Watch one window (--window refreshes), report, and exit (cron, CI).")
    ] = False,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            metavar="HOST:PORT",
            help="Refresh and expose the figures at http://HOST:PORT/metrics for Prometheus.",
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Table: list the groups with no lag too (default: one line counts them).")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Consumer lag per group and partition: committed offset, end offset, lag.

    The table leads with what needs attention: groups worst first (verdict, then lag in time, then
    lag in events), and the groups with no lag folded into one count line on stderr (--all lists
    them; so does --group). -o json/jsonl always carry every group, in name order. A RabbitMQ queue
    that holds messages and has no consumer is listed first, with the verdict NOCONSUMER.

    "-" means the group never committed on that partition. With --watch the figures refresh and
    each partition gets a verdict over the last --window refreshes (Burrow's rules: OK, WARN lag
    not shrinking, STALL committed offset not moving, STOP no commits for longer than the window
    and no live member, REWIND offset went back, NOCONSUMER messages and no consumer) and an
    estimated lag in time. -o jsonl then writes one line per verdict change (the rule, its figures).
    Groups with no member and no lag are read again every 6th refresh only.

    --fail-on exits with code 11 as soon as a group reaches one of the verdicts; --once takes one
    window of refreshes, reports the verdicts and exits (11 if --fail-on matched, else 0).
    --serve HOST:PORT keeps refreshing and serves the figures in Prometheus' text format.

    Examples:
      workbench lag
      workbench lag --group billing-service
      workbench lag --watch --interval 2 --all
      workbench lag --watch -o jsonl --fail-on STALL,STOP,NOCONSUMER
      workbench lag --once --window 3 --interval 10 --fail-on STALL,STOP
      workbench lag --serve 127.0.0.1:9308
      workbench lag explain billing-service
    """
    if ctx.invoked_subcommand is not None:
        return
    from workbench.lag import parse_verdicts

    try:
        alarm_on = None
        if fail_on is not None:
            try:
                alarm_on = parse_verdicts(fail_on)
            except ValueError as exc:
                raise UsageError(f"--fail-on {fail_on!r}: {exc}") from None
            if not (watch or once or serve):
                raise UsageError("--fail-on judges verdicts, which take a window", hint="add --watch or --once")
        address = parse_address(serve) if serve is not None else None
    except WorkbenchError as exc:
        fail(exc)
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    watching = watch or once or serve is not None
    if watching and fmt == "json":
        fmt = "jsonl"  # one parseable line per change, not a stream of documents
    from workbench import service
    from workbench.cli import lag_json, lag_table
    from workbench.lag import LagTracker
    from workbench.lag_watch import GroupView, IncrementalRefresh, VerdictChanges, alarms, change_record, evaluate

    every = show_all or group is not None  # a group asked for by name is shown, lag or not

    async def body() -> None:
        async with service.connect(target) as conn:

            def read(ids: Sequence[str] | None) -> Callable[[Progress | None], Awaitable[list[GroupLag]]]:
                def go(on_progress: Progress | None) -> Awaitable[list[GroupLag]]:
                    if ids is None:
                        return service.lag(conn, group, on_progress=on_progress)
                    return conn.lag(ids, on_progress=on_progress)

                return go

            if not watching:
                found = await with_progress(read(None))
                if fmt == "table":
                    lag_table.render(found, None, show_all=every)
                else:
                    lag_json.write(found, fmt)
                return
            tracker = LagTracker(window=window)
            refresh = IncrementalRefresh(
                lambda ids: with_progress(read(ids)), full_every=1 if group else FULL_READ_EVERY
            )
            changes = VerdictChanges()
            judged: dict[str, GroupView] = {}  # the last view of every group, renewed when read again
            exporter = None
            if address is not None:
                from workbench.lag_metrics import LagExporter

                exporter = LagExporter(*address)
                output.stderr.print(f"serving the lag figures at {exporter.url} (Ctrl-C to stop)")
            limit = window if once else iterations
            done = 0
            outage = BrokerOutage(interval)
            try:
                while limit is None or done < limit:
                    if done or outage.since is not None:
                        await asyncio.sleep(outage.wait())
                    started = time.monotonic()
                    try:
                        found = await refresh()
                    except (Timeout, Unreachable) as exc:  # slow or away: say so, try again, never die of it
                        outage.failed(exc)
                        if exporter is not None:
                            exporter.failed()
                        continue
                    outage.answered()
                    tracker.observe(refresh.fresh)
                    done += 1
                    last = once and done == limit
                    if once and not last:
                        continue  # --once reports the window's verdicts, at its end
                    renewed = {g.group_id for g in refresh.fresh}
                    judged = {
                        g.group_id: judged[g.group_id]
                        for g in found
                        if g.group_id not in renewed and g.group_id in judged
                    }
                    fresh = evaluate((g for g in found if g.group_id not in judged), tracker)
                    judged.update((v.group.group_id, v) for v in fresh)
                    views = [judged[g.group_id] for g in found]
                    if exporter is not None:
                        exporter.update(views, time.monotonic() - started)
                    if fmt == "table":
                        if watch or once:
                            output.stderr.print(f"refresh {done}, every {interval:g} s (Ctrl-C to stop)")
                            lag_table.render(found, tracker, show_all=every)
                    elif watch or once:
                        stamp = format_timestamp(found[0].observed_at) if found else None
                        lines = [change_record(c, stamp) for c in changes.update(fresh)]
                        if lines:
                            output.emit_json(lines, "jsonl")
                        if watch:
                            output.stderr.print(f"refresh {done}: {len(lines):,} verdict change(s)")
                    if alarm_on is not None:
                        raise_alarm(alarms(views, alarm_on), alarm_on)
            finally:
                if exporter is not None:
                    exporter.close()

    run(body)


@lag_app.command("explain")
def explain(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The consumer group (RabbitMQ: the queue).")],
    samples: Annotated[int, typer.Option("--samples", min=2, help="Reads of the lag the verdict is judged on.")] = 4,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between two reads.")] = 2.0,
    top: Annotated[int, typer.Option("--top", min=1, help="Explain this many of the worst partitions.")] = 5,
    dead_letters: Annotated[
        str | None,
        typer.Option(
            "--dead-letters",
            metavar="TOPIC-OR-QUEUE",
            help="Look the stuck event up here (default: the profile's [profiles.NAME.dead_letters] GROUP).",
        ),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Why a group is behind: for its worst partitions, the owner, the verdict and the rule with
    its figures, lag in events and time, the time to drain, and the event it is stuck at.

    The lag is read --samples times, --interval s apart (a consumer that commits every 5 s needs a
    window longer than that before STALL means stalled). For each partition that is behind: the
    member that owns it (client id, host), the verdict and the rule that fired with the numbers it
    used, lag in events and in time (now minus the stuck event's timestamp), the time to drain at
    the rates of the window, and the event at the committed offset, shown as `tail` shows it: the
    likely poison message (RabbitMQ: the head of the queue, peeked: requeued, marked
    redelivered). Where the profile names the group's dead-letter topic or queue
    ([profiles.NAME.dead_letters] GROUP = "orders.DLT"), or --dead-letters does, its last 10,000
    events are searched for the stuck event's key and correlation id.

    Examples:
      workbench lag explain billing-service
      workbench lag explain billing-service --dead-letters billing.DLT -o json
      workbench --broker amqp://localhost lag explain invoices --samples 2 --interval 5
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    from workbench import config, service
    from workbench.cli import lag_explain_out
    from workbench.events.correlation import rules_from_config
    from workbench.lag_explain import explain as explain_group

    source = dead_letters or target.profile.dead_letters.get(group)
    caps = service.capabilities(target)
    try:
        rules = rules_from_config(config.load_config())
    except WorkbenchError as exc:
        fail(exc)

    async def body() -> None:
        async with service.connect(target) as conn:
            found = await explain_group(
                conn,
                group,
                samples=samples,
                interval=interval,
                top=top,
                dead_letters=source,
                can_peek=caps.peek_requeue and not target.profile.read_only,  # peeking requeues
                rules=rules,
            )
        lag_explain_out.render(found, fmt)

    run(body)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9308`` for IPv6) for --serve."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--serve {text!r} is not HOST:PORT", hint="for example --serve 127.0.0.1:9308")
    return host, int(port)


def raise_alarm(found: list, fail_on: frozenset) -> None:
    """Say which groups reached which verdict (and why), then end with LAG_ALARM."""
    if not found:
        return
    for v in found:
        a = v.assessment
        why = f": {a.rule} ({a.because})" if a is not None and a.because else (f": {a.rule}" if a else "")
        output.stderr.print(output.safe(f"alarm: {v.group.group_id} {v.verdict.name}{why}", "red"))
    names = ",".join(sorted(x.name for x in fail_on))
    raise LagAlarm(f"{len(found)} group(s) reached a verdict of --fail-on {names}")


class BrokerOutage:
    """What `lag --watch` says while refreshes fail because the broker is slow or away.

    One line when it starts (the error, and that it retries), none per retry, one when a refresh
    answers again. Retries back off from the interval up to 30 s.
    """

    MAX_WAIT_S = 30.0

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.since: float | None = None
        self.attempts = 0

    def wait(self) -> float:
        if self.since is None:
            return self.interval
        return min(self.interval * 2 ** (self.attempts - 1), self.MAX_WAIT_S)

    def failed(self, exc: BrokerError) -> None:
        self.attempts += 1
        if self.since is None:
            self.since = time.monotonic()
            output.stderr.print(
                output.safe(
                    f"the broker is slow or not answering ({exc}); the refresh is retried until it answers"
                    " (Ctrl-C to stop)",
                    "yellow",
                )
            )

    def answered(self) -> None:
        if self.since is not None:
            output.stderr.print(f"resumed: the broker answered again after {time.monotonic() - self.since:.0f} s")
        self.since, self.attempts = None, 0


async def with_progress(
    read: Callable[[Callable[[int, int], None] | None], Awaitable[T]],
    *,
    console: Console | None = None,
    terminal: bool | None = None,
    after_s: float = PROGRESS_AFTER_S,
) -> T:
    """Await ``read(on_progress)``; when it takes longer than ``after_s`` and stderr is a terminal,
    show what is going on (groups read / to read where the adapter says, else a spinner) and the
    time spent, then clear the line. A big cluster's refresh takes seconds."""
    console = console or output.stderr
    if not (sys.stderr.isatty() if terminal is None else terminal):
        return await read(None)
    seen: dict[str, int] = {}
    work = asyncio.ensure_future(read(lambda done, total: seen.update(done=done, total=total)))
    finished, _ = await asyncio.wait({work}, timeout=after_s)
    if finished:
        return work.result()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    what = "reading consumer lag"
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = progress.add_task(what, total=None)
    try:
        with progress:
            while not work.done():
                if seen:
                    progress.update(task, description=f"{what}: {seen['done']:,} of {seen['total']:,} groups")
                await asyncio.wait({work}, timeout=0.1)
    finally:
        work.cancel()  # when we are cancelled (Ctrl-C); a no-op once it is done
    return work.result()


@offsets_app.command("reset")
def offsets_reset(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="Consumer group.")],
    topic: Annotated[
        list[str],
        typer.Option("--topic", "-t", help="TOPIC (every partition) or TOPIC:P[,P...] (repeatable)."),
    ],
    to: Annotated[str, typer.Option("--to", help=f"Where to move the group: {RESET_TO_HELP}.")],
    execute: Annotated[
        bool, typer.Option("--execute", help="Commit the new offsets (default: show the plan only).")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Move a group's committed offsets; a dry run (old -> new per partition) unless --execute.

    Targets outside a partition's [start, end] are clamped, and the clamping is shown. --execute is
    refused on read-only profiles and unless the group is Empty or Dead (no live member that would
    overwrite the change), checked again right before the commit; a group that `groups` does not list
    but that has committed offsets counts as Empty. Afterwards the committed offsets are read back.

    Examples:
      workbench offsets reset billing-service --topic orders --to earliest
      workbench offsets reset billing-service --topic orders:0,2 --to 1200 --execute
      workbench offsets reset analytics --topic orders --topic payments --to 2026-11-27T08:00:00Z
      workbench offsets reset analytics --topic payments --to shift:-10 -o json
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    from workbench import offsets_reset, service

    try:
        if execute:  # before anything is read or computed
            target.profile.ensure_writable(f"change the offsets of group {group!r}")
        reset_to = offsets_reset.parse_reset_to(to)
        selection = [offsets_reset.parse_topic_partitions(t) for t in topic]
        offsets_reset.ensure_reset_supported(service.capabilities(target), target.adapter, execute=execute)
    except (WorkbenchError, BrokerError) as exc:
        fail(exc)

    async def body() -> None:
        async with service.connect(target) as conn:
            plan = await offsets_reset.plan_offsets_reset(conn, group, selection, reset_to)
            if not execute:
                output.render_reset(plan, fmt)
                return
            applied = await offsets_reset.execute_offsets_reset(conn, plan)
        output.render_reset(plan, fmt, applied)

    run(body)
