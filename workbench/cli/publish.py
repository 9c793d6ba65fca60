"""publish: events from a value, a file or a pipe, every one confirmed or reported."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from workbench.broker import (
    BrokerError,
    Connection,
    NotFound,
    OutgoingEvent,
    PublishResult,
    TopicInfo,
)
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
from workbench.cli.publish_report import Placed, report_publish
from workbench.errors import BadInput, UsageError, WorkbenchError
from workbench.events.envelope_input import parse_header
from workbench.journal import Journal
from workbench.publishing import (
    Batch,
    Checked,
    Encoding,
    LineInput,
    LineParser,
    PublishReport,
    batch_size_for,
)

#: ``(lineno, line) -> event``, None for a blank line; BadInput names the line
LineParse = Callable[[int, bytes], OutgoingEvent | None]

# --------------------------------------------------------------------------- publish


@app.command()
def publish(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Destination topic.")],
    file: Annotated[
        str | None,
        typer.Option("--file", "-F", help="One event per line (JSONL envelope or plain value); - for stdin."),
    ] = None,
    value: Annotated[str | None, typer.Option("--value", "-v", help="The value of a single event.")] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Key (for --value, or for file events without one).")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="NAME=VALUE, added to every event (repeatable).")
    ] = None,
    partition: Annotated[
        int | None, typer.Option("--partition", "-P", min=0, help="Explicit partition for --value.")
    ] = None,
    count: Annotated[int, typer.Option("--count", "-c", min=1, help="Publish the --value N times.")] = 1,
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="At most N events per second.")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Every input line is a value, never an envelope.")] = False,
    tombstones: Annotated[
        bool, typer.Option("--tombstones", help='Allow "value": null (deletes the key on a compacted topic).')
    ] = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Publish lines as they arrive (for a pipe that does not end, like tail --follow); "
            "a malformed line then stops the command after the events before it.",
        ),
    ] = False,
    value_schema: Annotated[
        str | None,
        typer.Option(
            "--value-schema",
            help="Encode each JSON value with this registered schema: SUBJECT, SUBJECT:VERSION or SUBJECT:latest "
            "(Avro, Protobuf or JSON Schema, in the Confluent wire format; needs schema_registry in the profile).",
        ),
    ] = None,
    key_schema: Annotated[
        str | None, typer.Option("--key-schema", help="Encode each JSON key with this registered schema (as above).")
    ] = None,
    schema_message: Annotated[
        str | None,
        typer.Option(
            "--schema-message", help="Protobuf: the message of the value's schema to encode (default: the first)."
        ),
    ] = None,
    key_schema_message: Annotated[
        str | None,
        typer.Option(
            "--key-schema-message", help="Protobuf: the message of the key's schema to encode (default: the first)."
        ),
    ] = None,
    journal: Annotated[
        str | None,
        typer.Option(
            "--journal",
            "-J",
            help="Record the input lines the broker confirmed in this file; a re-run with "
            "the same journal and input skips them (resume after a failure without sending them twice).",
        ),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Publish events and confirm each one; exit 7 if any was not confirmed.

    Input lines: a JSON object with a "value" field is an envelope (key, headers, partition,
    timestamp); any other line is the value itself. `tail -o jsonl` output is valid input.
    The whole input is checked before anything is published, unless --stream.
    With --journal, confirmed lines are recorded as they are confirmed and a re-run skips them.

    Examples:
      workbench publish orders --value '{"orderId": 42}' --key 42 -H ce_type=OrderPlaced
      workbench tail orders -o jsonl | workbench publish orders-copy --file -
      workbench tail orders --follow -o jsonl | workbench publish orders-copy --file - --stream
      workbench publish orders --file big.jsonl --journal big.journal   # again after a failure: the rest
      workbench publish orders --file orders.jsonl --value-schema orders-value:latest
    """
    started = _command_started()
    # Events and their results come and go in batches, without reference cycles: the cyclic GC
    # would only rescan the batches in flight (and everything imported), a tenth of the run.
    if gc.isenabled():
        gc.freeze()
        gc.disable()
        ctx.call_on_close(_collect_again)  # (in a test's process, the next test collects as usual)
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    book: Journal | None = None
    lines: LineInput | None = None
    skipped = 0

    def check_input(stop: threading.Event) -> None:
        """Every line, before anything is sent; then the journal (it needs the count and the digest)."""
        nonlocal book, skipped
        assert lines is not None
        checked = lines.check(parse, stop=stop)
        if journal is not None:
            book = Journal.open(
                journal,
                topic=topic,
                broker=target.profile.shown_broker(),
                lines=checked.events,
                digest=lines.digest(key, header or [], raw, tombstones),
            )
            skipped = _skipped(book, checked)

    try:
        target.profile.ensure_writable(f"publish to {topic!r}")
        encode = _schema_encoding(target, value_schema, key_schema, schema_message, key_schema_message)
        if stream:
            if file is None:
                raise UsageError("--stream reads --file (or --file - for stdin)")
            if journal is not None:
                raise UsageError("--journal needs the whole input first: it does not go with --stream")
        elif journal is not None and file is None:
            raise UsageError("--journal records input lines: it goes with --file")
        if (file is None) == (value is None):
            raise UsageError(
                "give exactly one of --file or --value", hint="e.g. --value '{\"id\": 1}' or --file events.jsonl"
            )
        if file is not None and (count != 1 or partition is not None):
            raise UsageError(
                "--count and --partition apply to --value only", hint="put partition in each envelope line"
            )
        if file is not None:
            parse = _parser(file, key, header or [], raw, tombstones, encode)
        if stream:
            assert file is not None
            source = sys.stdin.buffer if file == "-" else _open_input(file)
        elif file is not None:
            lines = LineInput(file)
            if not lines.regular:
                check_input(threading.Event())  # a pipe: read (and spooled) whole before connecting
        else:
            assert value is not None
            single = _value_event(value, key, header or [], partition, encode)
    except (WorkbenchError, BrokerError) as exc:
        if lines is not None:
            lines.close()
        fail(exc)
    from workbench import publishing

    placed = None if fmt == "table" else Placed(fmt)  # -o json lists the confirmed events

    def record(batch: Batch, results: Sequence[PublishResult]) -> None:
        if book is not None:
            book.record([batch.linenos[r.index] for r in results if r.error is None])
        if placed is not None:
            placed.add(batch, results)

    async def body() -> PublishReport:
        async with contextlib.AsyncExitStack() as stack:
            unchecked = check_input if lines is not None and lines.checked is None else None
            conn, info = await _connect_checking(stack, target, topic, unchecked)
            size = batch_size_for(rate)
            if stream:
                checking = _checking_partitions(parse, info, topic)
                batches: Any = _stream_batches(source, checking, parse.source, min(size, 1000))
                return await publishing.send(conn, topic, batches, rate=rate, started=started, on_results=record)
            if lines is not None:
                assert lines.checked is not None
                _check_partitions(info, topic, lines.checked, lines.source)
                total = lines.checked.events - skipped
                if not total:
                    return PublishReport()
                batches = lines.batches(parse, batch_size=size, skip=book.confirmed if book is not None else ())
            else:
                if problem := _partition_problem(info, topic, "--value", single.partition):
                    raise problem
                total = count
                batches = publishing.repeated(single, count, "--value", batch_size=size)
            with _publish_progress(total) as on_progress:
                return await publishing.send(
                    conn,
                    topic,
                    batches,
                    rate=rate,
                    total=total,
                    started=started,
                    on_progress=on_progress,
                    on_results=record,
                )

    try:
        report = run(body)
    finally:
        if book is not None:
            book.close()
        if lines is not None:
            lines.close()
    report.skipped = skipped
    problem = report_publish(topic, report, fmt, placed)
    if report.input_error is not None:
        fail(report.input_error)
    if problem is not None:
        fail(problem)


