import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.broker import Position
from workbench.errors import UsageError
from workbench.events.envelope import format_timestamp
from workbench.positions import parse_duration, parse_position, parse_since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beginning", Position.beginning()),
        ("earliest", Position.beginning()),
        ("END", Position.end()),
        ("latest", Position.end()),
        ("0", Position.at_offset(0)),
        ("1200", Position.at_offset(1200)),
        ("-5", Position.last(5)),
        ("2026-11-27T08:00:00Z", Position.at_time(1_795_766_400_000)),
        ("2026-11-27T09:00:00+01:00", Position.at_time(1_795_766_400_000)),
        ("2026-11-27T08:00:00", Position.at_time(1_795_766_400_000)),
    ],
)
def test_positions(text, expected):
    assert parse_position(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-0", "1.5", "--3", "2026-13-01"])
def test_bad_positions_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_position(text)


def test_timestamp_format_round_trips_milliseconds():
    assert format_timestamp(1_795_766_400_123) == "2026-11-27T08:00:00.123Z"
    assert parse_position(format_timestamp(1_795_766_400_123)) == Position.at_time(1_795_766_400_123)


_DURATION_LIKE = st.from_regex(r"\A-?[0-9]{0,420}(\.[0-9]{0,30})?\s?(ms|s|m|h|d|w|x)?\Z")
_TIME_LIKE = st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z)?\Z")


@given(st.one_of(st.text(), _DURATION_LIKE, _TIME_LIKE))
def test_since_and_durations_give_a_position_or_a_usage_error(text):
    for parse in (lambda: parse_since(text, 1_800_000_000_000), lambda: parse_duration(text)):
        try:
            parse()
        except UsageError:
            pass
