"""The fast envelope paths (orjson) give exactly what the standard-library paths give.

``dumps_event`` against the line written by hand, ``parse_line_bytes`` against ``parse_line`` of
the same line decoded: the same events, the same errors, for any bytes.
"""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event, OutgoingEvent
from workbench.events.envelope import _dumps_event_by_hand, dumps_event
from workbench.events.envelope_input import InputError, is_plain_envelope, parse_line, parse_line_bytes, plain_event

# text with what matters for JSON and terminals: controls, DEL, C1, bidi marks, separators, BOM,
# astral characters and lone surrogates
_chars = st.sampled_from(
    ["a", "é", '"', "\\", "\n", "\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u2028", "\ufeff", "😀", "\ud800", "/"]
)
_text = st.lists(st.one_of(_chars, st.characters(exclude_categories=("Cs",))), max_size=12).map("".join)
_data = st.one_of(
    st.none(),
    st.binary(max_size=12),
    _text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    _text.filter(lambda t: "\ud800" not in t).map(str.encode),
)


@settings(max_examples=500, deadline=None)
@given(
    topic=_text,
    partition=st.integers(min_value=0, max_value=2**70),
    offset=st.integers(min_value=-1, max_value=2**70),
    timestamp=st.one_of(st.none(), st.integers(min_value=-(2**66), max_value=2**66)),
    key=_data,
    value=_data,
    headers=st.lists(st.tuples(_text, _data.filter(lambda data: data is not None)), max_size=3),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_dumps_event_is_the_line_written_by_hand(topic, partition, offset, timestamp, key, value, headers, kind):
    def wrapped(data):
        return None if data is None else kind(data)

    e = Event(topic, partition, offset, timestamp, wrapped(key), wrapped(value), tuple(headers))
    assert dumps_event(e) == _dumps_event_by_hand(e)


def outcome(parse, *args, **options):
    try:
        return parse(*args, source="in.jsonl", **options)
    except InputError as exc:
        return ("error", str(exc))


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False),
        _text.filter(lambda t: "\ud800" not in t),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_fields = st.sampled_from(
    ["value", "key", "headers", "partition", "timestamp", "offset", "topic", "key_encoding", "value_encoding", "x"]
)
_envelopes = st.dictionaries(
    _fields,
    st.one_of(
        _json_values,
        st.just("base64"),
        st.just("AAE="),
        st.just([["a", "b"], ["c", "gA==", "base64"]]),
        st.just({"a": "b"}),
        st.just("2026-11-27T08:22:58.123Z"),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + "123Z"),
        st.sampled_from(
            [
                "2026-11-27T08:22:58.1234",
                "2026-11-27T08:22:58.12Z",
                "2026-11-27 08:22:58.123Z",
                "2026-02-30T08:22:58.123Z",
                "2026-11-27T08:22:58.１２３Z",
                "2026-11-27T08:22:58.+12Z",
                "2026-W48-5T08:22:58.123Z",
                "0001-01-01T00:00:00.000Z",
                "1969-12-31T23:59:59.999Z",
                " 026-11-27T08:22:58.123Z",
            ]
        ),
        st.lists(st.lists(_text.filter(lambda t: "\ud800" not in t), min_size=1, max_size=3), max_size=3),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.booleans(),
    ),
    max_size=6,
)


@settings(max_examples=800, deadline=None)
@given(
    line=st.one_of(
        _envelopes.map(lambda d: json.dumps(d).encode()),
        _envelopes.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        _envelopes.map(lambda d: (" " + json.dumps(d)).encode()),
        _envelopes.map(lambda d: json.dumps({"topic": "t", "offset": 3, "key": "k", "value": "v", **d}).encode()),
        st.binary(max_size=40).map(lambda b: b"{" + b),
        st.binary(max_size=20),
        st.sampled_from(
            [
                b'{"value": "\\ud800"}',
                b'{"value": 1e400}',
                b'{"value": 123456789012345678901234567890}',
                b'{"value": "x", "partition": 123456789012345678901234567890}',
                b'{"value": "x", "timestamp": 18446744073709551616}',
                b'{"value": NaN}',
                b'{"value": "\xff"}',
                b'{"value": "a"} x',
                b'{"value": "a"}\t ',
                b"[" * 3000,
                b'{"value": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            ]
        ),
    ).filter(lambda line: b"\n" not in line),  # lines as read: split on \n
    raw=st.booleans(),
)
def test_parse_line_bytes_is_parse_line(line, raw):
    text = line.decode("utf-8", "surrogateescape")
    assert outcome(parse_line_bytes, line, 3, raw=raw) == outcome(parse_line, text, 3, raw=raw)


@pytest.mark.parametrize(
    "line",
    [b'{"key": "k", "value": "v"}', b'{"value": {"a": 1}}', b"plain", b"  {not json", b'{"valeu": 1}'],
)
def test_parse_line_bytes_examples(line):
    assert outcome(parse_line_bytes, line, 1) == outcome(parse_line, line.decode(), 1)


@pytest.mark.parametrize(("value", "key"), [(b"v", b"k"), (b"", None), (b"\xff" * 3, b"")])
def test_a_plain_event_is_the_event_the_constructor_makes(value, key):
    made, expected = plain_event(value, key), OutgoingEvent(value, key)
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    with pytest.raises(AttributeError):
        made.value = b"x"  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize(
    ("line", "plain"),
    [
        (b'{"value": "v"}', True),
        (b'{"key": "k", "value": "v"}', True),
        (b'{"key": null, "value": "v"}', True),
        (b'{"key": 1, "value": "v"}', False),
        (b'{"value": null}', False),
        (b'{"value": "v", "partition": 1}', False),
        (b'{"value": "v", "key": "k", "headers": []}', False),
        (b'{"key": "k", "x": "v"}', False),
        (b'["value"]', False),
        (b"{nope", False),
    ],
)
def test_a_plain_envelope_is_what_parses_to_a_plain_event(line, plain):
    assert is_plain_envelope(line) is plain
    if plain:
        event = parse_line_bytes(line, 1)
        assert event == OutgoingEvent(event.value, event.key)
