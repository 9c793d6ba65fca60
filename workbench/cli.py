"""The `workbench` command line (typer).

stdout carries data only; diagnostics, progress and errors go to stderr. Every error becomes a
documented exit code through :func:`workbench.errors.exit_code_for`. Nothing here imports Textual
or a broker client library: adapters are loaded by name, only when a verb connects.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn, TypeVar

import typer

from workbench import config, output
from workbench.broker import BrokerError, OutgoingEvent
from workbench.errors import BadInput, ExitCode, PublishFailed, UsageError, WorkbenchError, exit_code_for
from workbench.positions import POSITION_HELP, RESET_TO_HELP, parse_position

T = TypeVar("T")

app = typer.Typer(
    name="workbench",
    help="A terminal workbench for event-driven systems: browse topics, tail events, inspect consumer "
    "lag, publish test events. With no command it opens the workbench on the connected broker.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # unexpected errors are reported by fail(), never with locals
    context_settings={"help_option_names": ["-h", "--help"]},
)
topics_app = typer.Typer(
    help="List topics with partition and event counts; create and delete them.\n\n"
    "Examples: workbench topics -o json; workbench topics create orders --partitions 3",
    rich_markup_mode=None,
)
app.add_typer(topics_app, name="topics")
offsets_app = typer.Typer(
    help="A consumer group's committed offsets: reset them (a dry run unless --execute).\n\n"
    "Example: workbench offsets reset billing-service --topic orders --to earliest",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(offsets_app, name="offsets")


class TableOrJson(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


class TailFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    raw = "raw"


class PeekFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"


@dataclass
class Globals:
    profile: str | None
    broker: str | None
    output: TableOrJson

    profile_from_env: bool = False

    def target(self) -> config.Target:
        if self.profile and self.broker and not self.profile_from_env:
            raise UsageError("--profile and --broker are exclusive", hint="choose one way to connect")
        chosen = config.url_profile(self.broker) if self.broker else config.load_config().profile(self.profile)
        return config.resolve(chosen)


def fail(exc: BaseException) -> NoReturn:
    """Print an error the user can act on and exit with its code."""
    code = exit_code_for(exc)
    if code is ExitCode.INTERRUPTED:
        output.stderr.print("interrupted")
    elif code is ExitCode.ERROR and not isinstance(exc, WorkbenchError | BrokerError):
        output.stderr.print(output.safe(f"error: unexpected {type(exc).__name__}: {exc}", "red"))
        output.stderr.print("this is a bug in Event Workbench; please report it with the command you ran")
    else:
        for n, line in enumerate(str(exc).splitlines() or [""]):  # e.g. a filter and its caret line
            output.stderr.print(output.safe(f"error: {line}" if n == 0 else f"  {line}", "red"))
        hint = getattr(exc, "hint", None)
        if hint:
            output.stderr.print(output.safe(f"hint: {hint}", "yellow"))
    raise typer.Exit(int(code))


def run(body: Callable[[], Awaitable[T]]) -> T:
    """Run an async verb; every error becomes a message on stderr and an exit code."""
    try:
        return asyncio.run(body())
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except (WorkbenchError, BrokerError, KeyboardInterrupt) as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: say so, without a traceback full of locals
        fail(exc)


def globals_of(ctx: typer.Context) -> Globals:
    return ctx.find_root().obj


def fmt_of(ctx: typer.Context, local: TableOrJson | None) -> output.Format:
    return (local or globals_of(ctx).output).value  # type: ignore[return-value]


def target_of(ctx: typer.Context) -> config.Target:
    try:
        return globals_of(ctx).target()
    except (WorkbenchError, BrokerError) as exc:  # e.g. a malformed --broker URL
        fail(exc)


OutputOption = Annotated[
    TableOrJson | None, typer.Option("--output", "-o", help="table (for people) or json/jsonl (for scripts).")
]


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", envvar="WORKBENCH_PROFILE", help="Profile name from workbench.toml.")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option("--broker", "-b", help="Connect without a profile: kafka://HOST:PORT, amqp://..., local:PATH."),
    ] = None,
    output_format: Annotated[
        TableOrJson, typer.Option("--output", "-o", help="table, json or jsonl.")
    ] = TableOrJson.table,
) -> None:
    source = ctx.get_parameter_source("profile")
    from_env = source is not None and source.name == "ENVIRONMENT"  # WORKBENCH_PROFILE yields to --broker
    ctx.obj = Globals(profile=profile, broker=broker, output=output_format, profile_from_env=from_env)
    if ctx.invoked_subcommand is None:
        overview(ctx)


def overview(ctx: typer.Context) -> None:
    """`workbench` alone: the full-screen workbench on the profile (Textual is imported only here).

    When stdin or stdout is not a terminal (a script, a pipe) it prints where it is and the topics instead.
    """
    target = target_of(ctx)
    if sys.stdin.isatty() and sys.stdout.isatty():
        from workbench.tui.app import run_app

        run_app(target)
        return
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            output.stderr.print(output.safe(f"profile {target.profile.name}: {target.profile.shown_broker()}", "bold"))
            output.render_topics(await conn.list_topics(), "table")
    run(body)
    output.stderr.print("next: workbench tail TOPIC --from -10 | workbench lag | workbench publish TOPIC --value TEXT")


# --------------------------------------------------------------------------- browse


@topics_app.callback(invoke_without_command=True)
def topics(
    ctx: typer.Context,
    internal: Annotated[bool, typer.Option("--internal", help="Also show the broker's internal topics.")] = False,
    output_format: OutputOption = None,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            found = [t for t in await conn.list_topics() if internal or not t.internal]
        output.render_topics(found, fmt_of(ctx, output_format))
    run(body)


@topics_app.command("create")
def topics_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    partitions: Annotated[int, typer.Option("--partitions", min=1, help="Number of partitions.")] = 1,
) -> None:
    """Create a topic.  Example: workbench topics create orders --partitions 3"""
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        target.profile.ensure_writable(f"create topic {name!r}")
        async with service.connect(target) as conn:
            info = await conn.create_topic(name, partitions)
        output.stderr.print(output.safe(f"created {info.name} with {len(info.partitions)} partition(s)"))
    run(body)


@topics_app.command("delete")
def topics_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a topic and every event in it (asks first).  Example: workbench topics delete scratch --yes"""
    target = target_of(ctx)
    from workbench import service

    try:
        target.profile.ensure_writable(f"delete topic {name!r}")
    except WorkbenchError as exc:
        fail(exc)
    if not yes:
        if not sys.stdin.isatty():
            fail(UsageError(f"deleting {name!r} needs confirmation", hint="pass --yes in scripts"))
        typer.confirm(f"Delete topic {name!r} and all its events?", abort=True, err=True)

    async def body() -> None:
        async with service.connect(target) as conn:
            await conn.delete_topic(name)
        output.stderr.print(output.safe(f"deleted {name}"))
    run(body)


