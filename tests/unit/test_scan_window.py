"""The bounded scan's window and account (workbench.scan), --until parsing, and @name expansion."""

from __future__ import annotations

import pytest

from workbench.broker import Event, PartitionInfo, Position, TopicInfo
from workbench.errors import UsageError
from workbench.events.filters import FilterError, expand_named
from workbench.positions import check_window, parse_until
from workbench.scan import ScanReport

INFO = TopicInfo("t", partitions=(PartitionInfo(0, 0, 10), PartitionInfo(1, 0, 10), PartitionInfo(2, 5, 5)))


def ev(partition: int, offset: int, ts: int | None = None) -> Event:
    return Event("t", partition, offset, ts, None, None)


def test_a_time_end_closes_each_partition_at_its_first_later_event():
    report = ScanReport.plan(INFO, Position.beginning(), until=Position.at_time(100))
    assert report.partitions[2].complete  # empty: nothing to read
    kept, _ = report.take([ev(0, 0, 50), ev(0, 1, None), ev(0, 2, 101), ev(0, 3, 60), ev(1, 0, 99)], None, None)
    assert [(e.partition, e.offset) for e in kept] == [(0, 0), (0, 1), (1, 0)]
    assert report.partitions[0].complete and not report.partitions[1].complete
    report.stop("interrupted")
    assert report.stopped == "interrupted" and "p1 offsets 0-0" in report.line()
    assert report.as_dict()["complete"] is False


def test_an_offset_end_is_inclusive_and_a_limit_stops_scanning():
    report = ScanReport.plan(INFO, Position.beginning(), [0, 1], until=Position.at_offset(1))
    kept, left = report.take([ev(0, 0), ev(0, 1), ev(1, 0), ev(1, 1)], lambda e: e.offset == 1, 1)
    assert [(e.partition, e.offset) for e in kept] == [(0, 1)] and left == 0
    assert report.partitions[0].complete and report.partitions[1].scanned == 0  # not scanned after the limit
    done = ScanReport.plan(INFO, Position.beginning(), [0, 1], until=Position.at_offset(1))
    done.take([ev(0, 0), ev(0, 1), ev(1, 0), ev(1, 1)], None, None)
    assert done.done and done.line().startswith("scanned t: 2 of 3 partitions, 4 events, 4 matched, until 1;")


def test_until_parsing_and_empty_windows():
    assert parse_until("now") == Position.end() and parse_until("12") == Position.at_offset(12)
    assert parse_until("2026-01-01T00:00:00Z").kind == "timestamp"
    for bad in ("-5", "soon", "9" * 25):
        with pytest.raises(UsageError):
            parse_until(bad)
    with pytest.raises(UsageError):
        check_window(Position.at_offset(9), Position.at_offset(3))
    check_window(Position.beginning(), Position.at_offset(3))


def test_named_filters_expand_outside_strings_and_refuse_unknown_names_and_loops():
    named = {"a": "x == 1", "b": "@a or y == 2", "me": "@me"}
    assert expand_named('@b and z == "@a"', named) == '((x == 1) or y == 2) and z == "@a"'
    with pytest.raises(FilterError, match="no named filter @c"):
        expand_named("@c", named)
    with pytest.raises(FilterError, match="refers to itself"):
        expand_named("@me", named)
