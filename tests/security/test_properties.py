"""Property-based tests (hypothesis) over what hostile input reaches: codecs, the JSONL envelope,
positions and filter expressions. Each may only succeed or raise its documented error.

tests/unit has the first properties (auto decoding, safe_text, the envelope round trip with a few
headers, filters over three fixed events); these extend them to every codec, any header name
and count, any string as a position, and filters over arbitrary events.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workbench.broker import Event, OutgoingEvent, Position
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.events.correlation import DEFAULT_RULES
from workbench.events.envelope import dumps_event
from workbench.events.envelope_input import InputError, parse_line
from workbench.events.filters import FilterError, compile_filter
from workbench.events.text import safe_text
from workbench.positions import parse_position

from .hostile import CORPUS, assert_inert, forbidden_characters

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_text = st.text(alphabet=st.characters(codec=None), max_size=40)  # surrogates and controls included
hostile_bytes = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.sampled_from(list(CORPUS.values())),
    st.lists(st.sampled_from(list(CORPUS.values())), max_size=4).map(b"".join),
    any_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
)
header_lists = st.lists(st.tuples(any_text, hostile_bytes.filter(lambda b: b is not None)), max_size=40).map(tuple)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
values = st.one_of(hostile_bytes, json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")))
events = st.builds(
    Event,
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(min_value=0, max_value=2**31 - 1),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    timestamp=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    key=hostile_bytes,
    value=values,
    headers=header_lists,
)


# --------------------------------------------------------------------------- codecs


@given(st.binary(max_size=400) | values.filter(lambda v: v is not None), st.sampled_from(codecs.CODECS))
@SETTINGS
def test_every_codec_decodes_or_raises_codec_error(data, codec):
    try:
        decoded = codecs.decode(data, codec)
    except codecs.CodecError as exc:
        assert codec != "auto" and str(exc)
        assert_inert(safe_text(str(exc)))
        return
    assert decoded.kind in ("json", "text", "binary", "hex", "base64", "msgpack")


@given(events)
@SETTINGS
def test_what_a_row_shows_of_any_event_is_inert(e):
    shown = [codecs.preview(e.key, 40), codecs.preview(e.value, 120)]
    attrs = codecs.cloudevent_attributes(e.headers, codecs.decode(e.value).value)
    shown += [safe_text(v) for v in attrs.values()]
    correlation = DEFAULT_RULES.correlation_id(e)
    if correlation is not None:
        shown.append(safe_text(correlation))
    for text in shown:
        assert not forbidden_characters(text), text


# --------------------------------------------------------------------------- envelope


@given(events)
@SETTINGS
def test_any_key_value_and_headers_survive_the_envelope_exactly(e):
    line = dumps_event(e)
    assert not forbidden_characters(line)  # one line, terminal-safe, whatever the bytes
    line.encode("utf-8")  # writable to stdout: no lone surrogate left in the text
    back = parse_line(line, 1)
    assert back == OutgoingEvent(
        value=e.value, key=e.key, headers=e.headers, partition=e.partition, timestamp=e.timestamp
    )


# Input lines as the CLI reads them: bytes decoded with surrogateescape (see workbench.events.envelope).
input_lines = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from(
            [
                b'{"value":',
                b'"key":',
                b'"headers":[["a","',
                b'"base64"',
                b"]",
                b"}",
                b",",
                b"null",
                b'"\\u0000"',
                b'"\\udc80"',
                b"\xff",
                b"\x1b[31m",
                b"1e999",
                b"[" * 50,
            ]
        ),
        max_size=12,
    ).map(b"".join),
).map(lambda data: data.decode("utf-8", "surrogateescape"))


@given(input_lines, st.booleans())
@SETTINGS
def test_any_input_line_is_an_event_or_an_input_error(line, raw):
    try:
        out = parse_line(line, 7, raw=raw, source="in.jsonl")
    except InputError as exc:
        assert str(exc).startswith("in.jsonl:7")
        return
    assert out.value is None or isinstance(out.value, bytes)


# --------------------------------------------------------------------------- positions

position_like = st.one_of(
    any_text,
    st.integers().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["beginning", "END", " latest ", "-0", "--1", "+5", "1e3", "٣", "²", "-٣", "2026-02-30"]),
)


@given(position_like)
@example("²")  # str.isdigit() is true for it, int() is not
@example("9" * 5000)  # beyond int()'s digit limit
@example("-" + "9" * 20)  # beyond 64-bit offsets
@example("0001-01-01T00:00:00+14:00")  # before year 1 once in UTC
@SETTINGS
def test_any_string_is_a_position_or_a_usage_error(text):
    try:
        position = parse_position(text)
    except UsageError as exc:
        assert "--from" in str(exc)
        return
    assert isinstance(position, Position)
    assert position.kind in ("beginning", "end", "offset", "timestamp", "last")
    if position.kind in ("offset", "last"):
        assert position.value >= (0 if position.kind == "offset" else 1)
        assert parse_position(str(position)) == position


# --------------------------------------------------------------------------- filters

pieces = st.sampled_from(
    [
        "value",
        "key",
        "raw",
        "headers",
        "topic",
        "partition",
        "offset",
        "timestamp",
        "time",
        "type",
        "correlation_id",
        ".",
        ".a",
        '["a"]',
        "[0]",
        "[-1]",
        "(",
        ")",
        ",",
        '"x"',
        "'\\x1b[31m'",
        "0",
        "-1",
        "1.5",
        "10**10",
        "==",
        "!=",
        "<",
        ">=",
        " in ",
        " not ",
        " and ",
        " or ",
        " + ",
        " * ",
        " / ",
        " % ",
        "len(",
        "lower(",
        "upper(",
        "contains(",
        "startswith(",
        "endswith(",
        "matches(",
        "int(",
        "float(",
        "str(",
        " if ",
        " else ",
        "None",
        "True",
        "[",
        "]",
        "{",
        "}",
        ":",
        "__class__",
        "lambda",
        "\n",
    ]
)


@given(st.lists(pieces, max_size=16).map("".join) | any_text, st.lists(events, min_size=1, max_size=3))
@SETTINGS
def test_filters_compile_or_raise_filter_error_and_never_raise_on_any_event(expr, sample):
    try:
        f = compile_filter(expr)
    except FilterError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert_inert(str(exc).replace("\n", " "))
        return
    for e in sample:
        assert f.matches(e) in (True, False)