@app.command()
def describe(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic name.")],
    output_format: OutputOption = None,
) -> None:
    """Partitions with first/last offsets and event counts, and the topic's configuration.

    Example: workbench describe orders
    """
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            info = await conn.describe_topic(topic)
        output.render_describe(info, fmt_of(ctx, output_format))
    run(body)


# --------------------------------------------------------------------------- tail


@app.command()
def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic to read.")],
    start: Annotated[
        str | None,
        typer.Option("--from", help=f"Where to start: {POSITION_HELP}. Default: beginning, or end with --follow."),
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-P", help="Only this partition (repeatable).")
    ] = None,
    max_events: Annotated[int | None, typer.Option("--max", "-n", min=1, help="Stop after N events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep waiting for new events.")] = False,
    filter_expr: Annotated[
        str | None,
        typer.Option("--filter", help="Only events matching this expression, e.g. 'value.status == \"failed\"'."),
    ] = None,
    output_format: Annotated[
        TailFormat | None,
        typer.Option("--output", "-o", help="table (safe one-line previews), jsonl (exact envelope), raw (values)."),
    ] = None,
) -> None:
    """Read events from a position, optionally following new ones. Never commits, never consumes.

    Examples:
      workbench tail orders --from -5
      workbench tail payments --follow --filter 'type == "PaymentFailed"'
      workbench tail orders --from beginning -o jsonl > orders.jsonl
    """
    target = target_of(ctx)
    fmt = output_format.value if output_format else ("table" if fmt_of(ctx, None) == "table" else "jsonl")
    try:
        if fmt == "raw" and sys.stdout.isatty():
            raise UsageError(
                "-o raw writes payload bytes unchanged, escape sequences included: not to a terminal",
                hint="redirect it to a file or pipe, or use -o table (safe previews) or -o jsonl",
            )
        position = parse_position(start or ("end" if follow else "beginning"))
        match = _compile_filter(filter_expr)
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service

    printer = output.EventPrinter(fmt)  # type: ignore[arg-type]

    async def body() -> int:
        shown = 0
        async with service.connect(target) as conn:
            info = await conn.describe_topic(topic)
            if notice := info.metadata.get("read_notice"):
                output.stderr.print(output.safe(f"note: {notice}", "yellow"))
            total = None if follow else service.expected_count(info, position, partition)
            with _scan_progress(total) as on_scanned:
                async for batch in service.tail(
                    conn, topic, position, partitions=partition, follow=follow,
                    limit=max_events, match=match, on_scanned=on_scanned,
                ):
                    printer.print_batch(batch)
                    shown += len(batch)
        return shown

    shown = run(body)
    if not follow and sys.stderr.isatty():
        output.stderr.print(f"{shown} event(s)")


