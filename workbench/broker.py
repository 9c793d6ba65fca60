"""The adapter contract (SPI) between the workbench and a broker.

Pure Python: no broker client library and no Textual here. An adapter package imports this module
only (plus its own client library); the application knows adapters only through it.

Shape: an :class:`Adapter` is built from a profile's options and ``connect()`` s to a
:class:`Connection`. Every method of a connection is async; adapters that wrap a blocking client
library run it in threads. Class-level :class:`Capabilities` tell the UI what to offer.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

Headers = tuple[tuple[str, bytes], ...]
#: Told of a follow read's outage (the error) and of its recovery (None); see Connection.read.
OutageCallback = Callable[["BrokerError | None"], None]


# --------------------------------------------------------------------------- errors


class BrokerError(Exception):
    """Base of every error an adapter raises. The message is safe to show: it carries no secret."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class NotFound(BrokerError):
    """A topic, partition, group or queue does not exist."""


class AccessDenied(BrokerError):
    """The broker refused the credentials or the operation."""


class Unreachable(BrokerError):
    """The broker did not answer (connection refused, DNS, TLS, timeout while connecting)."""


class Unroutable(BrokerError):
    """A published event could not be routed to any destination."""


class Unsupported(BrokerError):
    """The adapter or broker cannot do this (see :class:`Capabilities`)."""


class Timeout(BrokerError):
    """An operation on a connected broker took longer than allowed."""


class InvalidRequest(BrokerError):
    """The request is malformed for this broker: bad partition, offset out of range, too large."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Event:
    """One event as read from a broker. Key, value and header values are the exact bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None  # milliseconds since the epoch, UTC
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)  # broker-specific extras

    @property
    def time(self) -> datetime | None:
        return None if self.timestamp is None else datetime.fromtimestamp(self.timestamp / 1000, UTC)


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event to publish. ``partition`` and ``timestamp`` are left to the broker when None."""

    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What happened to one published event: confirmed at (partition, offset), or the exact error."""

    index: int  # position of the event in the published sequence
    partition: int | None = None
    offset: int | None = None  # None where the broker's confirms carry none (RabbitMQ)
    error: BrokerError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


