"""--filter expressions: names, dot access, missing fields, functions, errors, hostile input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench.events.filter_fields as filters_module
from workbench.broker import Event
from workbench.events.filters import MAX_LENGTH, Filter, FilterError, compile_filter

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

ORDER = {
    "status": "failed",
    "amount": 150,
    "customer": {"id": "c-7", "address": {"country": "DE"}},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "order-id": "o-1",
    "_id": "mongo",
    "tags": ["vip", "eu"],
}


def event(value=ORDER, *, key=b"order-1", headers=(("source", b"web"),), **fields) -> Event:
    if isinstance(value, (dict, list)):
        value = json.dumps(value).encode()
    base = dict(topic="orders", partition=1, offset=42, timestamp=1795767778123)
    base.update(fields)
    return Event(key=key, value=value, headers=tuple(headers), **base)


def match(expr: str, e: Event | None = None) -> bool:
    return compile_filter(expr).matches(event() if e is None else e)


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize(
    "expr",
    [
        'value.status == "failed"',
        'value["status"] == "failed" and value.amount > 100',
        "value.amount >= 150 and not value.amount > 150",
        'value.customer.address.country == "DE"',
        'value["customer"]["address"]["country"] == "DE"',
        'value.items[0].sku == "A-1"',
        'value.items[-1]["sku"] == "B-2"',
        'value["order-id"] == "o-1"',
        'value._id == "mongo"',
        '"vip" in value.tags',
        '"ail" in value.status',
        '"status" in value',
        'key == "order-1"',
        'startswith(key, "order-")',
        'endswith(key, ["-1", "-2"])',
        'topic == "orders" and partition == 1 and offset == 42',
        "partition in [0, 1] and offset in (41, 42)",
        "timestamp == 1795767778123",
        'time == "2026-11-27T08:22:58.123Z"',
        'time >= "2026-11-27"',
        'headers["source"] == "web"',
        'headers.source == "web"',
        '"source" in headers',
        'contains(raw, "c-7")',
        'contains(value.tags, "eu")',
        'matches(raw, "\\"country\\": \\"D[E]\\"")',
        'lower(value.status) == "failed" and upper(value.customer.id) == "C-7"',
        "len(value.items) == 2 and len(value.tags) == 2",
        'int("150") == value.amount and float(value.amount) == 150.0 and str(value.amount) == "150"',
        "value.amount % 7 == 3 and value.amount * 2 - 100 == 200 and value.amount / 2 == 75",
        "value.missing == null and value.missing is None and not value.missing",
        "true and not false and True",
        "value.amount if value.amount else 0",
        'raw[0:1] == "{"',
    ],
)
def test_matching_expressions(expr):
    assert match(expr) is True


@pytest.mark.parametrize(
    "expr",
    [
        'value.status == "ok"',
        "value.amount > 1000",
        '"gold" in value.tags',
        'headers["missing"] == "x"',
        "partition == 0",
        "false",
    ],
)
def test_non_matching_expressions(expr):
    assert match(expr) is False


def test_headers_use_the_last_occurrence():
    e = event(headers=[("h", b"first"), ("h", b"last"), ("bin", b"\xff")])
    assert match('headers.h == "last"', e)
    assert match('headers.bin == "\ufffd"', e)


def test_key_with_invalid_utf8_is_replaced_text():
    assert match('key == "a\ufffd"', event(key=b"a\xff"))
    assert match("key == null", event(key=None))


def test_value_kinds():
    assert match('value == "plain text" and raw == "plain text"', event(b"plain text"))
    assert match("value == 42", event(b"42"))
    assert match("value == null and raw != null", event(b"\xff\x00"))
    assert match("value == null and raw == null", event(None))
    assert match("value[1] == 2", event([1, 2]))


def test_cloudevents_type_and_correlation_id():
    binary = event(headers=[("ce_type", b"order.created"), ("ce_specversion", b"1.0"), ("traceparent", TRACEPARENT)])
    assert match('type == "order.created"', binary)
    assert match('correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736"', binary)
    structured = event({"specversion": "1.0", "type": "payment.failed", "data": {"correlationId": "c-9"}})
    assert match('type == "payment.failed" and correlation_id == "c-9"', structured)
    assert match("type == null and correlation_id == null", event())


# --------------------------------------------------------------------------- missing fields, failures


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("value.nope > 100", False),
        ("value.nope < 100", False),
        ("not (value.nope > 100)", True),
        ("value.nope.deeper.still == 1", False),
        ("value.nope.deeper.still == null", True),
        ("value.items[10].sku == null", True),
        ('value.items["x"] == null', True),
        ("value.status.length == null", True),
        ('"x" in value.nope', False),
        ('"x" not in value.nope', True),
        ("1 in value.status", False),
        ("value.status > 3", False),
        ("len(value.nope) > 0", False),
        ("lower(value.nope) == null", True),
        ('contains(value.nope, "x")', False),
        ('startswith(value.amount, "1")', False),
        ('matches(value.nope, "x")', False),
        ("value.amount / 0 > 1", False),
        ('int("abc") == 1', False),
        ("value.nope + 1 > 0", False),
        ('"%s" % value.amount == "150"', False),
        ("10 ** 10 ** 10 > 0", False),
        ('"x" * 10000000 == ""', False),
    ],
)
def test_missing_fields_and_failures_do_not_raise(expr, expected):
    assert match(expr) is expected


def test_dict_methods_are_not_reachable_through_dots():
    # "items", "keys", "get", "pop" are JSON members, never Python methods
    assert match("value.items[0].qty == 2")
    assert match("value.keys == null and value.get == null and value.pop == null")
    assert match('value.keys == "k"', event({"keys": "k"}))


# --------------------------------------------------------------------------- compile errors


def error(expr: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    assert isinstance(info.value, ValueError)
    assert info.value.text == expr
    return info.value


def caret_column(exc: FilterError) -> int:
    """The column the rendered caret points at (1-based), from str(exc)."""
    _, shown, caret = str(exc).split("\n")
    assert shown.startswith("  ") and caret.startswith("  ")
    return len(caret) - 2


def test_syntax_error_points_at_the_problem():
    exc = error('value.status == "failed" and and')
    assert exc.column == 30
    assert caret_column(exc) == 30
    assert str(exc).startswith("filter error at column 30: invalid syntax")
    assert '  value.status == "failed" and and\n' in str(exc)


def test_incomplete_expression_points_at_the_end():
    exc = error("value.amount >")
    assert exc.column == len("value.amount >") + 1


def test_unknown_name_with_suggestion():
    exc = error('partition == 1 and vaule.status == "x"')
    assert exc.column == 20 and caret_column(exc) == 20
    assert "unknown name 'vaule'" in exc.reason and "did you mean 'value'" in exc.reason


def test_column_counts_characters_not_bytes():
    exc = error('value.name == "日本語" and nope')
    assert exc.column == 25
    assert "nope" in str(exc)


def test_leading_whitespace_keeps_columns():
    exc = error("   nope == 1")
    assert exc.column == 4


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("lambda: 1", "lambda"),
        ("[x for x in value.items]", "comprehension"),
        ("{k: 1 for k in value}", "comprehension"),
        ("len(x for x in value.items)", "generator"),
        ("value.__class__", "'__class__' is not allowed"),
        ("value.__class__.__mro__", "not allowed"),
        ("key.__len__() == 1", "not allowed"),
        ("import os", "import is not allowed"),
        ("__import__('os')", "unknown function"),
        ("key.upper()", "method calls are not allowed"),
        ('open("/etc/passwd")', "unknown function 'open'"),
        ("eval('1')", "unknown function"),
        ('f"{key}" == "x"', "f-strings"),
        ('{"a": 1} == value', "dict literals"),
        ("(x := 1)", "assignment expressions"),
        ("value.status = 1", "assignment is not allowed"),
        ("len(*value.items)", "starred"),
        ("lower(key, errors=1)", "keyword arguments"),
        ("contains(key)", "takes 2 arguments"),
        ('matches(raw, "(")', "invalid regular expression"),
        ("partition | 1", "bitwise"),
        ("len", "is a function"),
        ("x = 1; y = 2", "assignment"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_disallowed_constructs(expr, message):
    assert message in error(expr).reason


def test_expression_length_is_limited():
    exc = error("key == " + '"' + "x" * MAX_LENGTH + '"')
    assert "too long" in exc.reason and str(MAX_LENGTH) in exc.reason


def test_deep_nesting_is_refused():
    assert "nested too deeply" in error("not " * 300 + "true").reason
    assert "nested too deeply" in error("-" * 1000 + "1").reason
    assert "nested" in error("(" * 300 + "1" + ")" * 300).reason  # the parser's own limit


def test_error_rendering_is_terminal_safe():
    exc = error('key == "\x1b[2J" and nope')
    assert "\x1b" not in str(exc)
    assert caret_column(exc) == len('key == "\\x1b[2J" and ') + 1


# --------------------------------------------------------------------------- hostile payloads, laziness


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 100_000,
        b'{"a": ' * 10_000,
        b"1" * 10_000,
        b'{"__class__": {"__init__": 1}, "status": "failed"}',
        b"\x00\xff\xfe",
        b'{"status": NaN}',
        ("\u202e" * 1000).encode(),
        b'{"status": ' + b'"' + b"x" * 5_000_000 + b'"}',
    ],
)
def test_hostile_payloads_never_raise(value):
    f = compile_filter('value.status == "failed" or contains(raw, "zz") or type == "x" or correlation_id == "y"')
    assert f.matches(event(value)) in (True, False)


def test_dunder_members_of_json_are_only_data():
    assert match('value["__class__"]["__init__"] == 1', event(b'{"__class__": {"__init__": 1}}'))


def test_value_is_decoded_only_when_the_expression_needs_it(monkeypatch):
    calls = []
    real = filters_module.decoded_value
    monkeypatch.setattr(filters_module, "decoded_value", lambda e: calls.append(e.value) or real(e))
    cheap = compile_filter('partition == 1 and headers.source == "web" and contains(raw, "x")')
    assert not cheap.needs_value
    cheap.matches(event())
    assert calls == []
    needy = compile_filter("partition == 0 and value.amount > 1")
    assert needy.needs_value and needy.names == {"partition", "value"}
    needy.matches(event())  # short-circuit: partition == 0 is False
    assert calls == []
    needy = compile_filter("value.amount > 1 and type == null and correlation_id == null")
    assert needy.matches(event())
    assert len(calls) == 1  # once per event, shared by value, type and correlation_id


def test_filter_is_reusable_and_callable():
    f = compile_filter("value.amount > 100")
    assert isinstance(f, Filter)
    results = [f(event({"amount": n})) for n in (50, 150, 99, 101)]
    assert results == [False, True, False, True]
    assert "value.amount > 100" in repr(f)


# --------------------------------------------------------------------------- properties


@given(st.text(max_size=120))
@settings(max_examples=1000)
def test_compile_raises_only_filter_error(text):
    try:
        compile_filter(text)
    except FilterError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert "\x1b" not in str(exc)


_pieces = st.sampled_from(
    [
        "value",
        "key",
        "raw",
        "headers",
        "partition",
        ".",
        "[",
        "]",
        "(",
        ")",
        '"x"',
        "0",
        "1.5",
        "==",
        "!=",
        ">",
        "<",
        " and ",
        " or ",
        " not ",
        " in ",
        "len(",
        "lower(",
        "contains(",
        "matches(",
        ",",
        "null",
        ".status",
        ".amount",
        "[0]",
        " + ",
        " * ",
        " - ",
        " / ",
        " % ",
        "**",
        " if ",
        " else ",
        "__class__",
        "lambda",
        ":",
        " for ",
        "'",
        "\\",
        "\n",
        "type",
        "correlation_id",
        "time",
        "timestamp",
    ]
)


@given(st.lists(_pieces, max_size=20).map("".join), st.binary(max_size=60))
@settings(max_examples=500)
def test_compiled_filters_never_raise_on_any_event(expr, value):
    try:
        f = compile_filter(expr)
    except FilterError:
        return
    for e in (event(value), event(ORDER), event(None, key=None, headers=())):
        assert f.matches(e) in (True, False)
