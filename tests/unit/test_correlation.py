"""Correlation and causation rules: parsing, validation, extraction, and the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event
from workbench.config import parse_config
from workbench.errors import ConfigError
from workbench.events import codecs
from workbench.events.correlation import (
    DEFAULT_RULES,
    CorrelationRules,
    Rule,
    parse_rule,
    parse_rules,
    rules_from_config,
    rules_from_table,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def ev(value=None, headers=(), metadata=None) -> Event:
    return Event("t", 0, 0, None, None, value, tuple(headers), metadata or {})


def rules(*specs: str, causation: tuple[str, ...] = ("header:causation_id",)) -> CorrelationRules:
    return CorrelationRules(parse_rules(list(specs), "test"), parse_rules(list(causation), "test"))


# --------------------------------------------------------------------------- parsing


def test_rule_texts_round_trip():
    for spec in (
        "header:correlation_id",
        "property:correlation_id",
        "ce:subject",
        "traceparent",
        "json:$.data.orderId",
        "data:$.items[0]['order-id']",
    ):
        assert str(parse_rule(spec)) == spec
    assert parse_rule("json:$.a['b.c'][2]").path == ("a", "b.c", 2)
    assert parse_rule("HEADER:X-Correlation-Id") == Rule("header", "x-correlation-id")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cookie:x", "unknown rule kind 'cookie'"),
        ("header:", "missing the part after ':'"),
        ("header:bad name", "is not a valid name"),
        ("json:correlationId", "starts with '$'"),
        ("json:$", "names the whole value"),
        ("json:$.a..b", "bad JSON path at column 4"),
        ("json:$.a[x]", "bad JSON path at column 4"),
        ("traceparent:x", "takes no argument"),
        (42, "must be a string"),
    ],
)
def test_bad_rules_are_named(spec, message):
    with pytest.raises(ConfigError, match="where") as info:
        parse_rule(spec, "where")
    assert message in str(info.value)


def test_profile_file_table_is_validated_with_file_and_field(tmp_path: Path):
    path = tmp_path / "workbench.toml"
    with pytest.raises(ConfigError) as info:
        rules_from_table({"rules": ["header:a", "json:nope"]}, path)
    assert str(info.value).startswith(f"{path}: [correlation] rules[1] = 'json:nope'")
    with pytest.raises(ConfigError, match=r"\[correlation\]: unknown field 'rule'"):
        rules_from_table({"rule": ["header:a"]}, path)
    with pytest.raises(ConfigError, match=r"\[correlation\] causation must be a non-empty list"):
        rules_from_table({"causation": "header:x"}, path)


def test_rules_from_config_replace_only_what_is_given(tmp_path: Path):
    config = parse_config({"correlation": {"rules": ["json:$.data.orderId"]}}, tmp_path / "w.toml")
    loaded = rules_from_config(config)
    assert [str(r) for r in loaded.correlation] == ["json:$.data.orderId"]
    assert loaded.causation == DEFAULT_RULES.causation
    assert rules_from_config(parse_config({}, tmp_path / "w.toml")) is DEFAULT_RULES


# --------------------------------------------------------------------------- extraction


def test_configured_order_is_followed():
    event = ev(
        json.dumps({"data": {"orderId": 17}, "correlationId": "body"}).encode(),
        [("correlation_id", b"hdr"), ("ce_subject", b"order-17")],
    )
    assert rules("json:$.data.orderId", "header:correlation_id").correlation_id(event) == "17"
    assert rules("ce:subject", "json:$.data.orderId").correlation_id(event) == "order-17"
    assert rules("header:missing", "json:$.correlationId").correlation_id(event) == "body"
    assert rules("header:missing", "json:$.nothing").correlation_id(event) is None


def test_amqp_property_counts_after_the_headers():
    event = ev(None, [], {"correlation_id": "amqp-1"})
    assert DEFAULT_RULES.correlation_id(event) == "amqp-1"
    assert DEFAULT_RULES.correlation_id(event) == "amqp-1"
    assert DEFAULT_RULES.correlation_id(ev(None, [("correlation_id", b"h")], {"correlation_id": "p"})) == "h"


def test_structured_cloudevent_subject_and_data_path():
    structured = {"specversion": "1.0", "type": "t", "subject": "s-9", "data": {"orderId": "o-1"}}
    event = ev(json.dumps(structured).encode())
    assert rules("ce:subject").correlation_id(event) == "s-9"
    assert rules("data:$.orderId").correlation_id(event) == "o-1"
    assert rules("json:$.orderId").correlation_id(event) is None
    # Not a CloudEvent: data: looks at the value itself.
    assert rules("data:$.orderId").correlation_id(ev(b'{"orderId": 3}')) == "3"


def test_traceparent_rule_prefers_the_cloudevents_extension():
    headers = [("traceparent", b"00-bad"), ("ce_traceparent", TRACEPARENT.encode())]
    assert rules("traceparent").correlation_id(ev(None, headers)) == TRACE_ID
    assert rules("traceparent").correlation_id(ev(None, [("traceparent", b"00-bad")])) is None


def test_json_path_through_arrays_and_quoted_names():
    event = ev(b'{"items": [{"order-id": "first"}, {"order-id": "second"}]}')
    assert rules("json:$.items[1]['order-id']").correlation_id(event) == "second"
    assert rules("json:$.items[5]['order-id']").correlation_id(event) is None
    assert rules("json:$[0].id").correlation_id(ev(b'[{"id": "a"}]')) == "a"


def test_ids_that_do_not_count():
    for value in (b'{"id": ""}', b'{"id": true}', b'{"id": {"x": 1}}', b'{"id": null}', b'{"id": [1]}'):
        assert rules("json:$.id").correlation_id(ev(value)) is None
    assert rules("json:$.id").correlation_id(ev(b'{"id": 1.5}')) == "1.5"


def test_causation_defaults():
    assert DEFAULT_RULES.causation_id(ev(None, [("causation_id", b"evt-1")])) == "evt-1"
    assert DEFAULT_RULES.causation_id(ev(None, [("ce_causationid", b"evt-2")])) == "evt-2"
    assert DEFAULT_RULES.causation_id(ev(b'{"causationId": "evt-3"}')) == "evt-3"
    structured = {"specversion": "1.0", "type": "t", "data": {"causation_id": "evt-4"}}
    assert DEFAULT_RULES.causation_id(ev(json.dumps(structured).encode())) == "evt-4"
    both = DEFAULT_RULES.ids(ev(b'{"correlationId": "c", "causationId": "e"}'))
    assert (both.correlation, both.causation) == ("c", "e")


def test_a_caller_decoded_value_is_used_and_not_decoded_again():
    event = ev(b'{"correlationId": "from bytes"}')
    assert DEFAULT_RULES.correlation_id(event, codecs.Decoded("json", {"correlationId": "given"})) == "given"
    # "not decoded" (as the TUI rows pass it): only the headers are looked at.
    assert DEFAULT_RULES.correlation_id(event, codecs.Decoded("text", None)) is None


# --------------------------------------------------------------------------- never raises

_NAMES = st.sampled_from(
    [
        "correlation_id",
        "CorrelationId",
        "x-correlation-id",
        "traceparent",
        "ce_traceparent",
        "ce_correlationid",
        "ce_type",
        "causation_id",
        "ce_subject",
        "other",
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "correlationId",
                    "causationId",
                    "data",
                    "specversion",
                    "type",
                    "subject",
                    "traceparent",
                    "items",
                    "orderId",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=10,
)
_VALUES = st.none() | st.binary(max_size=80) | _JSON.map(lambda v: json.dumps(v).encode())
_ALL_KINDS = CorrelationRules(
    parse_rules(
        [
            "header:correlation_id",
            "property:correlation_id",
            "ce:subject",
            "traceparent",
            "json:$.items[0].orderId",
            "data:$.orderId",
            "json:$.correlationId",
        ],
        "test",
    ),
    parse_rules(["header:causation_id", "data:$.causationId"], "test"),
)


@settings(max_examples=400, deadline=None)
@given(
    _VALUES,
    st.lists(st.tuples(_NAMES, st.binary(max_size=60)), max_size=5),
    st.dictionaries(st.just("correlation_id"), st.none() | st.text(max_size=5) | st.integers()),
)
def test_any_event_gives_a_str_or_none(value, headers, metadata):
    event = ev(value, headers, metadata)
    ids = _ALL_KINDS.ids(event)
    for found in (
        ids.correlation,
        ids.causation,
        DEFAULT_RULES.correlation_id(event),
        DEFAULT_RULES.causation_id(event),
    ):
        assert found is None or (isinstance(found, str) and found)