def _collect_again() -> None:
    gc.unfreeze()
    gc.enable()


def _command_started() -> float:
    """When this process started, in ``time.monotonic()`` terms, where the system says (Linux's
    /proc): the rate publish reports is over the whole command. Elsewhere: now."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()
    return time.monotonic() - age if 0 <= age < 60 else time.monotonic()


async def _connect_checking(
    stack: contextlib.AsyncExitStack, target: Any, topic: str, check: Callable[[threading.Event], None] | None
) -> tuple[Connection, TopicInfo | None]:
    """The connection (closed with ``stack``) and the destination topic, found while ``check`` reads
    the whole input in a thread; the connection is told to get ready to publish meanwhile (Kafka's
    idempotent producer waits 0.5-1 s for its id). Nothing is sent before the check has passed, and
    a problem of the input is the error reported, as soon as it is found, whatever the broker does."""
    from workbench import service

    async def connected() -> tuple[Connection, TopicInfo | None]:
        conn = await stack.enter_async_context(service.connect(target))
        info = await _destination(conn, topic)
        if check is not None:
            await conn.prepare_publish(topic)
        return conn, info

    if check is None:
        return await connected()
    stop = threading.Event()
    checking = asyncio.ensure_future(asyncio.to_thread(check, stop))
    connecting = asyncio.ensure_future(connected())
    try:
        done, _ = await asyncio.wait((checking, connecting), return_when=asyncio.FIRST_EXCEPTION)
        if checking in done:
            checking.result()  # the input's problem, at once
        await checking  # the input's problem first, the broker's after
        return await connecting
    finally:
        stop.set()  # (a check that ended already is not affected)
        for task in (checking, connecting):
            if not task.done():
                task.cancel()
            task.add_done_callback(_retrieved)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """An abandoned task's outcome, taken (its error is not the one reported)."""
    if not task.cancelled():
        task.exception()


