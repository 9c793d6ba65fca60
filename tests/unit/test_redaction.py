"""The [mask] rules applied to events (pure): paths, wildcards, lists, styles, headers, patterns,
text and binary values, schema-decoded values, the filter view and the marker."""

from __future__ import annotations

import json
import re

import pytest

from workbench.broker import Event
from workbench.errors import ConfigError
from workbench.events.codecs import Decoded, SchemaInfo, decoded_value
from workbench.events.filters import compile_filter
from workbench.events.redaction import ORIGINAL, REDACTED_HEADER, parse_mask

CARD = r"\b(?:\d[ -]?){12,18}\d\b"


def redactor(**table):
    rules = parse_mask(table, "[mask]")
    assert rules is not None
    return rules.redactor("salt")


def event(value, key=None, headers=()) -> Event:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Event("t", 0, 7, 1_000, key, raw, tuple(headers))


def value_of(e: Event):
    return json.loads(e.value)


def test_paths_wildcards_and_lists():
    r = redactor(fields=["value.customer.email", "value.lines.*.sku", "value.tags.*", "value.people.name"])
    shown = value_of(
        r.redact(
            event(
                {
                    "customer": {"email": "a@b.c", "id": 1},
                    "lines": [{"sku": "S1", "qty": 1}, {"sku": "S2", "qty": 2}],
                    "tags": ["vip", "eu"],
                    "people": [{"name": "Ann"}, [{"name": "Bob"}]],  # a list met on the way is walked
                    "other": {"email": "kept@b.c"},
                }
            )
        )
    )
    assert shown == {
        "customer": {"email": "****", "id": 1},
        "lines": [{"sku": "****", "qty": 1}, {"sku": "****", "qty": 2}],
        "tags": ["****", "****"],
        "people": [{"name": "****"}, [{"name": "****"}]],
        "other": {"email": "kept@b.c"},
    }


def test_styles():
    r = redactor(
        rules=[
            {"field": "value.card", "style": "last4"},
            {"field": "value.pin", "style": "last4"},
            {"field": "value.amount", "style": "last4"},
            {"field": "value.id", "style": "hash"},
            {"field": "value.nested", "style": "hash"},
            {"field": "value.gone"},
        ]
    )
    shown = value_of(
        r.redact(
            event(
                {
                    "card": "4111111111111111",
                    "pin": "1234",
                    "amount": 123456,
                    "id": "x",
                    "nested": {"a": 1},
                    "gone": None,
                }
            )
        )
    )
    assert shown["card"] == "****1111"
    assert shown["pin"] == "****"  # four characters or fewer: nothing kept
    assert shown["amount"] == "****3456"
    assert re.fullmatch(r"hash:[0-9a-f]{16}", shown["id"])
    assert re.fullmatch(r"hash:[0-9a-f]{16}", shown["nested"])
    assert shown["gone"] is None  # a null reveals nothing and stays null
    again = value_of(r.redact(event({"id": "x"})))
    assert again["id"] == shown["id"]  # equal values stay equal
    other_salt = parse_mask({"rules": [{"field": "value.id", "style": "hash"}]}, "[mask]").redactor("other")
    assert value_of(other_salt.redact(event({"id": "x"})))["id"] != shown["id"]


def test_the_more_specific_rule_wins_over_a_wildcard():
    r = redactor(rules=[{"field": "value.card.*"}, {"field": "value.card.number", "style": "last4"}])
    assert value_of(r.redact(event({"card": {"number": "4111111111111111", "cvc": "123"}}))) == {
        "card": {"number": "****1111", "cvc": "****"}
    }


