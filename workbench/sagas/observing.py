"""Observing sagas on the broker: read their topics (bounded) into instances, find one by its id.

A scan reads each topic up to its end as it is now (from a time when ``--since`` is given), so it
ends; a missing topic is a NotFound that names the saga and where it is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing

from workbench.broker import Connection, Event, NotFound, Position
from workbench.errors import ExitCode, WorkbenchError
from workbench.sagas.definitions import SagaDef
from workbench.sagas.instances import Collector, SagaInstance

__all__ = ["Correlate", "Progress", "SagaNotFound", "expected_events", "find_instance", "observe", "scan"]

Correlate = Callable[[Event], str | None]
Progress = Callable[[int], None]


async def observe(
    conn: Connection,
    definition: SagaDef,
    correlate: Correlate,
    *,
    now: int,
    since_ms: int | None = None,
    only: str | None = None,
    on_scanned: Progress | None = None,
) -> list[SagaInstance]:
    """Read the saga's topics (bounded: up to their ends now; from ``since_ms`` when given)."""
    collector = Collector(definition, correlate, only=only)
    start = Position.beginning() if since_ms is None else Position.at_time(since_ms)
    for topic in definition.topics:
        await scan(conn, topic, start, collector.add, on_scanned, definition)
    return collector.instances(now)


async def scan(
    conn: Connection,
    topic: str,
    start: Position,
    sink: Callable[[list[Event]], None],
    on_scanned: Progress | None,
    definition: SagaDef | None = None,
) -> None:
    try:
        async with aclosing(conn.read(topic, start, batch_size=2000)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                sink(batch)
                if on_scanned:
                    on_scanned(len(batch))
    except NotFound as exc:
        if definition is None:
            raise
        raise _missing(definition, topic, exc) from exc


async def expected_events(conn: Connection, definitions: Iterable[SagaDef]) -> int:
    """How many events a full scan of the sagas' topics reads (for progress bars); a missing topic
    raises NotFound naming the saga."""
    total, seen = 0, set()
    for definition in definitions:
        for topic in definition.topics:
            if topic in seen:
                continue
            seen.add(topic)
            try:
                total += (await conn.describe_topic(topic)).count
            except NotFound as exc:
                raise _missing(definition, topic, exc) from exc
    return total


def _missing(definition: SagaDef, topic: str, exc: NotFound) -> NotFound:
    return NotFound(
        f"saga {definition.name!r} ({definition.source}) lives on topic {topic!r}: {exc}",
        hint="create the topic, or fix the saga's topics (`workbench demo` seeds the demo's)",
    )


async def find_instance(
    conn: Connection,
    definitions: Sequence[SagaDef],
    correlate_for: Callable[[SagaDef], Correlate],
    correlation_id: str,
    *,
    now: int,
    since_ms: int | None = None,
    on_scanned: Progress | None = None,
) -> tuple[SagaDef, SagaInstance]:
    """The instance of ``correlation_id`` in the first saga that has it; NotFound-like error otherwise."""
    for definition in definitions:
        found = await observe(
            conn,
            definition,
            correlate_for(definition),
            now=now,
            since_ms=since_ms,
            only=correlation_id,
            on_scanned=on_scanned,
        )
        if found:
            return definition, found[0]
    names = ", ".join(d.name for d in definitions)
    raise SagaNotFound(
        f"no saga instance with correlation id {correlation_id!r} (sagas: {names})",
        hint="`workbench saga list` shows the instances; --since may exclude older ones",
    )


class SagaNotFound(WorkbenchError):
    exit_code = ExitCode.NOT_FOUND