@app.command()
def peek(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="Queue to peek (a classic or quorum queue).")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Take up to N messages.")] = 10,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    output_format: Annotated[
        PeekFormat | None,
        typer.Option("--output", "-o", help="table (safe one-line previews) or jsonl (exact envelope)."),
    ] = None,
) -> None:
    """Show the messages at the head of a queue by taking them and putting them back (asks first).

    A queue hands each message to one consumer, so this re-orders the queue and marks the
    messages redelivered. Refused on read-only profiles.

    Example: workbench peek billing --count 5 --yes
    """
    target = target_of(ctx)
    fmt = output_format.value if output_format else ("table" if fmt_of(ctx, None) == "table" else "jsonl")
    try:
        target.profile.ensure_writable(f"peek queue {queue!r} (requeues its messages)")
    except WorkbenchError as exc:
        fail(exc)
    output.stderr.print(
        output.safe(
            f"peeking takes up to {count} messages from {queue!r} and puts them back: they move to the "
            "back of the queue (its order changes) and are marked redelivered; consumers may see them again"
        )
    )
    if not yes:
        if not sys.stdin.isatty():
            fail(UsageError(f"peeking {queue!r} needs confirmation", hint="pass --yes in scripts"))
        typer.confirm(f"Peek {queue!r} and requeue its messages?", abort=True, err=True)
    from workbench import service

    printer = output.EventPrinter(fmt)  # type: ignore[arg-type]

    async def body() -> int:
        async with service.connect(target) as conn:
            events = await conn.peek(queue, count)
        printer.print_batch(events)
        return len(events)

    shown = run(body)
    if sys.stderr.isatty():
        output.stderr.print(f"{shown} message(s), requeued")


def _compile_filter(text: str | None) -> Callable[[Any], bool] | None:
    if text is None:
        return None
    from workbench.filters import FilterError, compile_filter

    try:
        return compile_filter(text).matches
    except FilterError as exc:
        raise UsageError(f"--filter: {exc}", hint="see `workbench tail --help` and the README's filter section") from None


