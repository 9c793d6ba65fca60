"""The publish engine: how ``publish``, ``replay``, capture and the TUI's publish dialog send events.

:func:`send` publishes :class:`Batch` es on a connection and accounts for every event: confirmed
events are counted as each batch's results come back, only failures are kept, with their origins
(``events.jsonl:12``, ``--value #3``, ``orders.DLT/0/41``). While the broker confirms one batch the
next one is prepared (read and parsed), so that reading overlaps with sending, and no more than
two batches are in memory.

Input files keep the rule "the whole input is checked before anything is published" in two passes
(:class:`LineInput`): :meth:`LineInput.check` reads every line once, keeping nothing per event but
counters, the explicit partitions named (each with the first line naming it) and the problems
found; :meth:`LineInput.batches` reads the file again and parses it batch by batch as it is sent.
Standard input is spooled to a temporary file during the first pass. Memory does not grow with the
input; the file is read twice (from the page cache, usually).
"""

from __future__ import annotations

import asyncio
import operator
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from workbench.broker import BrokerError, Connection, OutgoingEvent, PublishResult, Timeout, Unreachable
from workbench.errors import BadInput, WorkbenchError
from workbench.events.envelope_input import InputError, is_plain_envelope, parse_line_bytes, plain_envelope_event
from workbench.events.redaction import refuse_redacted

__all__ = [
    "Batch",
    "Checked",
    "Encoding",
    "Failure",
    "LineInput",
    "LineParser",
    "PublishReport",
    "ResultsCallback",
    "batch_of",
    "batch_size_for",
    "pairs",
    "repeated",
    "send",
]

#: events per batch: each batch is one ``Connection.publish`` call, confirmed as a whole before the next is sent
BATCH_SIZE = 5000
#: problems named after the first one when a check fails (the others are counted)
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class Failure:
    """One event that was not confirmed: where it came from (e.g. ``events.jsonl:12``) and why."""

    origin: str
    error: BrokerError


@dataclass
class PublishReport:
    confirmed: int = 0
    failures: list[Failure] = field(default_factory=list)
    unsent: int = 0  # never handed to the broker because publishing stopped early
    stopped: bool = False  # a batch rejected whole, or the broker stopped answering: nothing after it was sent
    first: PublishResult | None = None  # where the first confirmed event landed
    seconds: float = 0.0  # from ``started`` (the command's start, for the CLI) to the last confirmation
    skipped: int = 0  # left out because an earlier run had them confirmed (publish --journal)
    input_error: WorkbenchError | BrokerError | None = None  # the input stopped the publish (--stream)

    @property
    def total(self) -> int:
        return self.confirmed + len(self.failures) + self.unsent


@dataclass(frozen=True, slots=True)
class Batch:
    """Events sent in one ``Connection.publish`` call; ``origin(i)`` says where ``events[i]`` came
    from (made only for the events that fail, or that ``-o json`` lists), ``linenos`` are the input
    lines of the events (file input, for the journal)."""

    events: list[OutgoingEvent]
    origin: Callable[[int], str]
    linenos: Sequence[int] = ()


#: ``on_results(batch, results)``: one batch's results, as the broker gave them.
ResultsCallback = Callable[[Batch, Sequence[PublishResult]], None]
_headers = operator.attrgetter("headers")
#: Errors that say the broker stopped answering: publishing more would only wait out the timeout.
_BROKER_GONE = (Unreachable, Timeout)


def batch_size_for(rate: float | None, batch_size: int = BATCH_SIZE) -> int:
    """Smaller batches under a rate limit: about ten a second, so the rate is smooth."""
    return max(1, min(batch_size, int(rate / 10) or 1)) if rate else batch_size