def test_patterns_reach_strings_numbers_text_keys_headers_and_binary():
    r = redactor(patterns=[CARD])
    shown = r.redact(
        event(
            {"note": "card 4111 1111 1111 1111 ok", "n": 4111111111111111, "small": 42, "flag": True},
            key=b"k-4111111111111111",
            headers=[("X-Note", b"pay 5555555555554444"), ("plain", b"\xff\xfe")],
        )
    )
    assert value_of(shown) == {"note": "card **** ok", "n": "****", "small": 42, "flag": True}
    assert shown.key == b"k-****"
    assert dict(shown.headers) == {"X-Note": b"pay ****", "plain": b"\xff\xfe", REDACTED_HEADER: b"true"}
    text = r.redact(event(b"plain 4111-1111-1111-1111 end"))
    assert text.value == b"plain **** end"
    binary = r.redact(event(b"\x00\xff 4111111111111111 \x80"))
    assert binary.value == b"\x00\xff **** \x80"  # untouched bytes stay exact


def test_field_rules_run_before_patterns():
    r = redactor(patterns=[CARD], rules=[{"field": "value.card", "style": "last4"}])
    assert value_of(r.redact(event({"card": "4111111111111111", "note": "4111111111111111"}))) == {
        "card": "****1111",
        "note": "****",
    }


def test_whole_key_or_value_and_headers_by_name_in_any_case():
    r = redactor(fields=["key", "headers.Authorization"], headers=["x-token"])
    shown = r.redact(event({"a": 1}, key=b"secret-key", headers=[("authorization", b"Bearer x"), ("X-TOKEN", b"t")]))
    assert shown.key == b"****"
    assert dict(shown.headers)["authorization"] == b"****" and dict(shown.headers)["X-TOKEN"] == b"****"
    assert json.loads(shown.value) == {"a": 1}


def test_an_untouched_value_keeps_its_exact_bytes_and_the_marker_is_not_doubled():
    r = redactor(fields=["value.email"])
    raw = b'{ "id" : 1 }'  # spacing a re-encoding would change
    once = r.redact(event(raw))
    assert once.value == raw
    twice = r.redact(once)
    assert [name for name, _ in twice.headers].count(REDACTED_HEADER) == 1


def test_a_schema_decoded_value_is_masked_and_keeps_its_schema():
    r = redactor(fields=["value.customer.email"])
    schema = SchemaInfo("avro", id=3, subject="orders-value", version=1)
    decoded = Decoded("json", {"customer": {"email": "a@b.c"}}, schema)
    original = Event("t", 0, 1, 1, None, b"\x00\x00\x00\x00\x03avro-bytes", (), {"decoded_value": decoded})
    shown = r.redact(original)
    assert decoded_value(shown) == Decoded("json", {"customer": {"email": "****"}}, schema)
    assert b"a@b.c" not in shown.value and json.loads(shown.value) == {"customer": {"email": "****"}}


def test_filters_see_masked_values_unless_the_rule_is_filterable():
    r = redactor(fields=["value.email"], rules=[{"field": "value.id", "style": "hash", "filterable": True}])
    (shown,) = r.redact_all([event({"email": "a@b.c", "id": "c-1"})])
    assert not compile_filter('value.email == "a@b.c"')(shown)
    assert compile_filter('value.id == "c-1"')(shown)
    assert not compile_filter('value.id == "c-1" and value.email == "a@b.c"')(shown)
    assert value_of(shown)["id"].startswith("hash:")


def test_the_original_is_kept_only_when_asked():
    r = redactor(fields=["value.email"])
    original = event({"email": "a@b.c"})
    (kept,) = r.redact_all([original], keep_original=True)
    assert kept.metadata[ORIGINAL] is original
    (bare,) = r.redact_all([original])
    assert ORIGINAL not in bare.metadata


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"fields": "value.a"}, "fields must be a list"),
        ({"fields": ["value..a"]}, "is not a path"),
        ({"fields": ["headers"]}, "is not a path"),
        ({"rules": [{"field": "value.a", "filterable": "yes"}]}, "filterable must be true or false"),
        ({"rules": [{"pattern": "["}]}, "is not a regular expression"),
        ({"rules": [{"field": "value.a", "colour": "red"}]}, "unknown field 'colour'"),
    ],
)
def test_mistakes_are_named(table, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_mask(table, "workbench.toml: [mask]")


def test_an_empty_table_has_no_rules():
    assert parse_mask({}, "[mask]") is None
