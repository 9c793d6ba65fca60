"""Consumer groups' lag (with --watch verdicts) and offsets reset."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from workbench.broker import BrokerError, GroupLag, Timeout, Unreachable
from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of, run, target_of
from workbench.errors import WorkbenchError
from workbench.positions import RESET_TO_HELP

T = TypeVar("T")

offsets_app = typer.Typer(
    help="A consumer group's committed offsets: reset them (a dry run unless --execute).\n\n"
    "Example: workbench offsets reset billing-service --topic orders --to earliest",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(offsets_app, name="offsets")


#: Progress shows only once reading the lag takes longer than this (a quick answer does not flicker).
PROGRESS_AFTER_S = 0.3


@app.command()
def lag(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this consumer group.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh, with verdicts and lag in time.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between refreshes.")] = 5.0,
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=1, help="Stop --watch after N refreshes.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Table: list the groups with no lag too (default: one line counts them).")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Consumer lag per group and partition: committed offset, end offset, lag.

    The table leads with what needs attention: groups worst first (verdict, then lag in time, then
    lag in events), and the groups with no lag folded into one count line on stderr (--all lists
    them; so does --group). -o json/jsonl always carry every group, in name order.

    "-" means the group never committed on that partition. With --watch the figures refresh and
    each partition gets a verdict over the last 10 refreshes (Burrow's rules: OK, WARN lag growing,
    STALL committed offset not moving, STOP no commits for longer than the window and no live
    member, REWIND offset went back) and an estimated lag in time.

    Examples:
      workbench lag
      workbench lag --group billing-service
      workbench lag --watch --interval 2 --all
      workbench lag -o json > lag.json
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    if watch and fmt == "json":
        fmt = "jsonl"  # one parseable line per group and refresh, not a stream of documents
    from workbench import service
    from workbench.cli import lag_table
    from workbench.lag import LagTracker

    every = show_all or group is not None  # a group asked for by name is shown, lag or not

    def show(found: list[GroupLag], tracker: LagTracker | None) -> None:
        if fmt == "table":
            lag_table.render(found, tracker, show_all=every)
        else:
            output.render_lag(found, fmt, tracker)

    async def body() -> None:
        async with service.connect(target) as conn:

            def read(on_progress: Callable[[int, int], None] | None) -> Awaitable[list[GroupLag]]:
                return service.lag(conn, group, on_progress=on_progress)

            if not watch:
                show(await with_progress(read), None)
                return
            tracker = LagTracker()
            refresh = 0
            outage = BrokerOutage(interval)
            while iterations is None or refresh < iterations:
                if refresh or outage.since is not None:
                    await asyncio.sleep(outage.wait())
                try:
                    found = await with_progress(read)
                except (Timeout, Unreachable) as exc:  # slow or away: say so, try again, never die of it
                    outage.failed(exc)
                    continue
                outage.answered()
                tracker.observe(found)
                refresh += 1
                if fmt == "table":
                    output.stderr.print(f"refresh {refresh}, every {interval:g} s (Ctrl-C to stop)")
                show(found, tracker)

    run(body)


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
