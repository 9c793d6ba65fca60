"""The JSONL event envelope: output format, input rules, exact round trip."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event, OutgoingEvent
from workbench.events.envelope import dumps_event, event_to_envelope, format_timestamp, parse_timestamp
from workbench.events.envelope_input import InputError, parse_line


def event(**overrides) -> Event:
    fields = dict(
        topic="orders",
        partition=0,
        offset=41,
        timestamp=1795767778123,
        key=b"o-1",
        value=b'{"id":1}',
        headers=(("source", b"web"),),
    )
    fields.update(overrides)
    return Event(**fields)


# --------------------------------------------------------------------------- output


def test_dumps_is_one_compact_line_with_fields_in_order():
    line = dumps_event(event())
    assert "\n" not in line and not line.endswith("\n")
    assert line == (
        '{"topic":"orders","partition":0,"offset":41,"timestamp":"2026-11-27T08:22:58.123Z",'
        '"key":"o-1","value":"{\\"id\\":1}","headers":[["source","web"]]}'
    )
    assert list(json.loads(line)) == ["topic", "partition", "offset", "timestamp", "key", "value", "headers"]


def test_utf8_stays_text_including_nul_and_control_characters():
    envelope = event_to_envelope(event(value=b"a\x00b\x1b[31m\tc\r\n", key="ключ".encode()))
    assert envelope["value"] == "a\x00b\x1b[31m\tc\r\n"
    assert envelope["key"] == "ключ"
    assert "value_encoding" not in envelope and "key_encoding" not in envelope


def test_invalid_utf8_is_base64_with_an_encoding_field_after_headers():
    e = event(key=b"\xff\x00", value=b"\xc3\x28", headers=(("sig", b"\x80\x81"), ("sig", b"ok")))
    envelope = event_to_envelope(e)
    assert envelope["key"] == base64.b64encode(b"\xff\x00").decode()
    assert envelope["key_encoding"] == "base64"
    assert envelope["value_encoding"] == "base64"
    assert envelope["headers"] == [["sig", base64.b64encode(b"\x80\x81").decode(), "base64"], ["sig", "ok"]]
    assert list(envelope)[-2:] == ["key_encoding", "value_encoding"]


def test_null_key_and_value_stay_null():
    envelope = event_to_envelope(event(key=None, value=None, headers=(), timestamp=None))
    assert envelope["key"] is None and envelope["value"] is None
    assert envelope["timestamp"] is None and envelope["headers"] == []


def test_surrogate_encoded_bytes_are_not_utf8():
    # ED A0 80 would decode to a lone surrogate: it is not valid UTF-8 and must go as base64
    assert event_to_envelope(event(value=b"\xed\xa0\x80"))["value_encoding"] == "base64"


def test_output_is_terminal_safe_and_valid_json():
    value = "x\x1b]0;pwn\x07 \x9b31m \u202eevil \u2028 é 日本".encode()
    line = dumps_event(event(value=value, topic="t\u2066"))
    for bad in ("\x1b", "\x07", "\x9b", "\u202e", "\u2028", "\u2066"):
        assert bad not in line
    assert "é 日本" in line  # readable non-ASCII
    assert json.loads(line)["value"].encode() == value


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1795767778123, "2026-11-27T08:22:58.123Z"),
        (1700000000001, "2023-11-14T22:13:20.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (None, None),
    ],
)
def test_timestamps_are_exact_iso_utc_with_milliseconds(ms, text):
    assert format_timestamp(ms) == text
    if ms is not None:
        assert parse_timestamp(text) == ms


def test_timestamps_outside_iso_dates_stay_integers():
    assert format_timestamp(10**15) == 10**15
    assert parse_line(dumps_event(event(timestamp=10**15)), 1).timestamp == 10**15


# --------------------------------------------------------------------------- input


def test_envelope_value_forms():
    assert parse_line('{"value": "hé"}', 1) == OutgoingEvent(value="hé".encode())
    assert parse_line('{"value": null}', 1).value is None
    assert parse_line('{"value": {"a": [1, 2.5, "é"]}}', 1).value == '{"a":[1,2.5,"é"]}'.encode()
    assert parse_line('{"value": 42}', 1).value == b"42"
    assert parse_line('{"value": true}', 1).value == b"true"
    assert parse_line('{"value": [1, {"b": null}]}', 1).value == b'[1,{"b":null}]'


def test_envelope_key_forms():
    assert parse_line('{"value": 1, "key": "k"}', 1).key == b"k"
    assert parse_line('{"value": 1, "key": 7}', 1).key == b"7"
    assert parse_line('{"value": 1, "key": null}', 1).key is None
    assert parse_line('{"value": 1}', 1).key is None


def test_envelope_headers_as_object_or_pairs():
    assert parse_line('{"value": 1, "headers": {"a": "1", "b": "2"}}', 1).headers == (
        ("a", b"1"),
        ("b", b"2"),
    )
    pairs = parse_line('{"value": 1, "headers": [["a", "1"], ["a", "2"], ["c", "gA==", "base64"]]}', 1)
    assert pairs.headers == (("a", b"1"), ("a", b"2"), ("c", b"\x80"))


def test_envelope_partition_timestamp_and_ignored_fields():
    line = '{"topic": "x", "offset": 9, "partition": 2, "timestamp": "2026-11-27T09:22:58.123+01:00", "value": "v"}'
    out = parse_line(line, 1)
    assert out == OutgoingEvent(value=b"v", partition=2, timestamp=1795767778123)
    assert parse_line('{"value": "v", "timestamp": 1795767778123}', 1).timestamp == 1795767778123


def test_envelope_base64_encodings():
    out = parse_line('{"value": "/wA=", "value_encoding": "base64", "key": "gA==", "key_encoding": "base64"}', 1)
    assert (out.value, out.key) == (b"\xff\x00", b"\x80")


def test_json_object_without_value_is_the_payload_unchanged():
    line = '{ "vaule": 1,  "x": [1, 2] }'
    assert parse_line(line + "\n", 1) == OutgoingEvent(value=line.encode())


def test_other_lines_are_the_value_without_terminator():
    assert parse_line("hello world\n", 1).value == b"hello world"
    assert parse_line("hello\r\n", 1).value == b"hello"
    assert parse_line("a\rb  \n", 1).value == b"a\rb  "
    assert parse_line("[1, 2]", 1).value == b"[1, 2]"
    assert parse_line("  42 ", 1).value == b"  42 "


def test_non_utf8_bytes_read_with_surrogateescape_come_back_exactly():
    line = b"\xff\xfeabc\x80".decode("utf-8", "surrogateescape")
    assert parse_line(line, 1).value == b"\xff\xfeabc\x80"


def test_raw_mode_takes_every_line_verbatim():
    line = '{"value": "x", "bogus": 1}'
    assert parse_line(line + "\n", 1, raw=True).value == line.encode()
    assert parse_line("{not json\r\n", 1, raw=True).value == b"{not json"


def _error(line: str, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        parse_line(line, 3, source="events.jsonl", **kwargs)
    return info.value


def test_error_names_source_line_and_field():
    exc = _error('{"value": 1, "headers": 5}')
    assert str(exc) == "events.jsonl:3: field 'headers': expected an object or a list of [name, value] pairs"
    assert (exc.source, exc.lineno, exc.field) == ("events.jsonl", 3, "headers")
    assert isinstance(exc, ValueError)


def test_invalid_json_line_names_the_position():
    exc = _error('{"value": 1,, }')
    assert exc.field is None
    assert "events.jsonl:3:" in str(exc) and "column 13" in str(exc)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"value": 1, "vaule": 2}', "vaule"),
        ('{"value": 1, "headers": [["a"]]}', "headers"),
        ('{"value": 1, "headers": [["a", "1", "hex"]]}', "headers"),
        ('{"value": 1, "headers": [[1, "1"]]}', "headers"),
        ('{"value": 1, "headers": {"a": null}}', "headers"),
        ('{"value": 1, "headers": [["a", "%%", "base64"]]}', "headers"),
        ('{"value": 1, "partition": -1}', "partition"),
        ('{"value": 1, "partition": "0"}', "partition"),
        ('{"value": 1, "partition": true}', "partition"),
        ('{"value": 1, "timestamp": "2026-11-27T08:22:58"}', "timestamp"),
        ('{"value": 1, "timestamp": "yesterday"}', "timestamp"),
        ('{"value": 1, "timestamp": 1.5}', "timestamp"),
        ('{"value": "@@", "value_encoding": "base64"}', "value"),
        ('{"value": 1, "value_encoding": "base64"}', "value"),
        ('{"value": "x", "value_encoding": "hex"}', "value_encoding"),
        ('{"value": "x", "key": "!", "key_encoding": "base64"}', "key"),
        ('{"value": "\\ud800"}', "value"),
    ],
)
def test_malformed_envelopes_name_the_field(line, field):
    assert _error(line).field == field


def test_unknown_field_suggests_a_correction():
    assert "did you mean 'value'" in str(_error('{"value": 1, "vaule": 2}'))


def test_nan_is_not_json():
    assert "not valid JSON" in str(_error('{"value": NaN}'))


def test_tail_output_piped_into_publish_copies_events():
    events = [
        event(),
        event(key=None, value=b"\x00\xff", headers=(("h", b"\x00"), ("h", b"")), timestamp=None),
        event(partition=3, value=b"", headers=()),
    ]
    text = "".join(dumps_event(e) + "\n" for e in events)
    copied = [parse_line(line, n, source="-") for n, line in enumerate(text.splitlines(keepends=True), 1)]
    assert copied == [
        OutgoingEvent(value=e.value, key=e.key, headers=e.headers, partition=e.partition, timestamp=e.timestamp)
        for e in events
    ]


# --------------------------------------------------------------------------- properties

_binary = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.text(max_size=32).map(lambda s: s.encode("utf-8")),
    st.sampled_from([b"\x00", b"\x1b[2J", b'{"a":1}', b"\\u0000", b"\r\n", b"\xed\xa0\x80", b"\xc0\x80"]),
)
_header_value = st.one_of(st.binary(max_size=16), st.text(max_size=8).map(str.encode))
_events = st.builds(
    Event,
    topic=st.text(max_size=20),
    partition=st.integers(min_value=0, max_value=2**31),
    offset=st.integers(min_value=0, max_value=2**63),
    timestamp=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63)),
    key=_binary,
    value=_binary,
    headers=st.lists(
        st.tuples(st.sampled_from(["a", "b", "traceparent", "é", ""]) | st.text(max_size=8), _header_value),
        max_size=6,
    ).map(tuple),
)


@given(_events)
@settings(max_examples=300)
def test_round_trip_is_exact(e):
    line = dumps_event(e)
    assert "\n" not in line and "\r" not in line
    out = parse_line(line, 1)
    assert out == OutgoingEvent(
        value=e.value, key=e.key, headers=e.headers, partition=e.partition, timestamp=e.timestamp
    )


@given(st.text(max_size=200), st.booleans())
@settings(max_examples=300)
def test_parse_line_raises_only_input_error(line, raw):
    try:
        out = parse_line(line, 1, raw=raw)
    except InputError:
        return
    assert out.value is None or isinstance(out.value, bytes)


@given(
    st.dictionaries(
        st.sampled_from(["value", "key", "headers", "partition", "timestamp", "value_encoding"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_arbitrary_envelope_shapes_raise_only_input_error(obj):
    with contextlib.suppress(InputError):
        parse_line(json.dumps(obj), 1)


# dumps_event is written by hand for speed: it must equal encoding the envelope dict.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from workbench.broker import Event as _Event  # noqa: E402
from workbench.events.envelope import dumps_event as _dumps  # noqa: E402
from workbench.events.envelope import event_to_envelope as _to_dict  # noqa: E402

_bytes_or_none = st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40).map(str.encode))


@settings(max_examples=300, deadline=None)
@given(
    topic=st.text(min_size=1, max_size=20),
    key=_bytes_or_none,
    value=_bytes_or_none,
    headers=st.lists(
        st.tuples(st.text(max_size=10), st.binary(max_size=10) | st.text(max_size=10).map(str.encode)), max_size=4
    ),
    timestamp=st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=10**15)),
)
def test_hand_written_line_equals_the_encoded_envelope(topic, key, value, headers, timestamp):
    event = _Event(topic, 1, 2, timestamp, key, value, tuple(headers))
    line = _dumps(event)
    assert json.loads(line) == _to_dict(event)
    assert all(ch not in line for ch in "\x1b\x7f\u202e\n")
