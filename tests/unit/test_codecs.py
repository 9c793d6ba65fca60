"""Decoding, terminal-safe previews, CloudEvents and (by the default rules) correlation ids."""

from __future__ import annotations

import json
import re
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event
from workbench.events.codecs import (
    CODECS,
    CodecError,
    Decoded,
    cloudevent_attributes,
    decode,
    human_size,
    parse_traceparent,
    preview,
    safe_text,
)
from workbench.events.correlation import DEFAULT_RULES

correlation_id = DEFAULT_RULES.correlation_id

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def is_safe(text: str) -> bool:
    """One line, nothing a terminal acts on: every character printable (or a plain space)."""
    return all(ch.isprintable() or unicodedata.category(ch) == "Zs" for ch in text)


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, Decoded("null", None)),
        (b'{"a": [1, 2]}', Decoded("json", {"a": [1, 2]})),
        (b" [1] ", Decoded("json", [1])),
        (b"42", Decoded("json", 42)),
        (b'"quoted"', Decoded("json", "quoted")),
        (b"null", Decoded("json", None)),
        (b"hello", Decoded("text", "hello")),
        (b"", Decoded("text", "")),
        (b"NaN", Decoded("text", "NaN")),
        (b"{not json", Decoded("text", "{not json")),
        ("é\x00".encode(), Decoded("text", "é\x00")),
        (b"\xff\xfe", Decoded("binary", b"\xff\xfe")),
    ],
)
def test_decode_auto(data, expected):
    assert decode(data) == expected


def test_decode_auto_survives_pathological_json():
    assert decode(b"[" * 100_000).kind == "text"
    assert decode(b"1" * 5000).kind == "text"  # beyond int's digit limit
    assert decode(b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}").kind in ("json", "text")


def test_explicit_codecs():
    assert decode(b'{"a":1}', "json") == Decoded("json", {"a": 1})
    assert decode(b"h\xc3\xa9", "text") == Decoded("text", "hé")
    assert decode(b"\x00\xff", "hex") == Decoded("hex", "00ff")
    assert decode(b"\x00\xff", "base64") == Decoded("base64", "AP8=")
    assert decode(None, "json") == Decoded("null", None)


def test_json_codec_names_the_problem():
    with pytest.raises(CodecError, match="not valid JSON: Expecting value at line 1 column 1"):
        decode(b"hello", "json")
    with pytest.raises(CodecError, match="not valid UTF-8: byte 0xff at offset 1"):
        decode(b"a\xff", "json")


def test_text_codec_rejects_invalid_utf8():
    with pytest.raises(CodecError, match="UTF-8"):
        decode(b"\xc3\x28", "text")


def test_unknown_codec():
    with pytest.raises(CodecError, match="unknown codec"):
        decode(b"x", "rot13")


def test_msgpack_codec_when_available():
    import msgpack

    assert "msgpack" in CODECS
    assert decode(msgpack.packb({"a": [1, "x"]}), "msgpack") == Decoded("msgpack", {"a": [1, "x"]})
    with pytest.raises(CodecError, match="MessagePack"):
        decode(b"\xc1", "msgpack")


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_decode_auto_never_raises(data):
    result = decode(data)
    assert result.kind in ("json", "text", "binary")


