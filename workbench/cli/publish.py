"""publish: events from a value, a file or a pipe, every one confirmed or reported."""

from __future__ import annotations

import asyncio
import gc
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from workbench.broker import (
    BrokerError,
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
from workbench.errors import BadInput, PublishFailed, UsageError, WorkbenchError
from workbench.events.envelope import parse_header
from workbench.journal import Journal, input_digest

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
        typer.Option("--schema-message", help="Protobuf: the message of the schema to encode (default: the first)."),
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
    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    book: Journal | None = None
    linenos: list[int] = []
    skipped = 0
    try:
        target.profile.ensure_writable(f"publish to {topic!r}")
        encode = _schema_encoding(target, value_schema, key_schema, schema_message)
        if stream:
            if file is None:
                raise UsageError("--stream reads --file (or --file - for stdin)")
            if journal is not None:
                raise UsageError("--journal needs the whole input first: it does not go with --stream")
            parse = _line_parser(file, key, header or [], raw, tombstones, encode)
            source = sys.stdin.buffer if file == "-" else _open_input(file)
        elif journal is not None:
            if file is None:
                raise UsageError("--journal records input lines: it goes with --file")
            data = _read_input(file)
            events, linenos = _parse_input(data, file, key, header or [], raw, tombstones, encode)
            book = Journal.open(
                journal,
                topic=topic,
                broker=target.profile.shown_broker(),
                lines=len(events),
                digest=input_digest(data, key, header or [], raw, tombstones),
            )
            before = len(events)
            events, linenos = _not_yet_confirmed(events, linenos, book)
            skipped = before - len(events)
        else:
            events = _events_to_publish(file, value, key, header or [], partition, count, raw, tombstones, encode)
    except (WorkbenchError, BrokerError) as exc:
        fail(exc)
    from workbench import service

    stopped_by: list[WorkbenchError | BrokerError] = []  # a malformed line in --stream mode
    origins: list[str] = [] if stream else [origin for origin, _ in events]
    placed: list[tuple[str, PublishResult]] | None = None if fmt == "table" else []  # for -o json

    def record(first: int, results: Any) -> None:
        if book is not None:
            book.record(linenos[first + r.index] for r in results if r.error is None)
        if placed is not None:
            placed.extend((origins[first + r.index], r) for r in results if r.error is None)

    async def body() -> service.PublishReport:
        async with service.connect(target) as conn:
            info = await _destination(conn, topic)
            if stream:
                checked = _checking_partitions(parse, info, topic)
                batches = _noting_origins(_stream_batches(source, checked, stopped_by), origins)
                return await service.publish_batches(conn, topic, batches, rate=rate, on_results=record)
            if not events:
                return service.PublishReport()
            _check_partitions(info, topic, events)
            with _publish_progress(len(events)) as on_progress:
                return await service.publish(conn, topic, events, rate=rate, on_progress=on_progress, on_results=record)

    try:
        report = run(body)
    finally:
        if book is not None:
            book.close()
    report.skipped = skipped
    problem = _report_publish(topic, report, fmt, placed)
    if stopped_by:
        fail(stopped_by[0])
    if problem is not None:
        fail(problem)


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
    info: TopicInfo | None, topic: str, origin: str, event: OutgoingEvent, *, hint: str = "nothing was published"
) -> WorkbenchError | BrokerError | None:
    """An explicit partition the topic does not have, named by where it came from (file and line,
    or --partition); None when it is fine or the broker places events itself (no partitions listed)."""
    if info is None or not info.partitions or event.partition is None:
        return None
    known = [p.partition for p in info.partitions]
    if event.partition in known:
        return None
    shown = f"partitions {min(known)}..{max(known)}" if len(known) > 1 else f"only partition {known[0]}"
    if origin.startswith("--value"):
        return NotFound(
            f"--partition {event.partition}: topic {topic!r} has no partition {event.partition} ({shown})",
            hint="nothing was published",
        )
    return BadInput(
        f"{origin}: field 'partition': topic {topic!r} has no partition {event.partition} ({shown})", hint=hint
    )


def _check_partitions(info: TopicInfo | None, topic: str, events: list[tuple[str, OutgoingEvent]]) -> None:
    """All or nothing: an out-of-range partition on any line stops the publish before the first event."""
    if info is None or not info.partitions:
        return
    for origin, event in events:
        if event.partition is not None and (problem := _partition_problem(info, topic, origin, event)):
            raise problem


