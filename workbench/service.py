"""The verbs shared by the CLI and the TUI: connect, browse, tail, publish, lag, offsets reset.

Everything here speaks the adapter contract only; presentation is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from workbench import config, plugins, publishing
from workbench.broker import (
    BrokerError,
    Capabilities,
    Connection,
    Event,
    GroupInfo,
    GroupLag,
    OutageCallback,
    OutgoingEvent,
    Position,
    PublishResult,
    TopicInfo,
)
from workbench.config import DEFAULT_ADAPTER, Profile, Target
from workbench.events.redaction import Redactor
from workbench.events.schemas.decoder import SchemaDecoder
from workbench.events.schemas.registry import Registered, Registry, RegistrySettings
from workbench.publishing import Failure as Failure
from workbench.publishing import PublishReport as PublishReport
from workbench.scan import ScanReport

W = TypeVar("W", bound=Connection)


def capabilities(target: Target) -> Capabilities:
    """What the target's adapter can do (loads the adapter class, connects to nothing)."""
    return plugins.load(target.adapter).capabilities


@asynccontextmanager
async def connect(
    target: Target,
    *,
    stored_schemas: Mapping[int, Registered] | None = None,
    originals: bool = False,
    keep_originals: bool = False,
) -> AsyncIterator[Connection]:
    """Load the target's adapter, connect, and always close. A read-only profile gets a
    connection that refuses every change, whoever asks (CLI, TUI, a future verb). Where the profile
    names a schema registry or schema files (or ``stored_schemas`` come from a capture file), reads
    come back with keys and values decoded (see :mod:`workbench.events.schemas.decoder`).

    Where the profile file has [mask] rules, reads come back redacted (what a person or a file
    sees), unless the caller asks for ``originals``: verbs that copy events between brokers
    (replay, redrive, compensation) or write them unredacted where the profile allows it.
    ``keep_originals``: each redacted event keeps its original (the TUI's copy of an original),
    never where the profile requires redaction."""
    adapter = plugins.load(target.adapter)(target.options)
    conn = await adapter.connect()
    try:
        if target.profile.read_only:
            conn = ReadOnlyConnection(conn, target.profile)
        if stored_schemas is None and target.adapter == DEFAULT_ADAPTER:
            stored_schemas = await _stored_schemas(conn)  # a capture file carries its schemas
        decoder = schema_decoder(target, stored_schemas)
        if decoder.active:
            conn = DecodingConnection(conn, decoder)
        redactor = None if originals else config.redactor_of(target.profile)
        if redactor is not None:
            keep = keep_originals and not target.profile.mask_required
            conn = RedactingConnection(conn, redactor, keep_originals=keep)
        yield conn
    finally:
        await conn.close()


async def _stored_schemas(conn: Connection) -> dict[int, Registered]:
    from workbench.events.schemas import stored

    try:
        await conn.describe_topic(stored.SCHEMAS_TOPIC)
    except BrokerError:
        return {}
    events: list[Event] = []
    async with aclosing(conn.read(stored.SCHEMAS_TOPIC, Position.beginning())) as batches:  # type: ignore[type-var]
        async for batch in batches:
            events.extend(batch)
    return stored.from_events(events)


_registries: dict[RegistrySettings, Registry] = {}


def registry(settings: RegistrySettings) -> Registry:
    """One registry client per registry and process: schemas are fetched once per id."""
    if settings not in _registries:
        _registries[settings] = Registry(settings)
    return _registries[settings]


def schema_decoder(target: Target, stored: Mapping[int, Registered] | None = None) -> SchemaDecoder:
    return SchemaDecoder(registry(target.registry) if target.registry else None, target.schema_files, stored)


