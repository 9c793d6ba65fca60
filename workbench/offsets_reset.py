"""Offsets reset: parse ``--to`` and ``--topic``, plan old -> new per partition, execute safely.

The plan is pure (clamped to each partition's [start, end]); execution re-checks the group's
state right before it commits, so a consumer that joined meanwhile is never overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from workbench.broker import (
    Capabilities,
    Connection,
    GroupLag,
    NotFound,
    PartitionInfo,
    Position,
    Unsupported,
)
from workbench.errors import ResetRefused, UsageError
from workbench.positions import RESET_TO_HELP

UNLISTED = "Unlisted"  # the state of a group groups() does not list (it may still have committed offsets)
# No live member that could overwrite the change. An unlisted group with committed offsets has none either.
RESETTABLE_STATES = frozenset({"Empty", "Dead", UNLISTED})

ResetKind = Literal["earliest", "latest", "offset", "time", "shift"]


@dataclass(frozen=True, slots=True)
class ResetTo:
    """Where ``--to`` moves a group: ``value`` is the offset, the time (ms) or the shift."""

    kind: ResetKind
    value: int = 0

    def __str__(self) -> str:
        if self.kind in ("earliest", "latest"):
            return self.kind
        if self.kind == "offset":
            return str(self.value)
        if self.kind == "shift":
            return f"shift:{self.value:+d}"
        return datetime.fromtimestamp(self.value / 1000, UTC).isoformat(timespec="milliseconds")


def parse_reset_to(text: str) -> ResetTo:
    """``earliest``, ``latest``, ``1200``, ``shift:-5``, or an ISO-8601 time; UsageError otherwise."""
    word = text.strip().lower()
    if word in ("earliest", "beginning", "start"):
        return ResetTo("earliest")
    if word in ("latest", "end"):
        return ResetTo("latest")
    if word.isdigit():
        return ResetTo("offset", int(word))
    if word.startswith("shift:"):
        amount = word.removeprefix("shift:")
        if amount[:1] in ("+", "-") and amount[1:].isdigit():
            return ResetTo("shift", int(amount))
        raise UsageError(f"--to {text!r}: a shift is shift:+N or shift:-N", hint=f"expected {RESET_TO_HELP}")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        hint = f"expected {RESET_TO_HELP}"
        if word.startswith(("-", "+")) and word[1:].isdigit():
            hint = f"to move relative to the committed offset use shift:{word}; {hint}"
        raise UsageError(f"--to {text!r} is not a reset target", hint=hint) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ResetTo("time", int(moment.timestamp() * 1000))


def parse_topic_partitions(text: str) -> tuple[str, tuple[int, ...] | None]:
    """``orders`` -> every partition (None); ``orders:0,2`` -> those partitions."""
    name, sep, rest = text.rpartition(":")
    if not sep:
        name = text
    if not name.strip():
        raise UsageError(f"--topic {text!r} names no topic", hint="expected TOPIC or TOPIC:P[,P...]")
    if not sep:
        return name, None
    try:
        parts = tuple(dict.fromkeys(int(p) for p in rest.split(",")))
    except ValueError:
        raise UsageError(
            f"--topic {text!r}: partitions must be numbers", hint="expected TOPIC or TOPIC:P[,P...], e.g. orders:0,2"
        ) from None
    if any(p < 0 for p in parts):
        raise UsageError(f"--topic {text!r}: partitions are >= 0")
    return name, parts


def ensure_reset_supported(capabilities: Capabilities, adapter: str, *, execute: bool) -> None:
    if not capabilities.consumer_groups:
        raise Unsupported(f"adapter {adapter!r} has no consumer groups: there are no offsets to reset")
    if execute and not capabilities.offsets_reset:
        raise Unsupported(
            f"adapter {adapter!r} cannot set a group's offsets", hint="run without --execute to see the plan only"
        )


@dataclass(frozen=True, slots=True)
class OffsetChange:
    """One partition of a reset: the committed offset now, the offset asked for, the one to commit."""

    topic: str
    partition: int
    current: int | None  # None: the group never committed here
    requested: int  # before clamping to [start, end]
    new: int
    start: int
    end: int

    @property
    def clamped(self) -> bool:
        return self.requested != self.new

    @property
    def note(self) -> str:
        return f"clamped from {self.requested} to {self.new}" if self.clamped else ""


@dataclass(frozen=True)
class ResetPlan:
    group: str
    state: str  # as the broker names it when the plan was made; UNLISTED if groups() does not list it
    to: ResetTo
    changes: tuple[OffsetChange, ...]

    @property
    def offsets(self) -> dict[tuple[str, int], int]:
        return {(c.topic, c.partition): c.new for c in self.changes}

    @property
    def resettable(self) -> bool:
        return self.state in RESETTABLE_STATES


def plan_reset(
    group: str,
    state: str,
    to: ResetTo,
    partitions: Sequence[tuple[str, PartitionInfo]],
    committed: Mapping[tuple[str, int], int | None],
    at_time: Mapping[tuple[str, int], int] | None = None,
) -> ResetPlan:
    """Pure: the new offset of each ``(topic, partition)``, clamped to the partition's [start, end].

    ``at_time`` holds, for a time target, the first offset at or after it per partition (already
    resolved against the broker). A shift from a partition the group never committed on is an error.
    """
    changes = []
    for topic, p in partitions:
        current = committed.get((topic, p.partition))
        if to.kind == "earliest":
            requested = p.start
        elif to.kind == "latest":
            requested = p.end
        elif to.kind == "offset":
            requested = to.value
        elif to.kind == "time":
            requested = (at_time or {}).get((topic, p.partition), p.end)
        else:
            if current is None:
                raise UsageError(
                    f"group {group!r} has no committed offset on {topic!r} partition {p.partition}: "
                    f"nothing to shift from",
                    hint="use an absolute --to (earliest, latest, OFFSET or a time) for that partition",
                )
            requested = current + to.value
        new = min(max(requested, p.start), p.end)
        changes.append(OffsetChange(topic, p.partition, current, requested, new, p.start, p.end))
    return ResetPlan(group, state, to, tuple(changes))


async def group_state(conn: Connection, group: str) -> str:
    """The group's state now; UNLISTED when the broker knows nothing of it.

    Asks about this one group (``lag([group])``), never ``groups()``: on a shared cluster that
    describes every one of thousands of groups to find one.
    """
    try:
        (figures,) = await conn.lag([group])
    except NotFound:
        return UNLISTED
    return figures.state


async def first_offset_at(conn: Connection, topic: str, partition: int, timestamp_ms: int) -> int | None:
    """The first offset at or after ``timestamp_ms`` in one partition, None if no event is that recent."""
    async with aclosing(
        conn.read(topic, Position.at_time(timestamp_ms), partitions=[partition], batch_size=1)
    ) as batches:  # type: ignore[type-var]
        async for batch in batches:
            if batch:
                return batch[0].offset
    return None


async def plan_offsets_reset(
    conn: Connection, group: str, topics: Sequence[tuple[str, Sequence[int] | None]], to: ResetTo
) -> ResetPlan:
    """Read what a reset needs (partitions, committed offsets, state, offsets by time) and plan it.

    Unknown topics and partitions raise NotFound naming them. A group must exist: known to the
    broker (members or committed offsets; ``lag()`` raises NotFound otherwise).
    """
    chosen: list[tuple[str, PartitionInfo]] = []
    seen: set[tuple[str, int]] = set()
    for topic, wanted in topics:
        info = await conn.describe_topic(topic)
        by_number = {p.partition: p for p in info.partitions}
        for number in by_number if wanted is None else wanted:
            if number not in by_number:
                known = ", ".join(map(str, sorted(by_number))) or "none"
                raise NotFound(f"topic {topic!r} has no partition {number} (partitions: {known})")
            if (topic, number) not in seen:
                seen.add((topic, number))
                chosen.append((topic, by_number[number]))
    state = await group_state(conn, group)
    try:
        (figures,) = await conn.lag([group])
    except NotFound:
        if state == UNLISTED:
            raise NotFound(
                f"consumer group {group!r} does not exist", hint="`workbench groups` lists the groups"
            ) from None
        figures = None
    committed = {} if figures is None else {(p.topic, p.partition): p.committed for p in figures.partitions}
    at_time: dict[tuple[str, int], int] = {}
    if to.kind == "time":
        for topic, p in chosen:
            found = await first_offset_at(conn, topic, p.partition, to.value)
            at_time[(topic, p.partition)] = p.end if found is None else found
    return plan_reset(group, state, to, chosen, committed, at_time)


def ensure_resettable(plan: ResetPlan, state: str) -> None:
    """Refuse to change a group that may have live members (anything but Empty, Dead or unlisted)."""
    if state not in RESETTABLE_STATES:
        raise ResetRefused(
            f"consumer group {plan.group!r} is {state}: refusing to change its offsets while it may have live members",
            hint="stop its consumers, wait until `workbench groups` shows it Empty, then run again",
        )


async def execute_offsets_reset(conn: Connection, plan: ResetPlan) -> GroupLag:
    """Commit the plan's offsets, after checking the group's state once more, right before the change.

    Returns the group's figures read back afterwards (to show the change took effect).
    """
    ensure_resettable(plan, plan.state)
    ensure_resettable(plan, await group_state(conn, plan.group))  # re-checked: a consumer may have joined
    await conn.commit_offsets(plan.group, plan.offsets)
    (figures,) = await conn.lag([plan.group])
    return figures