def _checking_partitions(
    parse: Callable[[int, str], tuple[str, OutgoingEvent] | None], info: TopicInfo | None, topic: str
) -> Callable[[int, str], tuple[str, OutgoingEvent] | None]:
    """``--stream``: a line naming a partition the topic lacks stops the stream like a malformed line."""

    def checked(lineno: int, line: str) -> tuple[str, OutgoingEvent] | None:
        parsed = parse(lineno, line)
        if parsed is not None and (
            problem := _partition_problem(info, topic, *parsed, hint="--stream: the lines before it were published")
        ):
            raise problem
        return parsed

    return checked


async def _noting_origins(
    batches: AsyncIterator[list[tuple[str, OutgoingEvent]]], origins: list[str]
) -> AsyncIterator[list[tuple[str, OutgoingEvent]]]:
    """The batches unchanged; their origins noted, so results can name the lines they came from."""
    async for batch in batches:
        origins.extend(origin for origin, _ in batch)
        yield batch


def _not_yet_confirmed(
    events: list[tuple[str, OutgoingEvent]], linenos: list[int], book: Journal
) -> tuple[list[tuple[str, OutgoingEvent]], list[int]]:
    """The events whose lines the journal has not recorded as confirmed; says what it skips."""
    if not book.confirmed:
        return events, linenos
    keep = [i for i, lineno in enumerate(linenos) if lineno not in book.confirmed]
    skipped = len(events) - len(keep)
    output.stderr.print(
        output.safe(
            f"journal {book.path}: {skipped} event(s) already confirmed are skipped, {len(keep)} left to publish"
        )
    )
    return [events[i] for i in keep], [linenos[i] for i in keep]


def _events_to_publish(
    file: str | None,
    value: str | None,
    key: str | None,
    headers: list[str],
    partition: int | None,
    count: int,
    raw: bool,
    tombstones: bool = False,
    encode: Encoding | None = None,
) -> list[tuple[str, OutgoingEvent]]:
    if (file is None) == (value is None):
        raise UsageError(
            "give exactly one of --file or --value", hint="e.g. --value '{\"id\": 1}' or --file events.jsonl"
        )
    if value is not None:
        key_bytes = None if key is None else key.encode()
        extra = tuple(parse_header(h, "--header") for h in headers)
        event = OutgoingEvent(value=value.encode(), key=key_bytes, headers=extra, partition=partition)
        if encode is not None:
            event = encode("--value", event)
        return [(f"--value #{i + 1}", event) for i in range(count)] if count > 1 else [("--value", event)]
    if count != 1 or partition is not None:
        raise UsageError("--count and --partition apply to --value only", hint="put partition in each envelope line")
    assert file is not None  # exactly one of file and value, checked above
    return _parse_input(_read_input(file), file, key, headers, raw, tombstones, encode)[0]


def _parse_input(
    data: bytes,
    file: str,
    key: str | None,
    headers: list[str],
    raw: bool,
    tombstones: bool,
    encode: Encoding | None = None,
) -> tuple[list[tuple[str, OutgoingEvent]], list[int]]:
    """Every line checked before anything is sent: ``(origin, event)`` pairs and their line numbers.

    One tight loop (this is the hot path of a large publish); blank lines are skipped; bytes that
    are not UTF-8 survive as surrogates, so plain values stay exact.
    """
    parse = _line_parser(file, key, headers, raw, tombstones, encode)
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    events: list[tuple[str, OutgoingEvent]] = []
    linenos: list[int] = []
    add_event, add_lineno = events.append, linenos.append
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of new objects, no cycles: the cyclic GC would rescan them all
    try:
        for lineno, line in enumerate(lines, start=1):
            parsed = parse(lineno, line[:-1] if line.endswith("\r") else line)
            if parsed is not None:
                add_event(parsed)
                add_lineno(lineno)
    finally:
        if collecting:
            gc.enable()
    if not events:
        raise BadInput(f"{'stdin' if file == '-' else file}: no events (the input is empty)")
    return events, linenos


def _with_defaults(event: OutgoingEvent, key: bytes | None, extra: tuple[tuple[str, bytes], ...]) -> OutgoingEvent:
    """--key for events without one, --header added to every event."""
    return OutgoingEvent(
        event.value,
        event.key if event.key is not None else key,
        event.headers + extra,
        event.partition,
        event.timestamp,
    )


def _tombstone_refused(source: str, lineno: int) -> BadInput:
    return BadInput(
        f"{source}:{lineno}: field 'value' is null: a tombstone, which deletes the key on a compacted topic",
        hint="pass --tombstones to publish null values",
    )