class _scan_progress:
    """Progress on stderr while long work runs, only when stderr is a terminal.

    The callback takes an increment (``counted`` None) or a report whose running total
    ``counted(report)`` gives.
    """

    def __init__(self, total: int | None, *, counted: Callable[[Any], int] | None = None, minimum: int = 0) -> None:
        self.progress = None
        self.counted = counted
        if sys.stderr.isatty() and (total is None or total >= minimum):
            from rich.progress import Progress

            self.progress = Progress(console=output.stderr, transient=True)
            self.task = self.progress.add_task("working", total=total)

    def __enter__(self) -> Callable[[Any], None] | None:
        if self.progress is None:
            return None
        self.progress.start()
        if self.counted is None:
            return lambda n: self.progress.advance(self.task, n)  # type: ignore[union-attr]
        return lambda report: self.progress.update(self.task, completed=self.counted(report))  # type: ignore[union-attr,misc]

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# --------------------------------------------------------------------------- publish


@app.command()
def publish(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Destination topic.")],
    file: Annotated[
        str | None, typer.Option("--file", "-F", help="One event per line (JSONL envelope or plain value); - for stdin.")
    ] = None,
    value: Annotated[str | None, typer.Option("--value", "-v", help="The value of a single event.")] = None,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Key (for --value, or for file events without one).")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="NAME=VALUE, added to every event (repeatable).")] = None,
    partition: Annotated[int | None, typer.Option("--partition", "-P", min=0, help="Explicit partition for --value.")] = None,
    count: Annotated[int, typer.Option("--count", "-c", min=1, help="Publish the --value N times.")] = 1,
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="At most N events per second.")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Every input line is a value, never an envelope.")] = False,
    tombstones: Annotated[
        bool, typer.Option("--tombstones", help='Allow "value": null (deletes the key on a compacted topic).')
    ] = False,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Publish lines as they arrive (for a pipe that does not end, like tail --follow); "
                     "a malformed line then stops the command after the events before it."),
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Publish events and confirm each one; exit 7 if any was not confirmed.

    Input lines: a JSON object with a "value" field is an envelope (key, headers, partition,
    timestamp); any other line is the value itself. `tail -o jsonl` output is valid input.
    The whole input is checked before anything is published, unless --stream.

    Examples:
      workbench publish orders --value '{"orderId": 42}' --key 42 -H ce_type=OrderPlaced
      workbench tail orders -o jsonl | workbench publish orders-copy --file -
      workbench tail orders --follow -o jsonl | workbench publish orders-copy --file - --stream
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    try:
        target.profile.ensure_writable(f"publish to {topic!r}")
        if stream:
            if file is None:
                raise UsageError("--stream reads --file (or --file - for stdin)")
            parse = _line_parser(file, key, header or [], raw, tombstones)
            source = sys.stdin.buffer if file == "-" else _open_input(file)
        else:
            events = _events_to_publish(file, value, key, header or [], partition, count, raw, tombstones)
    except WorkbenchError as exc:
        fail(exc)
    from workbench import service

    stopped_by: list[WorkbenchError] = []  # a malformed line in --stream mode

    async def body() -> service.PublishReport:
        async with service.connect(target) as conn:
            if stream:
                batches = _stream_batches(source, parse, stopped_by)
                return await service.publish_batches(conn, topic, batches, rate=rate)
            with _publish_progress(len(events)) as on_progress:
                return await service.publish(conn, topic, events, rate=rate, on_progress=on_progress)

    report = run(body)
    problem = _report_publish(topic, report, fmt)
    if stopped_by or problem:
        fail(stopped_by[0] if stopped_by else problem)


