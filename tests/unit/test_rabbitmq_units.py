"""The RabbitMQ adapter's pure parts, no broker needed: URLs and secrets, the message codec,
stream read plans and tap bindings. (They live beside the broker tests of the adapter; they
belong in tests/unit as well.)"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from pamqp import commands as spec

from workbench.broker import InvalidRequest, OutgoingEvent, Unsupported
from workbench_rabbitmq import RabbitMQAdapter, codec
from workbench_rabbitmq.options import endpoint
from workbench_rabbitmq.reader import (
    StreamPlan,
    needs_end,
    plan_stream_read,
    tap_bindings,
)

# --------------------------------------------------------------------------- URLs and secrets


def test_url_password_moves_to_a_secret_option():
    options = RabbitMQAdapter.options_from_url("amqps://ops:hunter2%21@rabbit.internal:5671/orders?timeout_s=3")
    assert options == {"url": "amqps://ops@rabbit.internal:5671/orders", "password": "hunter2!", "timeout_s": 3.0}
    adapter = RabbitMQAdapter(options)
    assert "hunter2" not in adapter.describe() and "hunter2" not in repr(adapter)
    assert adapter.describe() == "amqps://ops@rabbit.internal:5671/orders (management https://rabbit.internal:15671)"
    assert [o.name for o in RabbitMQAdapter.options if o.secret] == ["url", "password", "management_password"]


@pytest.mark.parametrize(
    ("url", "vhost", "port", "management"),
    [
        ("amqp://h", "/", 5672, "http://h:15672"),
        ("amqp://h/", "/", 5672, "http://h:15672"),
        ("amqp://h/%2F", "/", 5672, "http://h:15672"),
        ("amqp://h:5999/prod", "prod", 5999, "http://h:15672"),
        ("amqps://h/a%2Fb", "a/b", 5671, "https://h:15671"),
        ("amqp://[::1]:5672/", "/", 5672, "http://[::1]:15672"),
    ],
)
def test_endpoint_from_url(url, vhost, port, management):
    ep, secrets = endpoint({"url": url})
    assert (ep.vhost, ep.port, ep.management_url) == (vhost, port, management)
    assert (ep.user, secrets.password) == ("guest", "guest")  # the AMQP URI defaults
    assert "guest" not in repr(secrets)


def test_management_credentials_default_to_the_amqp_ones():
    ep, secrets = endpoint({"url": "amqp://alice@h/", "password": "pw-1", "management_url": "http://m:8080/"})
    assert (ep.user, secrets.password, ep.management_user, secrets.management_password) == (
        "alice",
        "pw-1",
        "alice",
        "pw-1",
    )
    assert ep.management_url == "http://m:8080"


@pytest.mark.parametrize(
    "url", ["kafka://h:9092", "amqp://h:99999/", "amqp://h/a/b", "amqp://h/?bogus=1", "amqp://h/?timeout_s=x"]
)
def test_bad_urls_are_invalid_requests(url):
    with pytest.raises(InvalidRequest):
        RabbitMQAdapter(RabbitMQAdapter.options_from_url(url))


def test_bad_options_are_invalid_requests():
    with pytest.raises(InvalidRequest):
        RabbitMQAdapter({"timeout_s": 0})
    with pytest.raises(InvalidRequest):
        RabbitMQAdapter({"management_url": "http://user:secret@m:15672"})
    with pytest.raises(InvalidRequest):
        RabbitMQAdapter({"timeout_s": "10"})


# --------------------------------------------------------------------------- codec


def deliver(exchange: str = "", routing_key: str = "q") -> SimpleNamespace:
    return SimpleNamespace(exchange=exchange, routing_key=routing_key, redelivered=False)


def round_trip(event: OutgoingEvent, *, key_header: bool = True, sort_like_a_stream: bool = False, exchange: str = ""):
    properties = codec.properties_for(event, key_header=key_header)
    if sort_like_a_stream and properties.headers:
        properties.headers = dict(sorted(properties.headers.items(), key=lambda kv: kv[0].encode()))
    body = b"" if event.value is None else event.value
    return codec.make_event("t", 0, deliver(exchange, "rk" if exchange else "t"), properties, body)


@pytest.mark.parametrize("sort_like_a_stream", [False, True])
def test_headers_keep_order_and_duplicates(sort_like_a_stream):
    headers = (("trace", b"1"), ("b", b""), ("trace", b"\x00\xff"), ("ünï", b"w"), ("a", b"\xc3\x28"))
    got = round_trip(OutgoingEvent(value=b"v", key=b"k", headers=headers), sort_like_a_stream=sort_like_a_stream)
    assert got.headers == headers and got.key == b"k" and got.value == b"v"


def test_sorted_unique_headers_travel_without_the_exact_copy():
    properties = codec.properties_for(OutgoingEvent(value=b"", headers=(("a", b"1"), ("b", b"\xff"))), key_header=True)
    assert properties.headers == {"a": "1", "b": bytearray(b"\xff")}  # text as str, the rest as bytes


def test_none_and_empty_values_and_keys():
    assert round_trip(OutgoingEvent(value=None, key=None)).value is None
    assert round_trip(OutgoingEvent(value=b"", key=b"")).value == b""
    assert round_trip(OutgoingEvent(value=b"x", key=b"")).key == b""
    assert round_trip(OutgoingEvent(value=b"x", key=None)).key is None


def test_routing_key_is_the_key_through_an_exchange():
    got = round_trip(OutgoingEvent(value=b"x"), key_header=False, exchange="orders")
    assert got.key == b"rk" and got.metadata["exchange"] == "orders"


def test_properties_from_headers_and_timestamp_in_seconds():
    event = OutgoingEvent(
        value=b"{}",
        headers=(("Content-Type", b"application/json"), ("correlation_id", b"c1"), ("message-id", b"\xff")),
        timestamp=1_700_000_000_999,
    )
    properties = codec.properties_for(event, key_header=False)
    assert properties.content_type == "application/json" and properties.correlation_id == "c1"
    assert properties.message_id is None  # not UTF-8: kept as a header only
    assert properties.timestamp == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    assert properties.delivery_mode == 2


def test_foreign_header_values_become_bytes():
    properties = spec.Basic.Properties(
        headers={
            "s": "text",
            "n": 5,
            "b": True,
            "f": 1.5,
            "t": dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
            "nested": {"x": [1, "a"]},
            "v": None,
            "x-stream-offset": 7,
        },
        timestamp=dt.datetime.fromtimestamp(1_700_000_000, dt.UTC),
    )
    event = codec.make_event("s", 7, deliver(), properties, b"body", skip=frozenset({"x-stream-offset"}))
    assert dict(event.headers) == {
        "s": b"text",
        "n": b"5",
        "b": b"true",
        "f": b"1.5",
        "t": b"2024-01-02T00:00:00+00:00",
        "nested": b'{"x": [1, "a"]}',
        "v": b"null",
    }
    assert event.timestamp == 1_700_000_000_000 and event.key is None


def test_x_death_decoding():
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    properties = spec.Basic.Properties(
        headers={
            "x-death": [
                {
                    "count": 2,
                    "reason": "expired",
                    "queue": "work",
                    "time": when,
                    "exchange": "ex",
                    "routing-keys": ["a", "b"],
                }
            ]
        }
    )
    event = codec.make_event("dlq", 0, deliver("dlx", "a"), properties, b"")
    assert event.metadata["x_death"] == [
        {
            "queue": "work",
            "reason": "expired",
            "count": 2,
            "exchange": "ex",
            "routing_keys": ["a", "b"],
            "time": int(when.timestamp() * 1000),
        }
    ]


def test_bad_header_values_are_invalid_requests():
    with pytest.raises(InvalidRequest):
        codec.properties_for(OutgoingEvent(value=b"", headers=(("a", "not bytes"),)), key_header=True)


# --------------------------------------------------------------------------- stream plans and taps


@pytest.mark.parametrize(
    ("kind", "value", "follow", "end", "plan"),
    [
        ("beginning", 0, False, 10, StreamPlan("first", end=10)),
        ("beginning", 0, False, 0, None),
        ("beginning", 0, True, None, StreamPlan("first")),
        ("end", 0, False, None, None),
        ("end", 0, True, None, StreamPlan("next")),
        ("offset", 4, False, 10, StreamPlan(4, first=4, end=10)),
        ("offset", 10, False, 10, None),
        ("offset", 99, True, 10, StreamPlan(10, first=10)),  # clamped to the end
        ("last", 3, False, 10, StreamPlan(7, first=7, end=10)),
        ("last", 30, False, 10, StreamPlan(0, first=0, end=10)),
        ("last", 0, False, 10, None),
        ("last", 0, True, 10, StreamPlan("next")),
        ("last", 3, True, 10, StreamPlan(7, first=7)),
    ],
)
def test_stream_plans(kind, value, follow, end, plan):
    assert plan_stream_read(kind, value, follow, end) == plan


def test_timestamp_plan_seeks_by_whole_seconds_then_skips():
    plan = plan_stream_read("timestamp", 1_700_000_000_500, False, 10)
    assert plan == StreamPlan(dt.datetime.fromtimestamp(1_700_000_000, dt.UTC), end=10, min_timestamp=1_700_000_000_500)


def test_which_positions_need_the_end():
    assert needs_end("beginning", False) and not needs_end("beginning", True)
    assert needs_end("last", True) and needs_end("offset", True) and not needs_end("end", False)


def test_tap_bindings_by_exchange_type():
    assert [(b.routing_key, b.arguments) for b in tap_bindings("x", "topic", [])] == [("#", None)]
    assert [(b.routing_key, b.arguments) for b in tap_bindings("x", "fanout", [])] == [("", None)]
    assert [(b.routing_key, b.arguments) for b in tap_bindings("x", "headers", [])] == [("", {"x-match": "all"})]
    assert [b.routing_key for b in tap_bindings("x", "direct", ["b", "a", "b"])] == ["a", "b"]
    with pytest.raises(Unsupported, match="no bindings"):
        tap_bindings("x", "direct", [])
    with pytest.raises(Unsupported, match="default exchange"):
        tap_bindings("", "direct", ["a"])
    with pytest.raises(Unsupported, match="x-consistent-hash"):
        tap_bindings("x", "x-consistent-hash", [])


def test_management_event_maps_a_peeked_message_like_a_delivery():
    event = codec.management_event(
        "q",
        0,
        {
            "payload": "AP8=",
            "payload_encoding": "base64",
            "payload_bytes": 2,
            "redelivered": True,
            "exchange": "",
            "routing_key": "q",
            "message_count": 4,
            "properties": {
                "timestamp": 1700000000,
                "type": "t",
                "content_type": "x/y",
                "headers": {"a": "x", "b": "Not UTF-8, base64 is: /wA=", "n": 3},
            },
        },
    )
    assert event.value == b"\x00\xff" and event.key is None
    assert event.headers == (("a", b"x"), ("b", b"\xff\x00"), ("n", b"3"))
    assert event.timestamp == 1700000000000
    assert event.metadata["redelivered"] is True and event.metadata["message_count"] == 4
    assert event.metadata["type"] == "t" and event.metadata["content_type"] == "x/y"
    assert "truncated_from" not in event.metadata


# --------------------------------------------------------------------------- frame_max


def test_the_header_frame_size_is_measured_only_when_it_might_not_fit():
    few = OutgoingEvent(value=b"v", headers=(("ce_type", b"OrderPlaced"), ("correlation_id", b"c-1")))
    assert not codec.may_exceed_frame(few, 131_072)
    many = OutgoingEvent(value=b"v", headers=tuple((f"h{i}", b"x") for i in range(10_000)))
    assert codec.may_exceed_frame(many, 131_072)
    size = codec.header_frame_size(1, codec.properties_for(many, key_header=True))
    # RabbitMQ refused this very event: {frame_too_large,237866,131064} (payload, frame_max - 8).
    assert size == 237_866 + 8


def test_the_cheap_bound_never_passes_a_frame_that_is_too_large():
    """The bound is an upper one: any event it lets through without measuring really fits."""
    frame_max = 4096
    for n in (1, 10, 40, 80, 120):
        for width in (1, 10, 30):
            headers = [(f"{'n' * width}{i:04d}", "é".encode() * width) for i in range(n)]
            for order in (headers, headers[::-1]):  # out of order: the exact list travels too
                event = OutgoingEvent(value=b"v", key=b"k" * width, headers=tuple(order))
                if not codec.may_exceed_frame(event, frame_max):
                    assert codec.header_frame_size(1, codec.properties_for(event, key_header=True)) <= frame_max


async def test_a_management_get_answered_500_while_the_node_starts_is_asked_again():
    """Right after RabbitMQ starts, its management API answers 500 for a moment: a GET is repeated."""
    import http.server
    import threading

    from workbench_rabbitmq import management

    answers = [500, 500, 200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            status = answers.pop(0) if answers else 200
            body = b'{"ok": true}' if status == 200 else b'{"error": "starting"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ep, secrets = endpoint(
            {"url": "amqp://guest:guest@127.0.0.1/", "management_url": f"http://127.0.0.1:{server.server_port}/"}
        )
        api = management.Management(ep, secrets, 5.0, None)
        try:
            assert await api.get("/api/overview") == {"ok": True}
            assert answers == []
        finally:
            await api.aclose()
    finally:
        server.shutdown()