async def _destination(conn: Any, topic: str) -> TopicInfo | None:
    """The topic, asked for before anything is sent: a missing one is NotFound (exit 5) with nothing
    published. None when the broker cannot describe it (the publish then says what it says)."""
    try:
        return await conn.describe_topic(topic)
    except NotFound:
        raise
    except BrokerError:
        return None


def _partition_problem(
    info: TopicInfo | None, topic: str, origin: str, partition: int | None, *, hint: str = "nothing was published"
) -> WorkbenchError | BrokerError | None:
    """An explicit partition the topic does not have, named by where it came from (file and line,
    or --partition); None when it is fine or the broker places events itself (no partitions listed)."""
    if info is None or not info.partitions or partition is None:
        return None
    known = [p.partition for p in info.partitions]
    if partition in known:
        return None
    shown = f"partitions {min(known)}..{max(known)}" if len(known) > 1 else f"only partition {known[0]}"
    if origin.startswith("--value"):
        return NotFound(
            f"--partition {partition}: topic {topic!r} has no partition {partition} ({shown})",
            hint="nothing was published",
        )
    return BadInput(f"{origin}: field 'partition': topic {topic!r} has no partition {partition} ({shown})", hint=hint)


def _check_partitions(info: TopicInfo | None, topic: str, checked: Checked, source: str) -> None:
    """All or nothing: an out-of-range partition on any line stops the publish before the first event
    (the first line that names a partition the topic lacks is named)."""
    wrong = [(lineno, p) for p, lineno in checked.partitions.items() if _partition_problem(info, topic, "", p)]
    if wrong:
        lineno, p = min(wrong)
        raise _partition_problem(info, topic, f"{source}:{lineno}", p)  # type: ignore[misc]


def _checking_partitions(parse: LineParser, info: TopicInfo | None, topic: str) -> LineParse:
    """``--stream``: a line naming a partition the topic lacks stops the stream like a malformed line."""

    def checked(lineno: int, line: bytes) -> OutgoingEvent | None:
        event = parse(lineno, line)
        if (
            event is not None
            and event.partition is not None
            and (
                problem := _partition_problem(
                    info,
                    topic,
                    f"{parse.source}:{lineno}",
                    event.partition,
                    hint="--stream: the lines before it were published",
                )
            )
        ):
            raise problem
        return event

    return checked


def _skipped(book: Journal, checked: Checked) -> int:
    """How many of the checked events the journal has as confirmed (they are left out); says so."""
    if not book.confirmed:
        return 0
    skipped = len(book.confirmed)
    output.stderr.print(
        output.safe(
            f"journal {book.path}: {skipped} event(s) already confirmed are skipped, "
            f"{checked.events - skipped} left to publish"
        )
    )
    return skipped


def _value_event(
    value: str, key: str | None, headers: list[str], partition: int | None, encode: Encoding | None
) -> OutgoingEvent:
    key_bytes = None if key is None else key.encode()
    extra = tuple(parse_header(h, "--header") for h in headers)
    event = OutgoingEvent(value=value.encode(), key=key_bytes, headers=extra, partition=partition)
    return event if encode is None else encode("--value", event)


def _parser(
    file: str, key: str | None, headers: list[str], raw: bool, tombstones: bool, encode: Encoding | None = None
) -> LineParser:
    return LineParser(
        "stdin" if file == "-" else file,
        key=None if key is None else key.encode(),
        headers=tuple(parse_header(h, "--header") for h in headers),
        raw=raw,
        tombstones=tombstones,
        encode=encode,
    )