def _line_parser(
    file: str, key: str | None, headers: list[str], raw: bool, tombstones: bool, encode: Encoding | None = None
) -> Callable[[int, str], tuple[str, OutgoingEvent] | None]:
    """``(lineno, line) -> (origin, event)``, None for a blank line; BadInput names the line."""
    from workbench.events.envelope import InputError, parse_line

    source = "stdin" if file == "-" else file
    extra = tuple(parse_header(h, "--header") for h in headers)
    key_bytes = None if key is None else key.encode()

    def parse(lineno: int, line: str) -> tuple[str, OutgoingEvent] | None:
        if not line or line.isspace():
            return None
        try:
            event = parse_line(line, lineno, raw=raw, source=source)
        except InputError as exc:
            raise BadInput(str(exc), hint="use --raw to publish every line as it is") from None
        if event.value is None and not tombstones:
            raise _tombstone_refused(source, lineno)
        if extra or (key_bytes is not None and event.key is None):
            event = _with_defaults(event, key_bytes, extra)
        origin = f"{source}:{lineno}"
        return origin, (event if encode is None else encode(origin, event))

    return parse


#: ``(origin, event) -> event`` with its key and/or value encoded by a schema; BadInput names the field.
Encoding = Callable[[str, OutgoingEvent], OutgoingEvent]


def _schema_encoding(
    target: Any, value_schema: str | None, key_schema: str | None, message: str | None
) -> Encoding | None:
    """The encoding ``--value-schema`` / ``--key-schema`` ask for (schemas looked up once, now)."""
    if value_schema is None and key_schema is None:
        if message is not None:
            raise UsageError("--schema-message goes with --value-schema or --key-schema")
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
    try:
        value_enc = SchemaEncoder.lookup(registry, value_schema, "--value-schema", message) if value_schema else None
        key_enc = SchemaEncoder.lookup(registry, key_schema, "--key-schema") if key_schema else None
    except Mismatch as exc:
        raise UsageError(f"--schema-message: {exc}") from None

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
    source: BinaryIO,
    parse: Callable[[int, str], tuple[str, OutgoingEvent] | None],
    stopped_by: list[WorkbenchError | BrokerError],
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


def _read_input(file: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None


def _publish_progress(total: int) -> scan_progress:
    """Confirmed + failed / total on stderr for inputs of 1,000 events or more."""
    return scan_progress(total, counted=lambda report: report.confirmed + len(report.failures), minimum=1000)


def position_dict(result: PublishResult) -> dict[str, int]:
    """Where a confirmed event landed, as far as the broker says (RabbitMQ confirms carry no offset)."""
    return {
        name: value for name, value in (("partition", result.partition), ("offset", result.offset)) if value is not None
    }


def _position_text(result: PublishResult | None) -> str:
    where = ", ".join(f"{name} {value}" for name, value in position_dict(result).items()) if result else ""
    return f" at {where}" if where else ""


def _report_publish(
    topic: str, report: Any, fmt: output.Format, placed: list[tuple[str, PublishResult]] | None = None
) -> Exception | None:
    """Print what was confirmed and what failed; the error to exit with, if any event was not confirmed.

    ``placed``: the confirmed events' origins and results, listed in machine output.
    When nothing was confirmed because the topic does not exist, that NotFound is the error (exit 5).
    """
    failed = len(report.failures)
    if fmt == "table":
        where = _position_text(report.first) if report.total == 1 else ""
        speed = (
            f" in {report.seconds:.2f} s ({report.confirmed / max(report.seconds, 1e-6):,.0f} events/s)"
            if report.total >= 1000
            else ""
        )
        skipped = f", {report.skipped:,} skipped (confirmed before, per the journal)" if report.skipped else ""
        output.stdout.print(
            output.safe(
                f"{report.confirmed:,} confirmed, {failed:,} failed, {report.unsent:,} not sent{skipped} -> {topic}{where}{speed}"
            )
        )
    else:
        document: dict[str, Any] = {
            "topic": topic,
            "confirmed": report.confirmed,
            "failed": failed,
            "not_sent": report.unsent,
            "skipped": report.skipped,
            "seconds": round(report.seconds, 3),
            "failures": [
                {"origin": f.origin, "error": type(f.error).__name__, "message": str(f.error)} for f in report.failures
            ],
        }
        if placed is not None:
            document["events"] = [{"origin": origin, **position_dict(result)} for origin, result in placed]
        output.emit_json(document, fmt)
    for f in report.failures[:20]:
        output.stderr.print(output.safe(f"{f.origin}: {type(f.error).__name__}: {f.error}", "red"))
    if failed > 20:
        output.stderr.print(f"... and {failed - 20:,} more failures")
    if not report.confirmed and report.failures and all(isinstance(f.error, NotFound) for f in report.failures):
        return report.failures[0].error  # e.g. the topic does not exist: exit 5, like every not found
    if failed or report.unsent:
        return PublishFailed(f"{failed + report.unsent:,} of {report.total:,} event(s) were not confirmed")
    return None