PositionKind = Literal["beginning", "end", "offset", "timestamp", "last"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a read starts, in every selected partition.

    ``offset``: the absolute offset, clamped to each partition's [start, end]; ``timestamp``:
    milliseconds since the epoch (the first event at or after it); ``last``: the N newest events
    of each partition.
    """

    kind: PositionKind
    value: int = 0

    @classmethod
    def beginning(cls) -> Position:
        return cls("beginning")

    @classmethod
    def end(cls) -> Position:
        return cls("end")

    @classmethod
    def at_offset(cls, offset: int) -> Position:
        return cls("offset", offset)

    @classmethod
    def at_time(cls, timestamp_ms: int) -> Position:
        return cls("timestamp", timestamp_ms)

    @classmethod
    def last(cls, n: int) -> Position:
        return cls("last", n)

    def __str__(self) -> str:
        if self.kind in ("beginning", "end"):
            return self.kind
        if self.kind == "offset":
            return str(self.value)
        if self.kind == "last":
            return f"-{self.value}"
        return datetime.fromtimestamp(self.value / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition (or queue/stream segment). ``start`` is the first offset, ``end`` the next one."""

    partition: int
    start: int
    end: int
    leader: int | None = None
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    size_bytes: int | None = None

    @property
    def count(self) -> int:
        return max(self.end - self.start, 0)

    @property
    def replica_state(self) -> str:
        """``ok``, ``under-replicated`` (fewer in-sync replicas than replicas) or ``offline`` (no
        leader); ``ok`` where the broker has no replicas to speak of. One rule for the CLI and the TUI."""
        if not self.replicas:
            return "ok"
        if self.leader is None:
            return "offline"
        return "under-replicated" if len(self.isr) < len(self.replicas) else "ok"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a broker says about one topic, exchange, queue or stream.

    ``metadata["read_notice"]``, when present, is a sentence the app shows before reading: what
    reading does to the broker (e.g. a temporary tap queue that makes unroutable messages routable).

    ``operations``: what the connected user may do on it, where the broker tells (Kafka's authorized
    operations): lower-case names among :data:`OPERATIONS`. None when it does not tell: then
    everything is offered and the broker has the last word. The UI asks :meth:`may`.
    """

    name: str
    kind: str = "topic"  # topic | exchange | queue | stream
    partitions: tuple[PartitionInfo, ...] = ()
    config: Mapping[str, str] = field(default_factory=dict)
    internal: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    operations: frozenset[str] | None = None

    @property
    def count(self) -> int:
        return sum(p.count for p in self.partitions)

    def may(self, operation: str) -> bool:
        """False only when the broker said the user may not (``read``, ``write``, ``delete`` ...)."""
        return self.operations is None or operation in self.operations


#: The operations ``TopicInfo.operations`` names (Kafka's ACL operations on a topic, lower-case).
OPERATIONS = frozenset({"read", "write", "create", "delete", "alter", "describe", "describe_configs", "alter_configs"})


@dataclass(frozen=True, slots=True)
class GroupMember:
    client_id: str
    host: str = ""
    assignment: tuple[tuple[str, int], ...] = ()  # (topic, partition)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: str
    state: str  # Stable, Empty, Dead, PreparingRebalance ... as the broker names it
    protocol: str = ""
    members: tuple[GroupMember, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)  # broker-specific extras


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """Raw figures for one partition of one group. Verdicts are computed by ``workbench.lag``."""

    topic: str
    partition: int
    committed: int | None  # None: the group never committed here
    start: int  # log-start offset
    end: int  # log-end offset

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(self.end - self.committed, 0)

    @property
    def lost_to_retention(self) -> bool:
        return self.committed is not None and self.committed < self.start


@dataclass(frozen=True, slots=True)
class GroupLag:
    group_id: str
    state: str
    partitions: tuple[PartitionLag, ...]
    observed_at: int  # milliseconds since the epoch, when the figures were read
    metadata: Mapping[str, Any] = field(default_factory=dict)  # e.g. queue depth, rates, capacity
    #: Who reads: each member with the partitions it owns, where the broker says (`lag explain`).
    members: tuple[GroupMember, ...] = ()

    @property
    def total(self) -> int:
        return sum(p.lag or 0 for p in self.partitions)

    def by_topic(self) -> dict[str, int]:
        """Lag rolled up per topic, in the order topics first appear."""
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.topic] = totals.get(p.topic, 0) + (p.lag or 0)
        return totals


class Outage:
    """For adapters: a follow read's outage as its ``on_outage`` hears of it, once as it begins
    and once as it ends, however many errors and retries come in between."""

    def __init__(self, notify: OutageCallback | None) -> None:
        self._notify = notify
        self.active = False

    def begin(self, error: BrokerError) -> None:
        if not self.active:
            self.active = True
            if self._notify is not None:
                self._notify(error)

    def end(self) -> None:
        if self.active:
            self.active = False
            if self._notify is not None:
                self._notify(None)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Option:
    """One option an adapter understands. ``secret`` options are never shown."""

    name: str
    type: type
    default: Any = None
    secret: bool = False
    help: str = ""
    positive: bool = False  # a number that must be > 0 (timeouts, sizes, counts)
    #: Told each time the option is set to anything but its default (e.g. TLS verification turned off).
    warning: str = ""


def check_options(specs: Sequence[Option], raw: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Defaults filled in and types checked; unknown keys are kept as they are (tolerated)."""
    result = dict(raw)
    for spec in specs:
        if spec.name not in raw or raw[spec.name] is None:
            result[spec.name] = spec.default
            continue
        value = raw[spec.name]
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise InvalidRequest(
                f"{where}: option {spec.name!r} must be {spec.type.__name__}, got {type(value).__name__}"
            )
        if spec.positive:
            assert isinstance(value, int | float), f"{spec.name}: positive is for int and float options only"
            if not value > 0:
                raise InvalidRequest(f"{where}: option {spec.name!r} must be > 0, got {value}")
        result[spec.name] = value
    return result


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do; the UI and CLI only offer what is declared here."""

    history: bool = False  # read from any Position, not just live
    partitions: bool = False
    consumer_groups: bool = False
    offsets_reset: bool = False  # commit_offsets()
    publisher_confirms: bool = False
    headers: bool = True
    publish_timestamp: bool = False
    non_destructive_tap: bool = True  # reading never takes an event from a real consumer
    topic_admin: bool = False  # create_topic / delete_topic
    # peek(): reading takes messages and puts them back in place, marked redelivered
    peek_requeue: bool = False


class Connection(abc.ABC):
    """An open connection to one broker. Use as ``async with``; ``close()`` removes temporary resources.

    ``close()`` may be called twice; any other use after it raises :class:`BrokerError`.
    """

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def list_topics(self) -> list[TopicInfo]:
        """Every topic (exchange, queue ...), sorted by name; figures may be summaries."""

    @abc.abstractmethod
    async def describe_topic(self, name: str) -> TopicInfo:
        """Full figures for one topic; raises NotFound."""

    @abc.abstractmethod
    def read(
        self,
        topic: str,
        start: Position,
        *,
        partitions: Sequence[int] | None = None,
        follow: bool = False,
        batch_size: int = 1000,
        on_outage: OutageCallback | None = None,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[list[Event]]:
        """Batches of events from ``start``, ordered per partition.

        Without ``follow`` it ends at the end offsets seen when it began; with ``follow`` it waits
        for new events. It fetches only when the next batch is asked for (backpressure), never
        commits, and frees what it holds when closed (``aclose()``). A missing topic raises
        :class:`NotFound`, when called or at the first batch.

        A follow read outlives a broker outage where the adapter can resume it with no gap and no
        duplicate: it calls ``on_outage(error)`` when it loses the broker (and keeps retrying),
        then ``on_outage(None)`` once it reads again. Where it cannot, the read raises the error.

        A follow read calls ``on_live()`` once, as soon as it is attached (Kafka: partitions assigned
        at their start offsets; a stream: its consumer registered; an exchange: the tap queue bound
        and consumed): every event published from then on reaches the read. Not called on a
        bounded read, nor again after an outage.
        """

    @abc.abstractmethod
    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        """One result per event, in input order: confirmed, or the exact error."""

    async def prepare_publish(self, topic: str) -> None:
        """A hint that events for ``topic`` come soon (``publish --file`` gives it while it checks
        its input): an adapter may make ready what its first publish would wait for. Sends nothing
        and refuses nothing; the default does nothing."""
        return None

    async def groups(self) -> list[GroupInfo]:
        raise Unsupported("this broker has no consumer groups")

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        """Raw lag figures for the given groups (all when None); raises NotFound for an unknown group.

        ``on_progress(done, total)`` is told how many groups were fetched so far, where an adapter
        fetches them in steps (a big cluster's refresh takes seconds); others may never call it.
        """
        raise Unsupported("this broker has no consumer groups")

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Set a group's committed offsets, ``{(topic, partition): next offset to read}``."""
        raise Unsupported("this broker cannot set a group's offsets")

    async def peek(self, topic: str, count: int) -> list[Event]:
        """Up to ``count`` messages from the head of a queue, taken and put back (requeued).

        Not a read: a queue hands a message to one consumer, so the broker takes the messages
        and requeues them: they keep their place in the queue but are marked redelivered (a quorum
        queue also counts the delivery against a delivery limit). Raises NotFound for a missing queue.
        """
        raise Unsupported("this broker cannot peek a queue")

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        """A new topic; ``config`` is the broker's own settings (e.g. ``min.insync.replicas``),
        ``replication_factor`` the copies of each partition (None: the broker's default). A broker
        without replication refuses a factor other than 1 (Unsupported)."""
        raise Unsupported("this broker cannot create topics")

    async def delete_topic(self, name: str) -> None:
        raise Unsupported("this broker cannot delete topics")


class Adapter(abc.ABC):
    """A broker kind. Built from a profile's options; ``connect()`` opens a :class:`Connection`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.settings = check_options(self.options, options, where=f"adapter {self.name!r}")

    @classmethod
    @abc.abstractmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """Options for a quick-connect URL such as ``kafka://host:9092`` or ``local:PATH``."""

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any]) -> list[str]:
        """What to tell the user each time these options are used, never a value: names this adapter
        does not know (tolerated, ignored: probably typos) and options set against their ``warning``."""
        specs = {spec.name: spec for spec in cls.options}
        warnings = []
        for name, value in options.items():
            spec = specs.get(name)
            if spec is None:
                close = difflib.get_close_matches(str(name), sorted(specs), n=1)
                warnings.append(
                    f"option {name!r} is not an option of adapter {cls.name!r}: ignored"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                )
            elif spec.warning and value is not None and value != spec.default:
                warnings.append(spec.warning)
        return warnings

    @abc.abstractmethod
    def describe(self) -> str:
        """Where this adapter connects, for display: secrets masked."""

    @abc.abstractmethod
    async def connect(self) -> Connection:
        """Open a connection; raises Unreachable (in bounded time) or AccessDenied."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