async def send(
    conn: Connection,
    topic: str,
    batches: Iterable[Batch] | AsyncIterable[Batch],
    *,
    rate: float | None = None,
    total: int | None = None,
    started: float | None = None,
    on_progress: Callable[[PublishReport], None] | None = None,
    on_results: ResultsCallback | None = None,
) -> PublishReport:
    """Publish batches one after the other, at most ``rate`` events/s, accounting for each event.

    A batch the broker rejects as a whole (e.g. the topic vanished) counts every event in it as
    failed with that error, and publishing stops there; so does a batch in which the broker stopped
    answering (Unreachable, Timeout: the next batches would only wait out their timeout too). What
    was confirmed before stays confirmed; what was never sent is ``unsent`` (``total`` events
    expected in all; without it the rest of a plain iterable is counted). A WorkbenchError from the
    batches themselves (a malformed line of a stream) stops the publish after the batches before
    it: it is the report's ``input_error``.

    From a plain iterable the next batch is taken (read, parsed) while the broker confirms the
    current one. ``started`` (``time.monotonic()``) is where ``report.seconds`` counts from.
    """
    report = PublishReport()
    began = time.monotonic()
    sent = 0
    asynchronous = isinstance(batches, AsyncIterable)
    items: Iterator[Batch] | None = None if asynchronous else iter(batches)  # type: ignore[arg-type]
    stream: AsyncIterator[Batch] | None = aiter(batches) if asynchronous else None  # type: ignore[arg-type]

    async def following() -> Batch | None:
        try:
            if items is not None:
                found = next(items, None)
            else:
                assert stream is not None
                found = await anext(stream, None)
            if found is not None and any(map(_headers, found.events)):  # (no headers: not a redacted copy)
                refuse_redacted(found.events, found.origin)
            return found
        except (WorkbenchError, BrokerError) as exc:
            report.input_error = exc
            return None

    try:
        upcoming = await following()
        while upcoming is not None:
            batch, upcoming = upcoming, None
            if not batch.events:
                upcoming = await following()
                continue
            task = asyncio.ensure_future(conn.publish(topic, batch.events))
            if items is not None:  # prepare the next batch while this one is sent and confirmed
                await asyncio.sleep(0)  # (the publish starts first: its thread, or its first write)
                upcoming = await following()
            try:
                results = await task
            except BrokerError as exc:
                report.failures.extend(Failure(batch.origin(i), exc) for i in range(len(batch.events)))
                report.stopped = True
                break
            sent += len(batch.events)
            if on_results:
                on_results(batch, results)
            errors = [result.error for result in results]
            confirmed = errors.count(None)
            report.confirmed += confirmed
            if report.first is None and confirmed:
                report.first = results[errors.index(None)]
            if confirmed < len(results):
                report.failures.extend(
                    Failure(batch.origin(i), error) for i, error in enumerate(errors) if error is not None
                )
                if any(isinstance(error, _BROKER_GONE) for error in errors):
                    report.stopped = True
                    break
            if on_progress:
                on_progress(report)
            if rate:
                ahead = (report.confirmed + len(report.failures)) / rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if upcoming is None and items is None and report.input_error is None:
                upcoming = await following()
        report.seconds = time.monotonic() - (began if started is None else started)
        if report.stopped:
            if total is not None:
                report.unsent = max(total - report.confirmed - len(report.failures), 0)
            elif items is not None:
                report.unsent = (0 if upcoming is None else len(upcoming.events)) + sum(len(b.events) for b in items)
    finally:
        if stream is not None and hasattr(stream, "aclose"):
            await stream.aclose()
    return report


def repeated(event: OutgoingEvent, count: int, origin: str, *, batch_size: int = BATCH_SIZE) -> Iterator[Batch]:
    """One event ``count`` times (``--value --count N``, the TUI's copies), ``origin #i`` each."""
    if count == 1:
        yield Batch([event], lambda i: origin)
        return
    for first in range(0, count, batch_size):
        yield Batch([event] * min(batch_size, count - first), _numbered(origin, first))


def _numbered(origin: str, first: int) -> Callable[[int], str]:
    return lambda i: f"{origin} #{first + i + 1}"


def pairs(events: Iterable[tuple[str, OutgoingEvent]], *, batch_size: int = BATCH_SIZE) -> Iterator[Batch]:
    """``(origin, event)`` pairs in batches."""
    chunk: list[tuple[str, OutgoingEvent]] = []
    for item in events:
        chunk.append(item)
        if len(chunk) == batch_size:
            yield batch_of(chunk)
            chunk = []
    if chunk:
        yield batch_of(chunk)


def batch_of(chunk: list[tuple[str, OutgoingEvent]]) -> Batch:
    origins = [origin for origin, _ in chunk]
    return Batch([event for _, event in chunk], origins.__getitem__)


# --------------------------------------------------------------------------- input lines

#: ``(origin, event) -> event`` with its key and/or value encoded by a schema; BadInput names the field.
Encoding = Callable[[str, OutgoingEvent], OutgoingEvent]

# bytes a line that ``str.isspace()`` could start with (ASCII white space, the separators \x1c-\x1f,
# and any non-ASCII byte): a line starting with another byte is not blank, with no decoding
_MAYBE_BLANK = frozenset(b" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f") | frozenset(range(0x80, 0x100))