class PassThrough(Connection):
    """A connection that hands every call to ``inner``: the base of the wrappers below."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    async def close(self) -> None:
        await self.inner.close()

    async def list_topics(self) -> list[TopicInfo]:
        return await self.inner.list_topics()

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self.inner.describe_topic(name)

    def read(self, topic: str, start: Position, **kwargs: Any) -> AsyncIterator[list[Event]]:
        return self.inner.read(topic, start, **kwargs)

    async def groups(self) -> list[GroupInfo]:
        return await self.inner.groups()

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        return await self.inner.lag(group_ids, on_progress=on_progress)

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        return await self.inner.publish(topic, events)

    async def prepare_publish(self, topic: str) -> None:
        await self.inner.prepare_publish(topic)

    async def peek(self, topic: str, count: int) -> list[Event]:
        return await self.inner.peek(topic, count)

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        await self.inner.commit_offsets(group_id, offsets)

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        return await self.inner.create_topic(name, partitions, config, replication_factor=replication_factor)

    async def delete_topic(self, name: str) -> None:
        await self.inner.delete_topic(name)


class ReadOnlyConnection(PassThrough):
    """Reads pass through; publish, peek (it requeues), commits and topic changes raise ReadOnlyError."""

    def __init__(self, inner: Connection, profile: Profile) -> None:
        super().__init__(inner)
        self.profile = profile

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        self.profile.ensure_writable(f"publish to {topic!r}")
        raise AssertionError("unreachable")

    async def prepare_publish(self, topic: str) -> None:
        pass  # nothing is made ready for a publish that will be refused

    async def peek(self, topic: str, count: int) -> list[Event]:
        self.profile.ensure_writable(f"peek queue {topic!r} (requeues its messages)")
        raise AssertionError("unreachable")

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        self.profile.ensure_writable(f"change the offsets of group {group_id!r}")

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        self.profile.ensure_writable(f"create topic {name!r}")
        raise AssertionError("unreachable")

    async def delete_topic(self, name: str) -> None:
        self.profile.ensure_writable(f"delete topic {name!r}")


class TransformingConnection(PassThrough):
    """Reads and peeks come back transformed, batch by batch, by :meth:`transform`: the base of
    the decoding and redacting wrappers (an adapter's own extras stay reachable through it)."""

    def __getattr__(self, name: str) -> Any:
        """An adapter's own extras (the local adapter's ``local_restore``) stay reachable."""
        return getattr(self.inner, name)

    async def transform(self, batch: list[Event]) -> list[Event]:
        raise NotImplementedError

    def read(self, topic: str, start: Position, **kwargs: Any) -> AsyncIterator[list[Event]]:
        return self._transformed(self.inner.read(topic, start, **kwargs))

    async def _transformed(self, batches: AsyncIterator[list[Event]]) -> AsyncGenerator[list[Event], None]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield await self.transform(batch)

    async def peek(self, topic: str, count: int) -> list[Event]:
        return await self.transform(await self.inner.peek(topic, count))


class DecodingConnection(TransformingConnection):
    """Reads and peeks come back with keys and values decoded by their schemas, once, here."""

    def __init__(self, inner: Connection, decoder: SchemaDecoder) -> None:
        super().__init__(inner)
        self.decoder = decoder

    async def transform(self, batch: list[Event]) -> list[Event]:
        return await self.decoder.decode_batch(batch)


class RedactingConnection(TransformingConnection):
    """Reads and peeks come back redacted by the profile file's [mask] rules (see
    :mod:`workbench.events.redaction`): every path that shows or writes events goes through here."""

    INLINE_BATCH = 256  # bigger batches are redacted in a thread: the event loop stays responsive

    def __init__(self, inner: Connection, redactor: Redactor, *, keep_originals: bool = False) -> None:
        super().__init__(inner)
        self.redactor = redactor
        self.keep_originals = keep_originals

    async def transform(self, batch: list[Event]) -> list[Event]:
        if len(batch) < self.INLINE_BATCH:
            return self.redactor.redact_all(batch, keep_original=self.keep_originals)
        return await asyncio.to_thread(self.redactor.redact_all, batch, keep_original=self.keep_originals)


def redactor_in(conn: Connection) -> Redactor | None:
    """The redactor behind a connection (through wrappers), or None: its reads are originals."""
    found = _wrapper(conn, RedactingConnection)
    return None if found is None else found.redactor


def decoder_of(conn: Connection) -> SchemaDecoder | None:
    """The schema decoder behind a connection (through wrappers that keep theirs in ``inner``)."""
    found = _wrapper(conn, DecodingConnection)
    return None if found is None else found.decoder


def _wrapper(conn: Connection | None, kind: type[W]) -> W | None:
    while conn is not None and not isinstance(conn, kind):
        conn = getattr(conn, "inner", None)
    return conn


# --------------------------------------------------------------------------- tail


def expected_count(info: TopicInfo, start: Position, partitions: Sequence[int] | None) -> int | None:
    """How many events a bounded read from ``start`` will see, or None when only the broker knows."""
    chosen = [p for p in info.partitions if partitions is None or p.partition in partitions]
    if start.kind == "timestamp":
        return None
    total = 0
    for p in chosen:
        if start.kind == "beginning":
            total += p.count
        elif start.kind == "last":
            total += min(start.value, p.count)
        elif start.kind == "offset":
            total += max(p.end - max(start.value, p.start), 0)
    return total


async def tail(
    conn: Connection,
    topic: str,
    start: Position,
    *,
    partitions: Sequence[int] | None = None,
    follow: bool = False,
    limit: int | None = None,
    match: Callable[[Event], bool] | None = None,
    on_scanned: Callable[[int], None] | None = None,
    on_outage: OutageCallback | None = None,
    batch_size: int | None = None,
    on_dropped: Callable[[int], None] | None = None,
    until: Position | None = None,
    report: ScanReport | None = None,
    on_live: Callable[[], None] | None = None,
) -> AsyncGenerator[list[Event], None]:
    """Batches of the events that pass ``match``, at most ``limit`` of them.

    ``until`` ends the window (see :mod:`workbench.scan`); ``report`` (made for one when ``until`` is
    given without it) is kept up to date: per partition what was read and matched, and whether to
    the end. ``on_live`` is told once a follow read is attached (see Connection.read).

    ``on_scanned`` is told how many events were read before filtering (for progress);
    ``on_outage`` when a follow read loses its broker and when it reads again (see Connection.read);
    ``on_dropped`` the running total of events the broker side dropped before a batch (a capped
    RabbitMQ tap marks it on the batch's first event, ``metadata["dropped_before"]``).
    """
    remaining = limit
    extra: dict[str, Any] = {} if on_outage is None else {"on_outage": on_outage}
    if batch_size is not None:  # else the adapter's default
        extra["batch_size"] = batch_size
    if on_live is not None:
        extra["on_live"] = on_live
    if until is not None and report is None:
        report = ScanReport.plan(await conn.describe_topic(topic), start, partitions, until)
    if report is not None and until is not None:
        report.until = until
    if until is not None and report is not None and report.done:
        return  # every window the user bounded is empty (without --until the adapter reads, or refuses)
    reader = conn.read(topic, start, partitions=partitions, follow=follow, **extra)
    async with aclosing(_read_ahead(reader)) as batches:
        async for batch in batches:
            if on_scanned:
                on_scanned(len(batch))
            if on_dropped and batch and (dropped := batch[0].metadata.get("dropped_before")):
                on_dropped(dropped)
            if report is not None:
                batch, remaining = report.take(batch, match, remaining)
                if batch:
                    yield batch
                if remaining == 0:
                    report.stop(f"stopped after {limit:,} match{'es' if limit != 1 else ''}")
                    return
                if report.done:
                    return  # every partition passed its window's end
                continue
            if match is not None:
                batch = [e for e in batch if match(e)]
            if remaining is not None:
                batch = batch[:remaining]
                remaining -= len(batch)
            if batch:
                yield batch
            if remaining == 0:
                return
    if report is not None and not follow:
        report.finish()


async def _read_ahead(batches: AsyncIterator[list[Event]]) -> AsyncGenerator[list[Event], None]:
    """Ask for the next batch before handing out this one, so the adapter's fetch (in its thread)
    overlaps with the caller's work. One batch ahead at most: backpressure still holds."""
    pending: asyncio.Future[list[Event] | None] | None = None
    try:
        pending = asyncio.ensure_future(anext(batches, None))
        while (batch := await pending) is not None:
            pending = asyncio.ensure_future(anext(batches, None))
            await asyncio.sleep(0)  # let the fetch start before the caller works on this batch
            yield batch
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerError):
                await pending
        await batches.aclose()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- publish
