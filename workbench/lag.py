"""Lag evaluation, the same for every broker: verdicts over a window of samples, and lag in time.

Verdicts follow LinkedIn Burrow's window rules. Burrow reads commit timestamps from Kafka's
``__consumer_offsets``; no broker exposes those through its admin API, so a committed offset's
time here is when it was *first observed*, and the group's state tells a consumer that is alive but
stuck (STALL) from one that is gone (STOP).

Lag in time follows kafka-lag-exporter: remember when each partition's end offset reached which
value, and interpolate the time at which the end offset equalled today's committed offset; the
time lag is how long ago that was. It is an estimate, and shown as one.

A queue that holds messages while nobody consumes it (RabbitMQ says how many consumers a queue
has: ``metadata["consumers"]``) gets a verdict of its own, NOCONSUMER, from a single read: it is a
fact, not a trend, and the first thing on-call must see.

Every assessment carries the figures its rule used (``figures``, and ``because`` in words), so a
verdict can be explained (`lag explain`), alerted on and exported with its numbers.

Pure: the clock is a parameter, so every rule is tested with a fake one.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    NOCONSUMER = 5  # messages waiting and no consumer at all (a RabbitMQ queue nobody reads)


#: How a verdict is shown (Rich styles), by ``lag --watch`` and the TUI's lag view alike.
VERDICT_STYLES = {
    Verdict.UNKNOWN: "dim",
    Verdict.OK: "green",
    Verdict.WARN: "yellow",
    Verdict.REWIND: "magenta",
    Verdict.STALL: "red",
    Verdict.STOP: "bold red",
    Verdict.NOCONSUMER: "bold reverse red",
}

#: What each verdict means, in the words of `lag --help`, the README and `lag explain`.
VERDICT_MEANINGS = {
    Verdict.UNKNOWN: "one sample with lag: no trend yet",
    Verdict.OK: "lag was zero within the window, or is shrinking",
    Verdict.WARN: "consuming, but lag is not shrinking",
    Verdict.REWIND: "the committed offset went back",
    Verdict.STALL: "committed offset not moving while lag > 0",
    Verdict.STOP: "no commits for longer than the window, and no live member",
    Verdict.NOCONSUMER: "messages waiting and no consumer",
}


def parse_verdicts(text: str) -> frozenset[Verdict]:
    """``STALL,STOP`` -> those verdicts (any case); ValueError naming what is not a verdict."""
    names = [n.strip().upper() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("no verdict named")
    unknown = [n for n in names if n not in Verdict.__members__]
    if unknown:
        raise ValueError(f"not a verdict: {', '.join(unknown)} (verdicts: {', '.join(Verdict.__members__)})")
    return frozenset(Verdict[n] for n in names)


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
    figures: Mapping[str, Any] = field(default_factory=dict)  # the numbers the rule used

    @property
    def label(self) -> str:
        return self.verdict.name

    @property
    def because(self) -> str:
        """The rule's figures in words: ``committed 120 over 4 samples in 6.0 s; lag 30 -> 45``."""
        return explain_figures(self.figures)


def explain_figures(f: Mapping[str, Any]) -> str:
    parts = []
    if "messages" in f:
        parts.append(f"{f['messages']:,} message(s) waiting, {f.get('consumers', 0)} consumer(s)")
    if "from_committed" in f and "to_committed" in f:
        parts.append(f"committed {f['from_committed']:,} -> {f['to_committed']:,}")
    elif "committed" in f:
        parts.append(f"committed {f['committed']:,}")
    if "samples" in f:
        span = f" in {f['window_s']:.1f} s" if f.get("window_s") is not None else ""
        parts.append(f"over {f['samples']} sample(s){span}")
    if "unchanged_s" in f:
        parts.append(f"unchanged for {f['unchanged_s']:.1f} s")
    if "state" in f:
        parts.append(f"group state {f['state'] or 'unknown'}")
    if "first_lag" in f and "last_lag" in f:
        parts.append(f"lag {f['first_lag']:,} -> {f['last_lag']:,}")
    elif "min_lag" in f:
        parts.append(f"lowest lag {f['min_lag']:,}")
    return "; ".join(parts)


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
    worst = max(found, key=lambda a: (a.verdict, a.lag or 0))
    time_lags = [a.time_lag_ms for a in found if a.time_lag_ms is not None]
    return Assessment(
        worst.verdict,
        worst.rule,
        sum(a.lag or 0 for a in found),
        max(time_lags) if time_lags else None,
        worst.figures,
    )


