"""Lag evaluation, the same for every broker: verdicts over a window of samples, and lag in time.

Verdicts follow LinkedIn Burrow's window rules. Burrow reads commit timestamps from Kafka's
``__consumer_offsets``; no broker exposes those through its admin API, so a committed offset's
time here is when it was *first observed*, and the group's state tells a consumer that is alive but
stuck (STALL) from one that is gone (STOP).

Lag in time follows kafka-lag-exporter: remember when each partition's end offset reached which
value, and interpolate the time at which the end offset equalled today's committed offset; the
time lag is how long ago that was. It is an estimate, and shown as one.

Pure: the clock is a parameter, so every rule is tested with a fake one.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workbench.broker import GroupLag

PartitionKey = tuple[str, str, int]  # (group, topic, partition)
ALIVE_STATES = frozenset({"stable", "preparingrebalance", "completingrebalance", "assigning", "reconciling"})


class Verdict(enum.IntEnum):
    """Ordered by severity, so a group's verdict is its worst partition's."""

    UNKNOWN = -1  # one sample with lag: no trend yet
    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4


#: How a verdict is shown (Rich styles), by ``lag --watch`` and the TUI's lag view alike.
VERDICT_STYLES = {
    Verdict.UNKNOWN: "dim",
    Verdict.OK: "green",
    Verdict.WARN: "yellow",
    Verdict.REWIND: "magenta",
    Verdict.STALL: "red",
    Verdict.STOP: "bold red",
}


def format_time_lag(ms: int | None) -> str:
    """An estimated time (lag in time, time to drain) for people: ``~45s``, ``~12m``, ``~3.5h``."""
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 120:
        return f"~{seconds:.0f}s"
    if seconds < 7200:
        return f"~{seconds / 60:.0f}m"
    return f"~{seconds / 3600:.1f}h"


@dataclass(frozen=True, slots=True)
class Sample:
    at: int  # ms, when the figures were read
    committed: int | None
    end: int
    committed_since: int  # ms, when this committed offset was first observed


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
    rule: str  # the rule that fired, in words
    lag: int | None
    time_lag_ms: int | None  # estimate; None when there is not enough history

    @property
    def label(self) -> str:
        return self.verdict.name


def severity(verdict: Verdict) -> float:
    """How much a verdict asks for attention, for sorting worst first: lag with no trend yet
    (UNKNOWN) ranks above OK and below WARN."""
    return 0.5 if verdict is Verdict.UNKNOWN else float(verdict)


def combine(found: Iterable[Assessment]) -> Assessment:
    """A group's assessment from its partitions': the worst verdict, the total lag, the largest
    time lag."""
    found = list(found)
    if not found:
        raise ValueError("no partition assessments to combine")
    worst = max(found, key=lambda a: a.verdict)
    time_lags = [a.time_lag_ms for a in found if a.time_lag_ms is not None]
    return Assessment(worst.verdict, worst.rule, sum(a.lag or 0 for a in found), max(time_lags) if time_lags else None)


class LagTracker:
    """Keeps the last ``window`` samples per partition while a view or `lag --watch` runs."""

    def __init__(self, window: int = 10, clock: Callable[[], float] = time.time, history: int = 120) -> None:
        self.window = window
        self.clock = clock
        self._samples: dict[PartitionKey, deque[Sample]] = {}
        self._by_group: dict[str, list[PartitionKey]] = {}  # so a group is assessed without a scan of all
        self._ends: dict[tuple[str, int], deque[tuple[int, int]]] = {}  # (topic, partition) -> (end, at)
        self._states: dict[str, str] = {}
        self._history = history

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def observe(self, groups: Iterable[GroupLag]) -> None:
        for group in groups:
            self._states[group.group_id] = group.state
            for p in group.partitions:
                self._observe_end(p.topic, p.partition, p.end, group.observed_at)
                key = (group.group_id, p.topic, p.partition)
                samples = self._samples.get(key)
                if samples is None:
                    samples = self._samples[key] = deque(maxlen=self.window)
                    self._by_group.setdefault(group.group_id, []).append(key)
                since = group.observed_at
                if samples and samples[-1].committed == p.committed:
                    since = samples[-1].committed_since
                samples.append(Sample(group.observed_at, p.committed, p.end, since))

    def _observe_end(self, topic: str, partition: int, end: int, at: int) -> None:
        ends = self._ends.setdefault((topic, partition), deque(maxlen=self._history))
        if not ends or ends[-1][0] != end:
            ends.append((end, at))

    # ------------------------------------------------------------------ verdicts

    def assess(self, group: str, topic: str, partition: int) -> Assessment:
        samples = list(self._samples.get((group, topic, partition), ()))
        if not samples:
            raise KeyError((group, topic, partition))
        last = samples[-1]
        lag = None if last.committed is None else max(last.end - last.committed, 0)
        verdict, rule = self._rule(group, samples)
        return Assessment(verdict, rule, lag, self.time_lag_ms(topic, partition, last.committed, lag))

    def assess_group(self, group: str) -> Assessment:
        """The worst partition's assessment, with the group's total lag and its largest time lag."""
        return combine(self.assess_partitions(group).values())

    def assess_partitions(self, group: str) -> dict[tuple[str, int], Assessment]:
        """Every partition the group was seen on, by (topic, partition): one pass for a group's rows
        and its own verdict (``combine``)."""
        keys = self._by_group.get(group)
        if not keys:
            raise KeyError(group)
        return {(t, p): self.assess(g, t, p) for (g, t, p) in keys}

    def _rule(self, group: str, samples: list[Sample]) -> tuple[Verdict, str]:
        committed = [s.committed for s in samples if s.committed is not None]
        lags = [s.end - s.committed for s in samples if s.committed is not None]
        if not committed:
            return Verdict.OK, "nothing committed on this partition"
        if any(lag <= 0 for lag in lags):
            return Verdict.OK, "lag was zero within the window"
        if any(b < a for a, b in zip(committed, committed[1:], strict=False)):
            return Verdict.REWIND, "committed offset went back"
        if len(samples) < 2:
            return Verdict.UNKNOWN, "one sample so far: trend unknown"
        first, last = samples[0], samples[-1]
        if len(set(committed)) == 1:
            alive = self._states.get(group, "").lower() in ALIVE_STATES
            # Judged at the last sample, never at the clock: the same samples give the same verdict.
            # The offset must predate the window's first sample, i.e. the window really passed.
            if not alive and last.committed_since < first.at:
                return Verdict.STOP, "no commits for longer than the window, and no live member"
            return Verdict.STALL, "committed offset not moving while lag > 0"
        if lags[-1] >= lags[0]:
            return Verdict.WARN, "consuming, but lag is not shrinking over the window"
        return Verdict.OK, "lag is shrinking"

    # ------------------------------------------------------------------ time lag

    def time_lag_ms(self, topic: str, partition: int, committed: int | None, lag: int | None) -> int | None:
        """How long ago the end offset was where the committed offset is now (interpolated)."""
        if committed is None or lag is None:
            return None
        now = self.now_ms()
        if lag == 0:
            return 0
        points = list(self._ends.get((topic, partition), ()))
        if len(points) < 2:
            return None
        for (end_a, at_a), (end_b, at_b) in zip(points, points[1:], strict=False):
            if end_a <= committed <= end_b:
                at = at_a + (at_b - at_a) * (committed - end_a) / max(end_b - end_a, 1)
                return max(int(now - at), 0)
        (end_a, at_a), (end_b, at_b) = points[0], points[1]
        if committed < end_a and end_b > end_a:  # older than what we saw: extrapolate the first rate
            at = at_a - (end_a - committed) * (at_b - at_a) / (end_b - end_a)
            return max(int(now - at), 0)
        return None


def seconds_to_drain(backlog: int, in_rate: float | None, out_rate: float | None) -> float | None:
    """How long until ``backlog`` is gone if events keep arriving at ``in_rate`` and being done at
    ``out_rate`` (per second); None when it is not shrinking or a rate is unknown."""
    if backlog <= 0:
        return 0.0
    if in_rate is None or out_rate is None or out_rate <= in_rate:
        return None
    return backlog / (out_rate - in_rate)