def _events_to_publish(
    file: str | None, value: str | None, key: str | None, headers: list[str],
    partition: int | None, count: int, raw: bool, tombstones: bool = False,
) -> list[tuple[str, OutgoingEvent]]:
    if (file is None) == (value is None):
        raise UsageError("give exactly one of --file or --value", hint="e.g. --value '{\"id\": 1}' or --file events.jsonl")
    if value is not None:
        key_bytes = None if key is None else key.encode()
        extra = tuple(_parse_header(h) for h in headers)
        event = OutgoingEvent(value=value.encode(), key=key_bytes, headers=extra, partition=partition)
        return [(f"--value #{i + 1}", event) for i in range(count)] if count > 1 else [("--value", event)]
    if count != 1 or partition is not None:
        raise UsageError("--count and --partition apply to --value only", hint="put partition in each envelope line")
    parse = _line_parser(file, key, headers, raw, tombstones)
    events = [event for lineno, line in _read_lines(file) if (event := parse(lineno, line)) is not None]
    if not events:
        raise BadInput(f"{'stdin' if file == '-' else file}: no events (the input is empty)")
    return events


def _line_parser(
    file: str, key: str | None, headers: list[str], raw: bool, tombstones: bool
) -> Callable[[int, str], tuple[str, OutgoingEvent] | None]:
    """``(lineno, line) -> (origin, event)``, None for a blank line; BadInput names the line."""
    from workbench.envelope import InputError, parse_line

    source = "stdin" if file == "-" else file
    extra = tuple(_parse_header(h) for h in headers)
    key_bytes = None if key is None else key.encode()

    def parse(lineno: int, line: str) -> tuple[str, OutgoingEvent] | None:
        if not line.strip():
            return None
        try:
            event = parse_line(line, lineno, raw=raw, source=source)
        except InputError as exc:
            raise BadInput(str(exc), hint="use --raw to publish every line as it is") from None
        if event.value is None and not tombstones:
            raise BadInput(
                f"{source}:{lineno}: field 'value' is null: a tombstone, which deletes the key on a compacted topic",
                hint="pass --tombstones to publish null values",
            )
        if (key_bytes is not None and event.key is None) or extra:
            event = OutgoingEvent(
                event.value, event.key if event.key is not None else key_bytes,
                event.headers + extra, event.partition, event.timestamp,
            )
        return f"{source}:{lineno}", event

    return parse


def _open_input(file: str) -> BinaryIO:
    try:
        return open(file, "rb")  # noqa: SIM115 - read line by line while publishing, closed at exit
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None


async def _stream_batches(
    source: BinaryIO,
    parse: Callable[[int, str], tuple[str, OutgoingEvent] | None],
    stopped_by: list[WorkbenchError],
    batch_size: int = 1000,
) -> AsyncIterator[list[tuple[str, OutgoingEvent]]]:
    """Batches of whatever lines have arrived (at most ``batch_size``), read by a thread.

    The bounded queue holds the reader back when publishing is slower (backpressure); a
    malformed line ends the stream and is left in ``stopped_by``.
    """
    lines: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=4 * batch_size)

    def read() -> None:
        for lineno, data in enumerate(source, start=1):
            lines.put((lineno, data))
        lines.put(None)

    threading.Thread(target=read, name="publish-input", daemon=True).start()
    while True:
        try:  # a short timeout, so Ctrl-C is never stuck behind a quiet pipe
            arrived = [await asyncio.to_thread(lines.get, timeout=0.2)]
        except queue.Empty:
            continue
        while arrived[-1] is not None and len(arrived) < batch_size and not lines.empty():
            arrived.append(lines.get_nowait())
        batch = []
        for item in arrived:
            if item is None:
                break
            lineno, data = item
            text = data.decode("utf-8", "surrogateescape").removesuffix("\n").removesuffix("\r")
            try:
                parsed = parse(lineno, text)
            except WorkbenchError as exc:
                stopped_by.append(exc)
                break
            if parsed is not None:
                batch.append(parsed)
        if batch:
            yield batch
        if arrived[-1] is None or stopped_by:
            return