def consumers_of(group: GroupLag) -> int | None:
    """How many consumers the broker counts on the group (RabbitMQ queues), None where it does not say."""
    consumers = group.metadata.get("consumers") if group.metadata else None
    return consumers if isinstance(consumers, int) and not isinstance(consumers, bool) else None


def no_consumer(group: GroupLag) -> Assessment | None:
    """NOCONSUMER from one read: messages waiting where the broker counts no consumer; else None."""
    if consumers_of(group) != 0 or group.total <= 0:
        return None
    return Assessment(
        Verdict.NOCONSUMER,
        VERDICT_MEANINGS[Verdict.NOCONSUMER],
        group.total,
        None,
        {"messages": group.total, "consumers": 0},
    )


def snapshot_verdict(group: GroupLag) -> Verdict:
    """What one read says without a window: NOCONSUMER, lag with no trend yet (UNKNOWN), or OK."""
    if no_consumer(group) is not None:
        return Verdict.NOCONSUMER
    return Verdict.UNKNOWN if group.total else Verdict.OK


class LagTracker:
    """Keeps the last ``window`` samples per partition while a view or `lag --watch` runs.

    Sized for 10,000 groups x 24 partitions: a partition's samples are a tuple (not a deque: a
    fifth of the memory), equal samples of one refresh are one shared object (the groups of a
    shared cluster sit at the same offsets), and an assessment is computed once per distinct
    history and second, then shared by every partition with that history (until the next
    ``observe``). Measured: 10 refreshes of 240,000 partitions grew the process by 265 MB
    with a deque of Sample objects each, and assessing them all took 3 s a refresh.
    """

    def __init__(self, window: int = 10, clock: Callable[[], float] = time.time, history: int = 120) -> None:
        self.window = window
        self.clock = clock
        self._samples: dict[PartitionKey, tuple[Sample, ...]] = {}
        self._by_group: dict[str, list[PartitionKey]] = {}  # so a group is assessed without a scan of all
        self._ends: dict[tuple[str, int], deque[tuple[int, int]]] = {}  # (topic, partition) -> (end, at)
        self._states: dict[str, str] = {}
        self._consumers: dict[str, int | None] = {}
        self._history = history
        self._memo: dict[tuple, Assessment] = {}  # cleared by observe()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def observe(self, groups: Iterable[GroupLag]) -> None:
        self._memo.clear()
        made: dict[tuple[int, int | None, int, int], Sample] = {}  # one object per distinct sample
        keep = self.window - 1
        for group in groups:
            self._states[group.group_id] = group.state
            self._consumers[group.group_id] = consumers_of(group)
            at = group.observed_at
            for p in group.partitions:
                self._observe_end(p.topic, p.partition, p.end, at)
                key = (group.group_id, p.topic, p.partition)
                samples = self._samples.get(key)
                if samples is None:
                    samples = ()
                    self._by_group.setdefault(group.group_id, []).append(key)
                since = at
                if samples and samples[-1].committed == p.committed:
                    since = samples[-1].committed_since
                figures = (at, p.committed, p.end, since)
                sample = made.get(figures)
                if sample is None:
                    sample = made[figures] = Sample(*figures)
                self._samples[key] = (*samples[-keep:], sample) if keep else (sample,)

    def _observe_end(self, topic: str, partition: int, end: int, at: int) -> None:
        ends = self._ends.setdefault((topic, partition), deque(maxlen=self._history))
        if not ends or ends[-1][0] != end:
            ends.append((end, at))

    # ------------------------------------------------------------------ verdicts

    def assess(self, group: str, topic: str, partition: int) -> Assessment:
        samples = self._samples.get((group, topic, partition))
        if not samples:
            raise KeyError((group, topic, partition))
        # What the verdict depends on: the samples (shared objects: their ids), the group's
        # liveness and consumer count; the time lag also on the second it is asked in.
        memo = (
            topic,
            partition,
            tuple(map(id, samples)),
            self._states.get(group, "").lower() in ALIVE_STATES,
            self._consumers.get(group) == 0,
            self.now_ms() // 1000,
        )
        found = self._memo.get(memo)
        if found is None:
            last = samples[-1]
            lag = None if last.committed is None else max(last.end - last.committed, 0)
            verdict, rule, figures = self._rule(group, list(samples))
            found = Assessment(verdict, rule, lag, self.time_lag_ms(topic, partition, last.committed, lag), figures)
            self._memo[memo] = found
        return found

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

    def _rule(self, group: str, samples: list[Sample]) -> tuple[Verdict, str, dict[str, Any]]:
        committed = [s.committed for s in samples if s.committed is not None]
        lags = [s.end - s.committed for s in samples if s.committed is not None]
        first, last = samples[0], samples[-1]
        window = {"samples": len(samples), "window_s": (last.at - first.at) / 1000}
        if self._consumers.get(group) == 0 and lags and lags[-1] > 0:
            return Verdict.NOCONSUMER, VERDICT_MEANINGS[Verdict.NOCONSUMER], {"messages": lags[-1], "consumers": 0}
        if not committed:
            return Verdict.OK, "nothing committed on this partition", window
        if any(lag <= 0 for lag in lags):
            return Verdict.OK, "lag was zero within the window", {**window, "min_lag": min(lags)}
        for a, b in zip(committed, committed[1:], strict=False):
            if b < a:
                return Verdict.REWIND, "committed offset went back", {**window, "from_committed": a, "to_committed": b}
        if len(samples) < 2:
            return (
                Verdict.UNKNOWN,
                "one sample so far: trend unknown",
                {**window, "last_lag": lags[-1], "first_lag": lags[0]},
            )
        moved = {"first_lag": lags[0], "last_lag": lags[-1]}
        if len(set(committed)) == 1:
            state = self._states.get(group, "")
            alive = state.lower() in ALIVE_STATES
            held = {
                **window,
                "committed": committed[0],
                "unchanged_s": (last.at - last.committed_since) / 1000,
                **moved,
            }
            # Judged at the last sample, never at the clock: the same samples give the same verdict.
            # The offset must predate the window's first sample, i.e. the window really passed.
            if not alive and last.committed_since < first.at:
                return Verdict.STOP, VERDICT_MEANINGS[Verdict.STOP], {**held, "state": state}
            return Verdict.STALL, VERDICT_MEANINGS[Verdict.STALL], held
        progress = {**window, "from_committed": committed[0], "to_committed": committed[-1], **moved}
        if lags[-1] >= lags[0]:
            return Verdict.WARN, "consuming, but lag is not shrinking over the window", progress
        return Verdict.OK, "lag is shrinking", progress

    # ------------------------------------------------------------------ rates

    def rates(self, group: str, topic: str, partition: int) -> tuple[float | None, float | None]:
        """Events per second arriving (end offset) and consumed (committed offset) over the window;
        None where the window is too short or nothing was committed."""
        samples = self._samples.get((group, topic, partition))
        if not samples or len(samples) < 2:
            return None, None
        first, last = samples[0], samples[-1]
        seconds = (last.at - first.at) / 1000
        if seconds <= 0:
            return None, None
        in_rate = (last.end - first.end) / seconds
        if first.committed is None or last.committed is None:
            return in_rate, None
        return in_rate, max(last.committed - first.committed, 0) / seconds

    def group_rates(self, group: str) -> tuple[float | None, float | None]:
        """The group's rates: its partitions' summed (None when one of them is unknown)."""
        return sum_rates(self.rates(group, topic, partition) for _g, topic, partition in self._by_group.get(group, ()))

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