def _line_parser(
    file: str, key: str | None, headers: list[str], raw: bool, tombstones: bool, encode: Encoding | None = None
) -> Callable[[int, str], tuple[str, OutgoingEvent] | None]:
    """``(lineno, line) -> (origin, event)``, None for a blank line; BadInput names the line
    (a line as text: ``schemas check`` reads its input this way)."""
    parse = _parser(file, key, headers, raw, tombstones, encode)

    def parse_text(lineno: int, line: str) -> tuple[str, OutgoingEvent] | None:
        event = parse(lineno, line.encode("utf-8", "surrogateescape"))
        return None if event is None else (f"{parse.source}:{lineno}", event)

    return parse_text


def _schema_encoding(
    target: Any, value_schema: str | None, key_schema: str | None, message: str | None, key_message: str | None
) -> Encoding | None:
    """The encoding ``--value-schema`` / ``--key-schema`` ask for (schemas looked up once, now)."""
    if message is not None and value_schema is None:
        raise UsageError("--schema-message goes with --value-schema")
    if key_message is not None and key_schema is None:
        raise UsageError("--key-schema-message goes with --key-schema")
    if value_schema is None and key_schema is None:
        return None
    if target.registry is None:
        raise UsageError(
            "--value-schema and --key-schema need a schema registry",
            hint='set schema_registry = "http://..." in the profile, or add ?schema_registry=URL to --broker',
        )
    from workbench import service
    from workbench.events.schemas.encoder import SchemaEncoder
    from workbench.events.schemas.formats import Mismatch

    registry = service.registry(target.registry)

    def lookup(spec: str | None, option: str, message: str | None, message_option: str) -> SchemaEncoder | None:
        try:
            return SchemaEncoder.lookup(registry, spec, option, message) if spec else None
        except Mismatch as exc:
            raise UsageError(f"{message_option}: {exc}") from None

    value_enc = lookup(value_schema, "--value-schema", message, "--schema-message")
    key_enc = lookup(key_schema, "--key-schema", key_message, "--key-schema-message")

    def encode(origin: str, event: OutgoingEvent) -> OutgoingEvent:
        value, key = event.value, event.key
        for part, encoder in (("value", value_enc), ("key", key_enc)):
            data = value if part == "value" else key
            if encoder is None or data is None:
                continue  # a tombstone stays a tombstone; an event without a key keeps none
            try:
                encoded = encoder.encode(data)
            except Mismatch as exc:
                where = f"{part}.{exc.field}" if exc.field else part
                raise BadInput(
                    f"{origin}: field {where!r}: {exc}",
                    hint=f"the {part} must fit the {encoder.describe()}; nothing was published",
                ) from None
            if part == "value":
                value = encoded
            else:
                key = encoded
        return OutgoingEvent(value, key, event.headers, event.partition, event.timestamp)

    return encode


def _open_input(file: str) -> BinaryIO:
    try:
        return open(file, "rb")  # noqa: SIM115 - read line by line while publishing, closed at exit
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None


async def _stream_batches(
    source: BinaryIO, parse: LineParse, name: str, batch_size: int = 1000
) -> AsyncIterator[Batch]:
    """Batches of whatever lines have arrived (at most ``batch_size``), read by a thread.

    The bounded queue holds the reader back when publishing is slower (backpressure); a
    malformed line ends the stream: the batch before it is published, then its error is raised.
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
        events: list[OutgoingEvent] = []
        linenos: list[int] = []
        stopped: WorkbenchError | BrokerError | None = None
        for item in arrived:
            if item is None:
                break
            lineno, data = item
            try:
                event = parse(lineno, data.removesuffix(b"\n").removesuffix(b"\r"))
            except (WorkbenchError, BrokerError) as exc:
                stopped = exc
                break
            if event is not None:
                events.append(event)
                linenos.append(lineno)
        if events:
            yield Batch(events, _origin_of(name, linenos), linenos)
        if stopped is not None:
            raise stopped
        if arrived[-1] is None:
            return


def _origin_of(source: str, linenos: list[int]) -> Callable[[int], str]:
    return lambda i: f"{source}:{linenos[i]}"


def _read_input(file: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None


def _publish_progress(total: int) -> scan_progress:
    """Confirmed + failed / total on stderr for inputs of 1,000 events or more."""
    return scan_progress(total, counted=lambda report: report.confirmed + len(report.failures), minimum=1000)