def _read_lines(file: str) -> Iterator[tuple[int, str]]:
    """Numbered lines; bytes that are not UTF-8 survive as surrogates, so plain values stay exact."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        yield lineno, line[:-1] if line.endswith("\r") else line


def _parse_header(text: str) -> tuple[str, bytes]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--header {text!r} is not NAME=VALUE")
    return name, value.encode()


def _publish_progress(total: int) -> _scan_progress:
    """Confirmed + failed / total on stderr for inputs of 1,000 events or more."""
    return _scan_progress(total, counted=lambda report: report.confirmed + len(report.failures), minimum=1000)


def _report_publish(topic: str, report: Any, fmt: output.Format) -> PublishFailed | None:
    """Print what was confirmed and what failed; the error to exit with, if any event was not confirmed."""
    failed = len(report.failures)
    if fmt == "table":
        where = ""
        if report.total == 1 and report.first is not None:
            where = f" at partition {report.first.partition}, offset {report.first.offset}"
        speed = f" in {report.seconds:.2f} s ({report.confirmed / max(report.seconds, 1e-6):,.0f} events/s)" if report.total >= 1000 else ""
        output.stdout.print(
            output.safe(f"{report.confirmed} confirmed, {failed} failed, {report.unsent} not sent -> {topic}{where}{speed}")
        )
    else:
        output.emit_json(
            {"topic": topic, "confirmed": report.confirmed, "failed": failed, "not_sent": report.unsent,
             "seconds": round(report.seconds, 3),
             "failures": [{"origin": f.origin, "error": type(f.error).__name__, "message": str(f.error)}
                          for f in report.failures]},
            fmt,
        )
    for f in report.failures[:20]:
        output.stderr.print(output.safe(f"{f.origin}: {type(f.error).__name__}: {f.error}", "red"))
    if failed > 20:
        output.stderr.print(f"... and {failed - 20} more failures")
    if failed or report.unsent:
        return PublishFailed(f"{failed + report.unsent} of {report.total} event(s) were not confirmed")
    return None


# --------------------------------------------------------------------------- groups and lag


@app.command()
def groups(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Consumer groups with state, protocol and members.  Example: workbench groups"""
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            found = sorted(await conn.groups(), key=lambda g: g.group_id)
        output.render_groups(found, fmt_of(ctx, output_format))
    run(body)


@app.command()
def lag(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this consumer group.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh, with verdicts and lag in time.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between refreshes.")] = 5.0,
    iterations: Annotated[int | None, typer.Option("--iterations", min=1, help="Stop --watch after N refreshes.")] = None,
    output_format: OutputOption = None,
) -> None:
    """Consumer lag per group and partition: committed offset, end offset, lag.

    "-" means the group never committed on that partition. With --watch the figures refresh and
    each partition gets a verdict over the last 10 refreshes (Burrow's rules: OK, WARN lag growing,
    STALL committed offset not moving, STOP no commits and no live member, REWIND offset went back)
    and an estimated lag in time.

    Examples: workbench lag --group billing-service; workbench lag --watch --interval 2
    """
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    if watch and fmt == "json":
        fmt = "jsonl"  # one parseable line per group and refresh, not a stream of documents
    from workbench import service
    from workbench.lag import LagTracker

    async def body() -> None:
        async with service.connect(target) as conn:
            if not watch:
                output.render_lag(await service.lag(conn, group), fmt)
                return
            tracker = LagTracker()
            refresh = 0
            while iterations is None or refresh < iterations:
                if refresh:
                    await asyncio.sleep(interval)
                found = await service.lag(conn, group)
                tracker.observe(found)
                refresh += 1
                if fmt == "table":
                    output.stderr.print(f"refresh {refresh}, every {interval:g} s (Ctrl-C to stop)")
                output.render_lag(found, fmt, tracker)
    run(body)