# --------------------------------------------------------------------------- safe text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain é 日本 🚀", "plain é 日本 🚀"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x00\x07\x7f\x9b", "\\x00\\x07\\x7f\\x9b"),
        ("abc\u202eevil", "abc\\u202eevil"),
        (
            "\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d",
            "\\u2066\\u2067\\u2068\\u2069\\u202a\\u202b\\u202c\\u202d",
        ),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("no\u00a0break", "no\u00a0break"),
        ("\U000e0001tag", "\\U000e0001tag"),
        ("\udc80", "\\udc80"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_safe_text(text, expected):
    assert safe_text(text) == expected


@given(st.text(alphabet=st.characters(codec=None), max_size=200))
@settings(max_examples=500)
def test_safe_text_is_always_safe(text):
    assert is_safe(safe_text(text))


# --------------------------------------------------------------------------- preview


def test_preview_compacts_json():
    pretty = json.dumps({"a": 1, "b": [1, 2, "x y"], "c": {"d": None}}, indent=2).encode()
    assert preview(pretty) == '{"a":1,"b":[1,2,"x y"],"c":{"d":null}}'


def test_preview_keeps_text_that_only_looks_like_json():
    assert preview(b"[INFO]  two  spaces") == "[INFO]  two  spaces"


def test_preview_escapes_text():
    assert preview(b"ok\x1b]0;title\x07\r\nnext") == "ok\\x1b]0;title\\x07\\r\\nnext"
    assert preview("\u202egnp.exe".encode()) == "\\u202egnp.exe"


def test_preview_binary_as_hex():
    assert preview(b"\xff\x00\x01") == "0xff0001"
    long = preview(b"\xff" * 1000, limit=20)
    assert long.startswith("0xffff") and long.endswith("… (1.0 kB)")
    assert len(long.split("…")[0]) <= 20


def test_preview_null_and_empty():
    assert preview(None) == "null"
    assert preview(b"") == ""


def test_preview_truncates_with_size():
    text = preview(b"x" * 300, limit=10)
    assert text == "xxxxxxxxxx… (300 B)"


def test_preview_never_cuts_an_escape():
    text = preview(b"abcdefgh\x1bxyz", limit=10)
    assert text == "abcdefgh… (12 B)"


def test_preview_of_10mb_values_is_fast():
    big_json = b'{"payload": "' + b"v" * 10_000_000 + b'", "n": 1}'
    big_text = b"line\n" * 2_000_000
    big_binary = b"\xff" * 10_000_000
    start = time.perf_counter()
    for _ in range(10):
        json_preview = preview(big_json)
        text_preview = preview(big_text)
        binary_preview = preview(big_binary)
    assert time.perf_counter() - start < 1.0  # 30 previews; measured ~a millisecond each
    assert json_preview.startswith('{"payload":"vvv') and json_preview.endswith("… (10.0 MB)")
    assert text_preview.startswith("line\\nline\\n") and text_preview.endswith("… (10.0 MB)")
    assert binary_preview.startswith("0xffff") and binary_preview.endswith("… (10.0 MB)")


def test_preview_compacts_a_large_pretty_printed_json_prefix():
    doc = json.dumps({"items": [{"id": i, "name": f"n{i}"} for i in range(50_000)]}, indent=4).encode()
    assert preview(doc, limit=40).startswith('{"items":[{"id":0,"name":"n0"},{"id":1,')


def test_human_size():
    assert [human_size(n) for n in (0, 999, 1000, 1_500_000, 10 * 10**6, 3 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "10.0 MB",
        "3.0 TB",
    ]


_SUFFIX = re.compile(r"… \([0-9.]+ [kMGT]?B\)\Z")


def _check_preview(result: str, limit: int) -> None:
    assert is_safe(result), result
    suffix = _SUFFIX.search(result)
    body = result[: suffix.start()] if suffix else result
    assert len(body) <= limit


@given(st.binary(max_size=500), st.integers(min_value=1, max_value=200))
@settings(max_examples=500)
def test_preview_is_safe_and_bounded_for_any_bytes(data, limit):
    _check_preview(preview(data, limit=limit), limit)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400), st.integers(min_value=1, max_value=200))
@settings(max_examples=500)
def test_preview_is_safe_and_bounded_for_any_text(text, limit):
    _check_preview(preview(text.encode(), limit=limit), limit)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    ),
    st.integers(min_value=1, max_value=200),
)
def test_preview_is_safe_and_bounded_for_any_json(doc, limit):
    _check_preview(preview(json.dumps(doc, ensure_ascii=False, indent=1).encode(), limit=limit), limit)


# --------------------------------------------------------------------------- CloudEvents


