"""Burrow-style verdicts and interpolated time lag, driven by a fake clock."""

from __future__ import annotations

import pytest

from workbench.broker import GroupLag, PartitionLag
from workbench.lag import LagTracker, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def feed(tracker: LagTracker, clock: Clock, rows, *, state="Stable", step=10.0, group="g"):
    """rows: (committed, end) per refresh, one refresh every ``step`` seconds."""
    for committed, end in rows:
        clock.now += step
        tracker.observe([GroupLag(group, state, (PartitionLag("t", 0, committed, 0, end),), int(clock.now * 1000))])


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tracker(clock):
    return LagTracker(window=5, clock=clock)


def test_zero_lag_in_window_is_ok(tracker, clock):
    feed(tracker, clock, [(100, 100), (100, 150), (120, 200)])
    assert tracker.assess("g", "t", 0).verdict is Verdict.OK


def test_shrinking_lag_is_ok(tracker, clock):
    feed(tracker, clock, [(10, 100), (40, 110), (80, 120)])
    a = tracker.assess("g", "t", 0)
    assert (a.verdict, a.lag) == (Verdict.OK, 40)


def test_consuming_but_lag_growing_warns(tracker, clock):
    feed(tracker, clock, [(10, 100), (20, 130), (30, 160)])
    a = tracker.assess("g", "t", 0)
    assert a.verdict is Verdict.WARN and "not shrinking" in a.rule


def test_committed_not_moving_with_live_members_stalls(tracker, clock):
    feed(tracker, clock, [(10, 100), (10, 110), (10, 120)])
    assert tracker.assess("g", "t", 0).verdict is Verdict.STALL


def test_no_commits_and_no_members_for_longer_than_window_stops(tracker, clock):
    feed(tracker, clock, [(10, 100 + i) for i in range(5)], state="Empty")  # exactly the window (5)
    assert tracker.assess("g", "t", 0).verdict is Verdict.STALL  # not yet longer than the window
    feed(tracker, clock, [(10, 106)], state="Empty")
    a = tracker.assess("g", "t", 0)
    assert a.verdict is Verdict.STOP and "no live member" in a.rule


def test_empty_group_that_committed_recently_is_not_stopped(tracker, clock):
    feed(tracker, clock, [(10, 100), (20, 110), (30, 200)], state="Empty")
    assert tracker.assess("g", "t", 0).verdict is Verdict.WARN


def test_offset_going_back_is_rewind(tracker, clock):
    feed(tracker, clock, [(50, 100), (60, 110), (20, 120)])
    assert tracker.assess("g", "t", 0).verdict is Verdict.REWIND


def test_window_forgets_old_samples(tracker, clock):
    feed(tracker, clock, [(100, 100)] + [(100 + i * 5, 130 + i * 10) for i in range(1, 6)])
    assert tracker.assess("g", "t", 0).verdict is Verdict.WARN  # the old zero-lag sample left the window


def test_single_sample_has_no_trend(tracker, clock):
    feed(tracker, clock, [(10, 100)])
    a = tracker.assess("g", "t", 0)
    assert a.verdict is Verdict.UNKNOWN and "one sample" in a.rule and a.time_lag_ms is None


def test_time_lag_interpolates_end_offset_history(tracker, clock):
    # end offset: 100 at t+10s, 200 at t+20s, 300 at t+30s; committed reaches 150 at the end
    feed(tracker, clock, [(0, 100), (50, 200), (150, 300)])
    a = tracker.assess("g", "t", 0)
    # the end offset was 150 half-way between t+10s and t+20s, i.e. 15 s before "now" (t+30s)
    assert a.time_lag_ms == 15_000


def test_time_lag_extrapolates_before_the_first_sample(tracker, clock):
    feed(tracker, clock, [(0, 100), (0, 200)])
    # 100 events per 10 s: the end offset was 0 ten seconds before the first sample
    assert tracker.assess("g", "t", 0).time_lag_ms == 30_000 - 10_000


def test_time_lag_zero_when_caught_up(tracker, clock):
    feed(tracker, clock, [(100, 100), (200, 200)])
    assert tracker.assess("g", "t", 0).time_lag_ms == 0


def test_group_verdict_is_the_worst_partition(tracker, clock):
    for committed_1 in (5, 5, 5):
        clock.now += 10
        parts = (PartitionLag("t", 0, 100, 0, 100), PartitionLag("t", 1, committed_1, 0, 50))
        tracker.observe([GroupLag("g", "Stable", parts, int(clock.now * 1000))])
    group = tracker.assess_group("g")
    assert (group.verdict, group.lag) == (Verdict.STALL, 45)


def test_nothing_committed_is_ok_without_lag(tracker, clock):
    feed(tracker, clock, [(None, 10), (None, 20)])
    a = tracker.assess("g", "t", 0)
    assert (a.verdict, a.lag, a.time_lag_ms) == (Verdict.OK, None, None)


@pytest.mark.parametrize(
    ("backlog", "in_rate", "out_rate", "expected"),
    [(0, 5.0, 1.0, 0.0), (100, 5.0, 15.0, 10.0), (100, 10.0, 10.0, None), (100, 20.0, 10.0, None), (100, None, 3.0, None)],
)
def test_seconds_to_drain(backlog, in_rate, out_rate, expected):
    from workbench.lag import seconds_to_drain

    assert seconds_to_drain(backlog, in_rate, out_rate) == expected


def test_lag_output_carries_time_to_drain_when_the_broker_gives_rates():
    from workbench.output import lag_dict

    queue = GroupLag("billing", "Stable", (PartitionLag("billing", 0, 10, 10, 110),), 0,
                     metadata={"in_rate": 2.0, "out_rate": 7.0})
    assert lag_dict(queue)["seconds_to_drain"] == 20.0
    assert "seconds_to_drain" not in lag_dict(GroupLag("g", "Stable", (), 0))