@offsets_app.command("reset")
def offsets_reset(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="Consumer group.")],
    topic: Annotated[
        list[str],
        typer.Option("--topic", "-t", help="TOPIC (every partition) or TOPIC:P[,P...] (repeatable)."),
    ],
    to: Annotated[str, typer.Option("--to", help=f"Where to move the group: {RESET_TO_HELP}.")],
    execute: Annotated[bool, typer.Option("--execute", help="Commit the new offsets (default: show the plan only).")] = False,
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
    from workbench import offsets, service

    try:
        if execute:  # before anything is read or computed
            target.profile.ensure_writable(f"change the offsets of group {group!r}")
        reset_to = offsets.parse_reset_to(to)
        selection = [offsets.parse_topic_partitions(t) for t in topic]
        offsets.ensure_reset_supported(service.capabilities(target), target.adapter, execute=execute)
    except (WorkbenchError, BrokerError) as exc:
        fail(exc)

    async def body() -> None:
        async with service.connect(target) as conn:
            plan = await offsets.plan_offsets_reset(conn, group, selection, reset_to)
            if not execute:
                output.render_reset(plan, fmt)
                return
            applied = await offsets.execute_offsets_reset(conn, plan)
        output.render_reset(plan, fmt, applied)
    run(body)


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    ctx: typer.Context,
    live: Annotated[bool, typer.Option("--live", help="Keep producing and consuming until Ctrl-C.")] = False,
    rate: Annotated[float, typer.Option("--rate", min=0.1, help="Events per second with --live.")] = 20.0,
    orders: Annotated[int, typer.Option("--orders", min=1, help="Number of order sagas to seed.")] = 200,
    force: Annotated[bool, typer.Option("--force", help="Seed again even if the demo topics already hold events.")] = False,
) -> None:
    """Seed an order-platform scenario: orders, payments, inventory, shipping; sagas; lagging groups.

    Example: workbench demo && workbench lag
    """
    target = target_of(ctx)
    from workbench import demo as scenario
    from workbench import service

    async def body() -> None:
        target.profile.ensure_writable("seed the demo")
        async with service.connect(target) as conn:
            summary = await scenario.seed(conn, orders=orders, force=force)
            for line in scenario.describe(summary).splitlines():
                output.stderr.print(output.safe(line))
            if live:
                output.stderr.print("producing live events; Ctrl-C to stop")
                await scenario.run_live(conn, rate=rate)
    run(body)


# --------------------------------------------------------------------------- profiles and adapters


@app.command()
def profiles(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """The profiles of workbench.toml, secrets masked.  Example: workbench profiles"""
    try:
        cfg = config.load_config()
    except WorkbenchError as exc:
        fail(exc)
    found = list(cfg.profiles.values()) or [config.builtin_profile()]
    default = cfg.default_profile or (found[0].name if len(found) == 1 else None)
    rows = [
        {"name": p.name, "default": p.name == default, "broker": p.shown_broker(),
         "read_only": p.read_only, "production": p.production, "source": p.source}
        for p in found
    ]
    fmt = fmt_of(ctx, output_format)
    if fmt != "table":
        output.emit_json(rows, fmt)
        return
    output.print_table(
        ("PROFILE", "DEFAULT", "BROKER", "READ-ONLY", "SOURCE"),
        ((r["name"], "*" if r["default"] else "", r["broker"], "yes" if r["read_only"] else "no", r["source"])
         for r in rows),
    )


@app.command()
def adapters(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Installed broker adapters and the URL schemes they serve (none is imported).  Example: workbench adapters"""
    from workbench import plugins

    found = plugins.available()
    fmt = fmt_of(ctx, output_format)
    if fmt != "table":
        output.emit_json([{"name": a.name, "schemes": list(a.schemes), "target": a.target,
                           "distribution": a.distribution} for a in found], fmt)
        return
    output.print_table(("ADAPTER", "SCHEMES", "PROVIDED BY"),
                        ((a.name, ", ".join(a.schemes), a.target) for a in found))


def main() -> None:
    """Console-script entry point: what escapes the verbs (a closed pipe, a bug) still ends cleanly."""
    try:
        app()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except Exception as exc:  # noqa: BLE001
        try:
            fail(exc)
        except typer.Exit as exit_:
            sys.exit(exit_.exit_code)
