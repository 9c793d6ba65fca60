"""Trace and replay logic without a broker: windows, gaps, order, matching, dead-letter headers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event, Position
from workbench.errors import UsageError
from workbench.events.correlation import CorrelationRules, parse_rules
from workbench.positions import parse_since
from workbench.triage.replay import (
    REPLAYED_AT,
    REPLAYED_FROM,
    is_dead_letter_header,
    replayed,
)
from workbench.triage.trace import (
    Skipped,
    _Matcher,
    format_gap,
    order_hops,
    skipped_summary,
)

NOW = 1_800_000_000_000


def ev(topic="t", partition=0, offset=0, ts=None, value=None, headers=(), metadata=None) -> Event:
    return Event(topic, partition, offset, ts, None, value, tuple(headers), metadata or {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", Position.at_time(NOW - 86_400_000)),
        ("15m", Position.at_time(NOW - 900_000)),
        ("1.5s", Position.at_time(NOW - 1500)),
        ("7d", Position.at_time(NOW - 7 * 86_400_000)),
        ("250ms", Position.at_time(NOW - 250)),
        ("beginning", Position.beginning()),
    ],
)
def test_since_windows(text, expected):
    assert parse_since(text, NOW) == expected


def test_since_iso_times_are_utc_without_a_zone():
    assert parse_since("2026-11-27T08:00:00Z", NOW) == parse_since("2026-11-27T08:00:00", NOW)
    assert parse_since("2026-11-27T09:00:00+01:00", NOW) == parse_since("2026-11-27T08:00:00", NOW)


@pytest.mark.parametrize(
    "text", ["0h", "yesterday", "-5m", "24 hours", "", "9" * 400 + "s", "0001-01-01T00:00:00+14:00"]
)
def test_since_rejects_what_it_cannot_read(text):
    with pytest.raises(UsageError, match="--since"):
        parse_since(text, NOW)


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (None, "-"),
        (0, "+0 ms"),
        (350, "+350 ms"),
        (1200, "+1.2 s"),
        (59_949, "+59.9 s"),
        (250_000, "+4 min 10 s"),
        (7_500_000, "+2 h 5 min"),
        (90_000_000, "+1 d 1 h"),
        (-1500, "-1.5 s"),
    ],
)
def test_gaps_read_like_a_person_would_say_them(ms, shown):
    assert format_gap(ms) == shown


def test_hops_in_time_order_with_gaps_and_stable_ties():
    events = [
        ("b", ev("pay", 0, 7, 2000)),
        ("a", ev("ord", 1, 3, 1000)),
        ("a", ev("ord", 0, 9, 1000)),
        ("a", ev("ship", 0, 1, None)),
        ("a", ev("inv", 0, 4, 4500)),
    ]
    hops = order_hops(events)
    assert [(h.event.topic, h.event.partition) for h in hops] == [
        ("ord", 0),
        ("ord", 1),
        ("pay", 0),
        ("inv", 0),
        ("ship", 0),
    ]
    assert [h.gap_ms for h in hops] == [None, 0, 1000, 2500, None]
    assert [h.profile for h in hops] == ["a", "a", "b", "a", "a"]


def test_hops_say_type_source_and_causation():
    structured = {"specversion": "1.0", "type": "OrderPlaced", "source": "/orders", "causationId": "e-0"}
    [hop] = order_hops([("p", ev(value=json.dumps(structured).encode(), ts=1))])
    assert (hop.type, hop.source, hop.causation) == ("OrderPlaced", "/orders", "e-0")
    amqp = order_hops([("p", ev(ts=1, metadata={"type": "PaymentFailed", "app_id": "billing"}))])[0]
    assert (amqp.type, amqp.source) == ("PaymentFailed", "billing")


def test_matcher_agrees_with_the_rules_on_numbers_and_escapes():
    rules = CorrelationRules(
        parse_rules(["json:$.id", "header:correlation_id", "property:correlation_id"], "t"),
        parse_rules(["header:c"], "t"),
    )
    assert _Matcher("42", rules)(ev(value=b'{"id": 42}'))
    assert _Matcher("1.5", rules)(ev(value=b'{"id": 1.5e0}'))  # JSON spells it differently
    assert _Matcher("a/b", rules)(ev(value=b'{"id": "a\\/b"}'))
    assert _Matcher("c-1", rules)(ev(metadata={"correlation_id": "c-1"}))
    assert _Matcher("c-1", rules)(ev(headers=[("correlation_id", b"c-1")]))
    assert not _Matcher("c-1", rules)(ev(value=b'{"id": "c-10"}'))
    assert not _Matcher("c-1", rules)(ev(value=b'{"other": "c-1"}'))


_IDS = st.sampled_from(["c-1", "42", "1.5", "a/b", "é", 'x"y'])
_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.fixed_dictionaries({"id": st.one_of(_IDS, st.integers(), st.floats(allow_nan=False, allow_infinity=False))}).map(
        lambda d: json.dumps(d, ensure_ascii=bool(len(str(d)) % 2)).encode()
    ),
)


@settings(max_examples=300, deadline=None)
@given(_IDS, _VALUES, st.lists(st.tuples(st.sampled_from(["correlation_id", "x"]), _IDS.map(str.encode)), max_size=3))
def test_the_byte_precheck_never_hides_a_match(wanted, value, headers):
    rules = CorrelationRules(parse_rules(["header:correlation_id", "json:$.id"], "t"), parse_rules(["header:c"], "t"))
    event = ev(value=value, headers=headers)
    assert _Matcher(wanted, rules)(event) == (rules.correlation_id(event) == wanted)


# --------------------------------------------------------------------------- replay


def test_dead_letter_headers():
    for name in (
        "x-death",
        "X-Death",
        "__connect.errors.topic",
        "__connect.errors.exception.message",
        "kafka_dlt-exception-fqcn",
        "kafka_dlt-original-offset",
        "x-first-death-queue",
        "x-last-death-reason",
    ):
        assert is_dead_letter_header(name), name
    for name in ("death", "kafka_dlt", "__connect.errorsx", "x-deathly", "correlation_id"):
        assert not is_dead_letter_header(name), name


def test_replayed_keeps_key_value_and_order_and_says_where_from():
    event = Event(
        "orders.DLT",
        2,
        17,
        5,
        b"k\x00",
        b"\xffv",
        (("a", b"1"), ("x-death", b"[]"), ("a", b"2"), (REPLAYED_FROM, b"old/0/0")),
    )
    out = replayed(event, now_ms=1_800_000_000_123)
    assert out.origin == "orders.DLT/2/17" and out.stripped == ("x-death",)
    assert (out.event.key, out.event.value) == (b"k\x00", b"\xffv")
    assert out.event.partition is None and out.event.timestamp is None
    assert out.event.headers == (
        ("a", b"1"),
        ("a", b"2"),
        (REPLAYED_FROM, b"orders.DLT/2/17"),
        (REPLAYED_AT, b"2027-01-15T08:00:00.123Z"),
    )


# --------------------------------------------------------------------------- skipped topics


def test_skipped_topics_are_summed_up_in_one_line_by_kind():
    skipped = [Skipped("rabbit", f"x{i}", "exchanges have no history", "exchange") for i in range(4)]
    skipped.append(Skipped("rabbit", "billing", "reading classic queue 'billing' would take ...", "queue"))
    line = skipped_summary(skipped)
    assert "\n" not in line and "history" not in line  # the reasons are for -v
    assert line == "skipped 4 exchanges and 1 queue that cannot be read back: x0, x1, x2 and 2 more"
    assert skipped_summary(skipped[:1], with_profile=True) == ("skipped 1 exchange that cannot be read back: rabbit:x0")
    # A topic named with -t has no kind from a listing: it is a topic.
    assert skipped_summary([Skipped("p", "audit", "no", None)]).startswith("skipped 1 topic that")