def sum_rates(rates: Iterable[tuple[float | None, float | None]]) -> tuple[float | None, float | None]:
    """Partitions' (in, out) rates summed; None when one of them is unknown (or there are none)."""
    total_in = total_out = 0.0
    seen = False
    for in_rate, out_rate in rates:
        if in_rate is None or out_rate is None:
            return None, None
        total_in += in_rate
        total_out += out_rate
        seen = True
    return (total_in, total_out) if seen else (None, None)


def group_drain(group: GroupLag, tracker: LagTracker | None) -> tuple[float | None, float | None, float | None]:
    """(in rate, out rate, seconds to drain) of a group: the broker's own rates where it gives
    them (RabbitMQ), else the tracker's over its window (Kafka, the local log)."""
    meta = group.metadata or {}
    if "in_rate" in meta or "out_rate" in meta:
        in_rate, out_rate = meta.get("in_rate"), meta.get("out_rate")
    elif tracker is not None:
        in_rate, out_rate = tracker.group_rates(group.group_id)
    else:
        return None, None, None
    return in_rate, out_rate, seconds_to_drain(group.total, in_rate, out_rate)


def seconds_to_drain(backlog: int, in_rate: float | None, out_rate: float | None) -> float | None:
    """How long until ``backlog`` is gone if events keep arriving at ``in_rate`` and being done at
    ``out_rate`` (per second); None when it is not shrinking or a rate is unknown."""
    if backlog <= 0:
        return 0.0
    if in_rate is None or out_rate is None or out_rate <= in_rate:
        return None
    return backlog / (out_rate - in_rate)
