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
    [
        (0, 5.0, 1.0, 0.0),
        (100, 5.0, 15.0, 10.0),
        (100, 10.0, 10.0, None),
        (100, 20.0, 10.0, None),
        (100, None, 3.0, None),
    ],
)
def test_seconds_to_drain(backlog, in_rate, out_rate, expected):
    from workbench.lag import seconds_to_drain

    assert seconds_to_drain(backlog, in_rate, out_rate) == expected


def test_lag_output_carries_time_to_drain_when_the_broker_gives_rates():
    from workbench.cli.output import lag_dict

    queue = GroupLag(
        "billing", "Stable", (PartitionLag("billing", 0, 10, 10, 110),), 0, metadata={"in_rate": 2.0, "out_rate": 7.0}
    )
    assert lag_dict(queue)["seconds_to_drain"] == 20.0
    assert "seconds_to_drain" not in lag_dict(GroupLag("g", "Stable", (), 0))


# --------------------------------------------------------------------------- stable verdicts (issue 19)


def observe_at(tracker: LagTracker, clock: Clock, committed: int, end: int, *, state="Empty", group="g") -> None:
    """One refresh read at the clock's time, as `lag --watch` does it."""
    tracker.observe([GroupLag(group, state, (PartitionLag("t", 0, committed, 0, end),), int(clock.now * 1000))])


def test_the_same_samples_give_the_same_verdict_whenever_they_are_assessed(clock):
    """`lag --watch` flipped STOP/STALL on unchanged data: the rule compared the clock at assessment
    with the sample times, so a millisecond of processing decided."""
    verdicts = set()
    for delay_s in (0.0, 0.001, 0.004, 0.5, 30.0):
        tracker = LagTracker(window=10, clock=clock)
        clock.now = 1_000_000.0
        for _ in range(3):
            observe_at(tracker, clock, 10, 100)
            clock.now += 1.0
        clock.now -= 1.0  # the last refresh's own time
        clock.now += delay_s  # then assessed a little (or a lot) later
        verdicts.add(tracker.assess("g", "t", 0).verdict)
    assert verdicts == {Verdict.STALL}


def test_stop_waits_until_the_window_has_really_passed(clock):
    """Two samples one second apart are not 'no commits for longer than the window' (10 refreshes)."""
    tracker = LagTracker(window=10, clock=clock)
    for refresh in range(1, 12):
        observe_at(tracker, clock, 10, 100 + refresh)
        clock.now += 1.0 + 0.003  # the next refresh, and assessed a few ms later than the last one
        verdict = tracker.assess("g", "t", 0).verdict
        if 2 <= refresh <= 10:  # the window holds every sample since the offset was first seen
            assert verdict is Verdict.STALL, refresh
    assert verdict is Verdict.STOP  # the 11th: the offset predates the window's first sample


def test_watch_like_run_on_unchanged_data_never_flips(clock):
    """`lag --watch --interval 1 --iterations 8` on unchanged data: one verdict, run after run."""
    runs = set()
    for jitter_ms in (0, 1, 2, 7):
        tracker = LagTracker(clock=clock)
        seen = []
        for _ in range(8):
            observe_at(tracker, clock, 10, 100)
            clock.now += jitter_ms / 1000
            seen.append(tracker.assess_group("g").verdict)
            clock.now += 1.0
        runs.add(tuple(seen[1:]))
    assert runs == {(Verdict.STALL,) * 7}


def test_assess_partitions_and_combine_agree_with_assess_group(tracker, clock):
    for committed_1 in (5, 5, 5):
        clock.now += 10
        parts = (PartitionLag("t", 0, 100, 0, 100), PartitionLag("t", 1, committed_1, 0, 50))
        tracker.observe(
            [
                GroupLag("g", "Stable", parts, int(clock.now * 1000)),
                GroupLag("other", "Stable", (PartitionLag("t", 0, 1, 0, 100),), int(clock.now * 1000)),
            ]
        )
    from workbench.lag import combine

    found = tracker.assess_partitions("g")
    assert set(found) == {("t", 0), ("t", 1)}
    assert combine(found.values()) == tracker.assess_group("g")
    with pytest.raises(KeyError):
        tracker.assess_partitions("nope")


def test_worst_first_ranks_unknown_between_ok_and_warn():
    from workbench.lag import severity

    ranked = sorted(Verdict, key=severity, reverse=True)
    assert ranked == [
        Verdict.NOCONSUMER,
        Verdict.STOP,
        Verdict.STALL,
        Verdict.REWIND,
        Verdict.WARN,
        Verdict.UNKNOWN,
        Verdict.OK,
    ]