def test_binary_mode_kafka_headers():
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_type", b"order.created"),
        ("ce_source", b"/shop"),
        ("ce_id", b"e-1"),
        ("ce_time", b"2026-11-27T08:22:58Z"),
        ("ce_subject", b"o-1"),
        ("content-type", b"application/json"),
    )
    assert cloudevent_attributes(headers) == {
        "specversion": "1.0",
        "type": "order.created",
        "source": "/shop",
        "id": "e-1",
        "time": "2026-11-27T08:22:58Z",
        "subject": "o-1",
    }


@pytest.mark.parametrize("prefix", ["cloudEvents:", "cloudEvents_", "ce-", "CE_", "Ce-"])
def test_binary_mode_other_prefixes_case_insensitive(prefix):
    headers = [(f"{prefix}type", b"t"), (f"{prefix}specversion", b"1.0")]
    assert cloudevent_attributes(headers)["type"] == "t"


def test_structured_mode():
    value = {"specversion": "1.0", "type": "order.created", "source": "/shop", "id": "e-1", "data": {"x": 1}}
    attributes = cloudevent_attributes((), value)
    assert attributes == {"specversion": "1.0", "type": "order.created", "source": "/shop", "id": "e-1"}


def test_not_a_cloudevent():
    assert cloudevent_attributes((("source", b"web"),), {"type": "x"}) == {}
    assert cloudevent_attributes(None) == {}


def test_traceparent_adds_trace_and_span():
    attributes = cloudevent_attributes([("traceparent", TRACEPARENT.encode())])
    assert attributes == {"trace_id": TRACE_ID, "span_id": "00f067aa0ba902b7"}


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (TRACEPARENT, True),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", False),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_parse_traceparent(text, ok):
    assert (parse_traceparent(text) is not None) is ok
    if ok:
        assert parse_traceparent(text.encode())[0] == TRACE_ID


# --------------------------------------------------------------------------- correlation


def ev(value=None, headers=()) -> Event:
    return Event("t", 0, 0, None, None, value, tuple(headers))


def test_correlation_header_first():
    headers = [("X-Correlation-Id", b"x"), ("correlationId", b"cid"), ("traceparent", TRACEPARENT.encode())]
    assert correlation_id(ev(b'{"correlationId": "body"}', headers)) == "cid"
    assert correlation_id(ev(None, [("x-correlation-id", b"x")])) == "x"
    assert correlation_id(ev(None, [("correlation_id", b"a"), ("correlation_id", b"b")])) == "b"


def test_correlation_cloudevents_extension_before_traceparent():
    headers = [("ce_correlationid", b"ce"), ("traceparent", TRACEPARENT.encode())]
    assert correlation_id(ev(b'{"correlationId": "body"}', headers)) == "ce"
    structured = {"specversion": "1.0", "type": "t", "correlationid": "sce", "traceparent": TRACEPARENT}
    assert correlation_id(ev(json.dumps(structured).encode())) == "sce"


def test_correlation_traceparent_before_body():
    assert correlation_id(ev(b'{"correlationId": "body"}', [("traceparent", TRACEPARENT.encode())])) == TRACE_ID
    headers = [("traceparent", b"00-bad")]
    assert correlation_id(ev(b'{"correlationId": "body"}', headers)) == "body"


def test_correlation_from_json_value_and_cloudevent_data():
    assert correlation_id(ev(b'{"correlation_id": 42}')) == "42"
    structured = {"specversion": "1.0", "type": "t", "data": {"correlationId": "inner"}}
    assert correlation_id(ev(json.dumps(structured).encode())) == "inner"
    assert correlation_id(ev(b'{"data": {"correlationId": "not a cloudevent"}}')) is None
    assert correlation_id(ev(b'{"correlationId": ""}')) is None
    assert correlation_id(ev(b"\xff")) is None
    assert correlation_id(ev(None)) is None


def test_correlation_uses_a_given_decoded_value():
    decoded = decode(b'{"correlationId": "given"}')
    assert correlation_id(ev(b"{}"), decoded) == "given"
