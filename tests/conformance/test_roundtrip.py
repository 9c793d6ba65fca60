"""Keys, values and headers come back as the exact bytes that were published."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.broker import Event, OutgoingEvent, Position

from .support import publish_ok, read_all

MB = 1_000_000  # under the 1 MiB default message limit of Kafka, with room for the envelope

CASES = {
    "empty value": (b"k", b""),
    "none value": (b"k", None),
    "none key": (None, b"value"),
    "empty key": (b"", b"value"),
    "both none": (None, None),
    "invalid utf-8": (b"\xff\xfe\xc3", b"\xc3\x28\xa0\xa1\xe2\x28\xa1"),
    "nul bytes": (b"\x00", b"a\x00b\x00\x00"),
    "every byte": (bytes(range(256)), bytes(range(255, -1, -1))),
    "text": ("clé".encode(), '{"prix": "12 €"}'.encode()),
}


def assert_exact(got: Event, key: bytes | None, value: bytes | None, headers=()) -> None:
    assert got.key == key and (key is None or type(got.key) is bytes)
    assert got.value == value and (value is None or type(got.value) is bytes)
    assert tuple(tuple(h) for h in got.headers) == tuple(headers)
    assert all(type(name) is str and type(v) is bytes for name, v in got.headers)


async def publish_and_read(conn, topic: str, events: list[OutgoingEvent]) -> list[Event]:
    """Publish into a fresh topic of one partition and read it all back (in publish order)."""
    await publish_ok(conn, topic, events)
    got = await read_all(conn, topic, Position.beginning())
    assert len(got) == len(events)
    return got


@pytest.mark.parametrize("case", list(CASES))
async def test_key_and_value_bytes_round_trip(harness, conn, case):
    harness.require("history")
    key, value = CASES[case]
    topic = await harness.new_topic(conn, 1)
    (got,) = await publish_and_read(conn, topic, [OutgoingEvent(value=value, key=key)])
    assert_exact(got, key, value)


async def test_all_cases_in_one_batch(harness, conn):
    harness.require("history")
    topic = await harness.new_topic(conn, 1)
    events = [OutgoingEvent(value=v, key=k, partition=0) for k, v in CASES.values()]
    got = await publish_and_read(conn, topic, events)
    assert len(got) == len(events)
    for g, (k, v) in zip(got, CASES.values(), strict=True):
        assert_exact(g, k, v)


async def test_one_megabyte_value(harness, conn):
    harness.require("history")
    topic = await harness.new_topic(conn, 1)
    value = bytes(range(256)) * (MB // 256) + b"\x00" * (MB % 256)
    (got,) = await publish_and_read(conn, topic, [OutgoingEvent(value=value, key=b"big")])
    assert len(got.value) == MB
    assert_exact(got, b"big", value)


async def test_headers_keep_order_duplicates_and_bytes(harness, conn):
    harness.require("history", "headers")
    topic = await harness.new_topic(conn, 1)
    headers = (
        ("trace", b"1"),
        ("b", b""),
        ("trace", b"\x00\xff\xfe"),
        ("ünïcode-név", b"wert"),
        ("a", b"\xc3\x28"),
        ("trace", b"3"),
    )
    events = [
        OutgoingEvent(value=b"with", headers=headers),
        OutgoingEvent(value=b"without"),
        OutgoingEvent(value=None, key=None, headers=(("only", b""),)),
    ]
    got = await publish_and_read(conn, topic, events)
    assert_exact(got[0], None, b"with", headers)
    assert_exact(got[1], None, b"without", ())
    assert_exact(got[2], None, None, (("only", b""),))


header_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
payload = st.one_of(st.none(), st.binary(max_size=300))
events_strategy = st.lists(
    st.tuples(
        payload,
        payload,
        st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=4),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=events_strategy)
async def test_round_trip_property(harness, conn, drawn):
    harness.require("history", "headers")
    topic = await harness.new_topic(conn, 1)
    events = [OutgoingEvent(value=v, key=k, headers=tuple(h)) for k, v, h in drawn]
    got = await publish_and_read(conn, topic, events)
    assert len(got) == len(events)
    for g, (k, v, h) in zip(got, drawn, strict=True):
        assert_exact(g, k, v, tuple(h))