class LineParser:
    """``parse(lineno, line)``: one input line (bytes, without its line end) as the event to publish,
    with ``--key`` for events without one and ``--header`` added, encoded by ``encode`` (schemas);
    None for a blank line. A problem raises BadInput naming ``source:lineno``."""

    def __init__(
        self,
        source: str,
        *,
        key: bytes | None = None,
        headers: tuple[tuple[str, bytes], ...] = (),
        raw: bool = False,
        tombstones: bool = False,
        encode: Encoding | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.headers = headers
        self.raw = raw
        self.tombstones = tombstones
        self.encode = encode

    def __call__(self, lineno: int, line: bytes) -> OutgoingEvent | None:
        if not line or (line[0] in _MAYBE_BLANK and line.decode("utf-8", "surrogateescape").isspace()):
            return None
        try:
            event = parse_line_bytes(line, lineno, raw=self.raw, source=self.source)
        except InputError as exc:
            raise BadInput(str(exc), hint=exc.hint or "use --raw to publish every line as it is") from None
        if event.value is None and not self.tombstones:
            raise tombstone_refused(self.source, lineno)
        if self.headers or (self.key is not None and event.key is None):
            event = OutgoingEvent(
                event.value,
                event.key if event.key is not None else self.key,
                event.headers + self.headers,
                event.partition,
                event.timestamp,
            )
        if self.encode is not None:
            event = self.encode(f"{self.source}:{lineno}", event)
        return event

    def check(self, lineno: int, line: bytes) -> int | None:
        """The line checked as ``parse`` would, without making the event where none is needed: None
        for a blank line, the event's explicit partition, or -1 (the broker places it)."""
        if self.encode is None and not self.raw and line[:1] == b"{" and is_plain_envelope(line):
            return -1
        event = self(lineno, line)
        return None if event is None else -1 if event.partition is None else event.partition


def tombstone_refused(source: str, lineno: int) -> BadInput:
    return BadInput(
        f"{source}:{lineno}: field 'value' is null: a tombstone, which deletes the key on a compacted topic",
        hint="pass --tombstones to publish null values",
    )


@dataclass
class Checked:
    """What the check of an input found: the lines read, how many are events, and the explicit
    partitions the events name, each with the first line that names it."""

    lines: int = 0
    events: int = 0
    partitions: dict[int, int] = field(default_factory=dict)


def _lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(lineno, line)`` without the line end (``\\n``, and a ``\\r`` before it); numbered from 1."""
    for lineno, line in enumerate(stream, start=1):
        yield lineno, line.removesuffix(b"\n").removesuffix(b"\r")


class LineInput:
    """An input file of one event a line, read twice: :meth:`check`, then :meth:`batches`.

    ``-`` is standard input: copied to a temporary file as it is checked, and sent from there; so
    is any file that cannot be read twice (a named pipe, ``<(command)``).
    """

    def __init__(self, file: str, stdin: IO[bytes] | None = None) -> None:
        self.name = file
        self.source = "stdin" if file == "-" else file
        self._stdin: IO[bytes] | None = None
        self._file: IO[bytes]
        if file == "-":
            self._stdin = stdin if stdin is not None else sys.stdin.buffer
            self._file = tempfile.TemporaryFile(prefix="workbench-publish-")  # noqa: SIM115 - closed by close()
        else:
            try:
                self._file = open(file, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None
            if not stat.S_ISREG(os.fstat(self._file.fileno()).st_mode):  # a pipe: read once, spooled
                self._stdin, self._file = self._file, tempfile.TemporaryFile(prefix="workbench-publish-")  # noqa: SIM115
        self._stat: tuple[int, int] | None = None
        self.checked: Checked | None = None

    @property
    def regular(self) -> bool:
        """A regular file: read from the disk (never waits on a writer), so its check may run in a
        thread while the connection is made, and be stopped."""
        return self._stdin is None

    def __enter__(self) -> LineInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        if self._stdin is not None and self.name != "-":
            self._stdin.close()

    def check(self, parse: LineParser, *, stop: threading.Event | None = None) -> Checked:
        """Every line parsed (and encoded) as it will be sent, nothing kept but counters; BadInput for
        the first problem, naming the next ones, or for an input without events. ``stop`` set (by
        another thread: the check runs in one while the connection is made) ends it early, with
        BadInput."""
        checked = Checked()
        partitions = checked.partitions
        problems: list[tuple[int, BadInput]] = []
        more = 0
        stream: Iterable[bytes] = self._file if self._stdin is None else _tee(self._stdin, self._file)
        events = lineno = 0
        plain = parse.encode is None and not parse.raw  # a plain envelope line needs no more checks
        try:
            check = parse.check
            for line in stream:  # (the hot path: _lines() written out)
                lineno += 1
                if not lineno & 0xFFF and stop is not None and stop.is_set():
                    raise BadInput(f"{self.source}: the check was stopped at line {lineno}; nothing was published")
                if plain and line[:1] == b"{" and is_plain_envelope(line):
                    events += 1
                    continue
                try:
                    partition = check(lineno, line.removesuffix(b"\n").removesuffix(b"\r"))
                except BadInput as exc:
                    if len(problems) <= SHOWN_PROBLEMS:
                        problems.append((lineno, exc))
                    else:
                        more += 1
                    continue
                if partition is not None:
                    events += 1
                    if partition >= 0 and partition not in partitions:
                        partitions[partition] = lineno
        except OSError as exc:
            raise BadInput(f"cannot read {self.name}: {exc.strerror or exc}") from None
        checked.lines, checked.events = lineno, events
        if problems:
            raise _problems(problems, more)
        if not events:
            raise BadInput(f"{self.source}: no events (the input is empty)")
        self._file.flush()
        self._stat = self._stat_now()
        self.checked = checked
        return checked

    def digest(self, *shaping: Any) -> str:
        """The journal's digest of the input (as :func:`workbench.journal.input_digest` of its bytes)."""
        from workbench.journal import input_digest_of

        self._file.seek(0)
        return input_digest_of(self._file, *shaping)

    def batches(
        self,
        parse: Callable[[int, bytes], OutgoingEvent | None],
        *,
        batch_size: int = BATCH_SIZE,
        skip: Container[int] = (),
    ) -> Iterator[Batch]:
        """The checked input again, parsed batch by batch as it is sent; the lines in ``skip`` (confirmed
        by an earlier run, per the journal) left out. A file changed since its check raises BadInput:
        before the first batch (nothing was sent), or at the line that no longer parses."""
        checked = self.checked
        if checked is None:
            raise RuntimeError("check() the input before sending it")
        if self._stat_now() != self._stat:
            raise BadInput(
                f"{self.source}: the file changed after it was checked; nothing was published",
                hint="publish a file that is not being written to (or pipe it in: --file - copies it first)",
            )
        self._file.seek(0)
        source, last, skipping = self.source, checked.lines, bool(skip) and skip
        events: list[OutgoingEvent] = []
        linenos: list[int] = []
        add_event, add_lineno = events.append, linenos.append
        lineno = 0
        # a plain envelope line, as the parser would make it, in one call (no schema, --raw or --header)
        plain = isinstance(parse, LineParser) and parse.encode is None and not parse.raw and not parse.headers
        default_key = parse.key if isinstance(parse, LineParser) else None
        for line in self._file:  # (this loop is the hot path: _lines() written out)
            lineno += 1
            if skipping and lineno in skip:
                continue
            event = plain_envelope_event(line, default_key) if plain and line[:1] == b"{" else None
            if event is None:
                event = parse(lineno, line.removesuffix(b"\n").removesuffix(b"\r"))
            if event is not None:
                add_event(event)
                add_lineno(lineno)
                if len(events) == batch_size:
                    yield _lines_batch(source, events, linenos)
                    events, linenos = [], []
                    add_event, add_lineno = events.append, linenos.append
            if lineno == last:
                break  # what was appended since the check was not checked
        if events:
            yield _lines_batch(source, events, linenos)

    def _stat_now(self) -> tuple[int, int]:
        stat = os.fstat(self._file.fileno())
        return stat.st_size, stat.st_mtime_ns


def _lines_batch(source: str, events: list[OutgoingEvent], linenos: list[int]) -> Batch:
    return Batch(events, lambda i: f"{source}:{linenos[i]}", linenos)


def _problems(problems: list[tuple[int, BadInput]], more: int) -> BadInput:
    """The first problem, with the line numbers of the next ones."""
    (_, first), others = problems[0], problems[1:]
    if not others:
        return first
    named = ", ".join(str(lineno) for lineno, _ in others)
    also = f"{len(others) + more} more line(s) with problems: {named}{', ...' if more else ''}"
    return BadInput(f"{first}\n{also}", hint=first.hint)


def _tee(stream: IO[bytes], copy: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``stream``, each also written to ``copy`` (standard input spooled as it is checked)."""
    write = copy.write
    for line in stream:
        write(line)
        yield line