# The engine is workbench.publishing; these take (origin, event) pairs, as the TUI and sagas have them.

#: ``on_results(first, results)``: one batch's results; ``first`` is its first event's position.
ResultsCallback = Callable[[int, Sequence[PublishResult]], None]


async def publish(
    conn: Connection,
    topic: str,
    events: Iterable[tuple[str, OutgoingEvent]],
    *,
    batch_size: int = publishing.BATCH_SIZE,
    rate: float | None = None,
    on_progress: Callable[[PublishReport], None] | None = None,
    on_results: ResultsCallback | None = None,
) -> PublishReport:
    """Publish ``(origin, event)`` pairs in batches, at most ``rate`` events/s, accounting for each one
    (see :func:`workbench.publishing.send`). ``on_results(first, results)`` hears each batch's
    results, ``first`` being the position of the batch's first event in ``events``."""
    batches = publishing.pairs(events, batch_size=publishing.batch_size_for(rate, batch_size))
    return await publishing.send(conn, topic, batches, rate=rate, on_progress=on_progress, on_results=_at(on_results))


async def publish_batches(
    conn: Connection,
    topic: str,
    batches: AsyncIterator[list[tuple[str, OutgoingEvent]]],
    *,
    rate: float | None = None,
    on_progress: Callable[[PublishReport], None] | None = None,
    on_results: ResultsCallback | None = None,
) -> PublishReport:
    """Publish batches as they come (a pipe is read while it is published), accounting for each event."""

    async def as_batches() -> AsyncIterator[publishing.Batch]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for chunk in batches:
                yield publishing.batch_of(chunk)

    return await publishing.send(
        conn, topic, as_batches(), rate=rate, on_progress=on_progress, on_results=_at(on_results)
    )


def _at(on_results: ResultsCallback | None) -> publishing.ResultsCallback | None:
    """``(first, results)`` from the engine's ``(batch, results)``."""
    if on_results is None:
        return None
    sent = 0

    def heard(batch: publishing.Batch, results: Sequence[PublishResult]) -> None:
        nonlocal sent
        on_results(sent, results)
        sent += len(batch.events)

    return heard


# --------------------------------------------------------------------------- lag


async def lag(
    conn: Connection,
    group: str | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[GroupLag]:
    groups = await conn.lag([group] if group else None, on_progress=on_progress)
    return sorted(groups, key=lambda g: g.group_id)
