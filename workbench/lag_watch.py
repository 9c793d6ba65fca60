"""What `lag --watch`, `lag --serve` and the TUI's lag view make of each refresh: every group's
verdict with the figures behind it, the verdict changes since the last refresh, the alarms.

And how a refresh reads a big cluster incrementally: a shared Kafka has thousands of groups with
no member and no lag (their committed offsets move only when an admin resets them), so their
figures are read again every ``full_every``-th refresh only; between, only the other groups are
read. A group that comes back to life shows in its state at the next full refresh at the latest.

Pure apart from the ``read`` callable it is given; the clock lives in :class:`LagTracker`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.broker import GroupLag, NotFound, PartitionLag
from workbench.lag import (
    Assessment,
    LagTracker,
    Verdict,
    combine,
    group_drain,
    no_consumer,
    seconds_to_drain,
    severity,
    snapshot_verdict,
    sum_rates,
)

Read = Callable[[Sequence[str] | None], Awaitable[list[GroupLag]]]

#: Group states in which a group has no member (Kafka's, and the local log's "Empty").
MEMBERLESS = frozenset({"empty", "dead"})


@dataclass(frozen=True, slots=True)
class GroupView:
    """One group at one refresh: its verdict (the worst partition's), the figures, the drain time."""

    group: GroupLag
    assessment: Assessment | None  # None: one read without a window (plain `lag`), and no NOCONSUMER
    partitions: Mapping[tuple[str, int], Assessment]
    in_rate: float | None = None
    out_rate: float | None = None
    drain_s: float | None = None
    #: seconds to drain per (topic, partition): inf where it never drains at the known rates, None
    #: where the rates are not known
    partition_drain: Mapping[tuple[str, int], float | None] | None = None

    @property
    def verdict(self) -> Verdict:
        return self.assessment.verdict if self.assessment is not None else snapshot_verdict(self.group)

    def worst_partitions(self, limit: int | None = None) -> list[tuple[PartitionLag, Assessment | None]]:
        """Partitions by verdict, then lag in time, then lag in events, worst first."""

        def rank(p: PartitionLag) -> tuple[float, int, int]:
            a = self.partitions.get((p.topic, p.partition))
            if a is None:
                return (0.0, -1, p.lag or 0)
            return (severity(a.verdict), a.time_lag_ms if a.time_lag_ms is not None else -1, p.lag or 0)

        ranked = sorted(self.group.partitions, key=rank, reverse=True)
        return [(p, self.partitions.get((p.topic, p.partition))) for p in ranked[:limit]]


def view(group: GroupLag, tracker: LagTracker | None) -> GroupView:
    """The group as the tracker judges it (or, without one, as one read can: NOCONSUMER only)."""
    if tracker is None or not group.partitions:
        in_rate, out_rate, drain = group_drain(group, tracker)
        one = {(p.topic, p.partition): _or_never(drain, in_rate, out_rate) for p in group.partitions[:1]}
        single = one if len(group.partitions) == 1 else {}
        return GroupView(group, no_consumer(group), {}, in_rate, out_rate, drain, single)
    found = tracker.assess_partitions(group.group_id)
    if "in_rate" in (group.metadata or {}):  # a queue: the broker's own rates
        in_rate, out_rate, drain = group_drain(group, tracker)
        drains = {(p.topic, p.partition): _or_never(drain, in_rate, out_rate) for p in group.partitions}
        return GroupView(group, combine(found.values()), found, in_rate, out_rate, drain, drains)
    rates = {(p.topic, p.partition): tracker.rates(group.group_id, p.topic, p.partition) for p in group.partitions}
    drains = {}
    for p in group.partitions:
        p_in, p_out = rates[(p.topic, p.partition)]
        drains[(p.topic, p.partition)] = _or_never(seconds_to_drain(p.lag or 0, p_in, p_out), p_in, p_out)
    in_rate, out_rate = sum_rates(rates.values())
    drain = seconds_to_drain(group.total, in_rate, out_rate)
    return GroupView(group, combine(found.values()), found, in_rate, out_rate, drain, drains)


def _or_never(drain: float | None, in_rate: float | None, out_rate: float | None) -> float | None:
    """inf for "never drains at these rates" (both known), None for "rates unknown"."""
    if drain is None and in_rate is not None and out_rate is not None:
        return math.inf
    return drain


def evaluate(groups: Iterable[GroupLag], tracker: LagTracker | None) -> list[GroupView]:
    return [view(g, tracker) for g in groups]


# --------------------------------------------------------------------------- changes and alarms


@dataclass(frozen=True, slots=True)
class Change:
    view: GroupView
    previous: Verdict | None  # None: the first verdict seen for this group


class VerdictChanges:
    """Remembers each group's last verdict; tells which ones changed (the first one counts)."""

    def __init__(self) -> None:
        self._last: dict[str, Verdict] = {}

    def update(self, views: Iterable[GroupView]) -> list[Change]:
        changes = []
        for v in views:
            before = self._last.get(v.group.group_id)
            now = v.verdict
            if before is not now:
                self._last[v.group.group_id] = now
                changes.append(Change(v, before))
        return changes


def alarms(views: Iterable[GroupView], fail_on: frozenset[Verdict]) -> list[GroupView]:
    """The groups whose verdict is one of ``fail_on``, worst first."""
    return sorted((v for v in views if v.verdict in fail_on), key=lambda v: (-severity(v.verdict), v.group.group_id))


def change_record(change: Change, at: str | int | None) -> dict[str, Any]:
    """One line of `lag --watch -o jsonl`: the new verdict, the rule with its figures, the worst partition."""
    v = change.view
    a = v.assessment
    worst = v.worst_partitions(1)
    record: dict[str, Any] = {
        "at": at,
        "group": v.group.group_id,
        "state": v.group.state,
        "verdict": v.verdict.name,
        "previous": change.previous.name if change.previous is not None else None,
        "rule": a.rule if a is not None else None,
        "because": a.because if a is not None else None,
        "figures": dict(a.figures) if a is not None else {},
        "total_lag": v.group.total,
        "time_lag_ms": a.time_lag_ms if a is not None else None,
        "in_rate": v.in_rate,
        "out_rate": v.out_rate,
        "seconds_to_drain": v.drain_s,
    }
    if worst:
        p, pa = worst[0]
        record["worst_partition"] = {
            "topic": p.topic,
            "partition": p.partition,
            "committed": p.committed,
            "end": p.end,
            "lag": p.lag,
            "verdict": pa.label if pa is not None else None,
        }
    return record


# --------------------------------------------------------------------------- incremental refresh


def idle(group: GroupLag) -> bool:
    """No member, no lag, nothing waiting: its figures change only by an admin reset or new events."""
    return group.state.lower() in MEMBERLESS and not group.members and group.total == 0 and not group.metadata


class IncrementalRefresh:
    """Reads every group every ``full_every``-th call (and the first time); in between only the
    groups that are not idle, and reuses the idle ones' last figures.

    ``fresh`` after a call names the groups actually read then (feed only those to a tracker: a
    reused figure is not a new sample). A group asked for that is gone makes the next call full.
    """

    def __init__(self, read: Read, *, full_every: int = 6) -> None:
        self.read = read
        self.full_every = max(full_every, 1)
        self.calls = 0
        self.full_reads = 0
        self.last: dict[str, GroupLag] = {}
        self.fresh: list[GroupLag] = []

    async def __call__(self) -> list[GroupLag]:
        full = not self.last or self.calls % self.full_every == 0
        self.calls += 1
        if not full:
            busy = [gid for gid, g in self.last.items() if not idle(g)]
            if len(busy) == len(self.last):
                full = True  # nothing to save
            else:
                try:
                    found = await self.read(busy) if busy else []
                except NotFound:  # a group went away meanwhile: read them all
                    full = True
                else:
                    self.fresh = found
                    self.last.update((g.group_id, g) for g in found)
        if full:
            found = await self.read(None)
            self.full_reads += 1
            self.fresh = found
            self.last = {g.group_id: g for g in found}
        return sorted(self.last.values(), key=lambda g: g.group_id)
