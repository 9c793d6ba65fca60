"""The contract's option checking: defaults, types, positive numbers, unknown keys tolerated."""

import pytest

from workbench.broker import InvalidRequest, Option, Position, check_options

SPECS = (
    Option("timeout_s", float, 10.0, positive=True),
    Option("window", int, 100, positive=True),
    Option("name", str, None),
)


def test_defaults_filled_ints_accepted_as_floats_unknown_keys_kept():
    assert check_options(SPECS, {"timeout_s": 2, "acks": "all"}, where="x") == {
        "timeout_s": 2.0,
        "window": 100,
        "name": None,
        "acks": "all",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timeout_s": 0}, "'timeout_s' must be > 0, got 0"),
        ({"window": -5}, "'window' must be > 0, got -5"),
        ({"window": True}, "'window' must be int, got bool"),
        ({"name": 3}, "'name' must be str, got int"),
    ],
)
def test_bad_options_name_the_option(raw, message):
    with pytest.raises(InvalidRequest, match=message):
        check_options(SPECS, raw, where="adapter 'x'")


def test_positions_print_as_users_type_them():
    assert [str(p) for p in (Position.beginning(), Position.end(), Position.at_offset(7), Position.last(3))] == [
        "beginning",
        "end",
        "7",
        "-3",
    ]
    assert str(Position.at_time(1_795_766_400_000)) == "2026-11-27T08:00:00.000+00:00"
