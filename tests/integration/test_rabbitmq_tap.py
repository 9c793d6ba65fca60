"""The RabbitMQ adapter against the real broker: taps, routing failures, dead letters, connecting.

Needs RabbitMQ on 127.0.0.1 (AMQP 5672, management 15672): ``bash tests/brokers/brokers.sh up``.
Without it these tests fail (they do not skip). Every test uses its own uniquely named exchanges
and queues (auto-delete or exclusive where possible, deleted otherwise), so they can share the
broker with other test runs. The "other side" (real publishers and consumers) is aio-pika.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import uuid

import aio_pika
import httpx
import pytest

from tests.brokers import endpoints
from tests.conformance.support import Follower
from tests.integration.rabbitmq_support import WAIT, amqp, conn, eventually, options, require_rabbitmq, unique  # noqa: F401 (fixtures)
from workbench.broker import (
    AccessDenied,
    NotFound,
    OutgoingEvent,
    Position,
    Unreachable,
    Unroutable,
    Unsupported,
)
from workbench_rabbitmq import RabbitMQAdapter

pytestmark = pytest.mark.rabbitmq

TAP_PREFIX = "workbench.tap."


@pytest.fixture
async def http():
    require_rabbitmq()
    auth = (endpoints.RABBIT_USER, endpoints.RABBIT_PASSWORD)
    async with httpx.AsyncClient(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=auth, timeout=10) as client:
        yield client


async def tap_queues(http: httpx.AsyncClient) -> dict[str, dict]:
    response = await http.get("/api/queues/%2F", params={"columns": "name,exclusive,auto_delete,arguments"})
    response.raise_for_status()
    return {q["name"]: q for q in response.json() if q["name"].startswith(TAP_PREFIX)}


# --------------------------------------------------------------------------- taps


async def test_tap_sees_everything_in_order_and_steals_nothing(conn, amqp, http):
    ch = await amqp.channel(publisher_confirms=True)
    exchange = await ch.declare_exchange(unique("it-rmq-orders"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
    real = await ch.declare_queue(unique("it-rmq-real"), exclusive=True)  # a real consumer's queue
    await real.bind(exchange, "order.#")
    before = set(await tap_queues(http))
    tail = Follower(conn, exchange.name, Position.end(), wait=WAIT)
    try:
        probes = await tail.until_live(
            lambda n: exchange.publish(aio_pika.Message(b"probe-%d" % n), routing_key="order.probe")
        )
        # While reading, the tap queue exists: exclusive, auto-delete, capped.
        taps = await tap_queues(http)
        mine = {name: q for name, q in taps.items() if name not in before}
        assert len(mine) == 1, mine
        (tap,) = mine.values()
        assert tap["exclusive"] and tap["auto_delete"]
        assert tap["arguments"]["x-max-length"] == 10_000
        assert tap["arguments"]["x-overflow"] == "drop-head"

        n = 1000
        for start in range(0, n, 250):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(b"event-%05d" % i, headers={"i": i}), routing_key=f"order.created.{i % 7}"
                    )
                    for i in range(start, start + 250)
                )
            )
        await tail.wait_for(lambda events: sum(not e.value.startswith(b"probe-") for e in events) >= n)
    finally:
        await tail.close()
    events = [e for e in tail.events if not e.value.startswith(b"probe-")]
    assert [e.value for e in events] == [b"event-%05d" % i for i in range(n)], "missed or reordered"
    assert [e.offset for e in tail.events] == list(range(len(tail.events)))  # a per-read sequence
    assert events[3].key == b"order.created.3"  # the routing key
    assert events[3].metadata["exchange"] == exchange.name
    assert dict(events[3].headers)["i"] == b"3"  # an int header, as JSON text
    # After close the tap queue is gone ...
    await eventually(lambda: _gone(http, tap_name=next(iter(mine))), "the tap queue to disappear")
    # ... and the real consumer's queue got every message: nothing was stolen.
    declared = await ch.declare_queue(real.name, passive=True)
    assert declared.declaration_result.message_count == probes + n


async def _gone(http, tap_name: str) -> bool:
    return tap_name not in await tap_queues(http)


async def test_tap_goes_with_the_connection(amqp, http):
    """Closing the connection (or the process dying) drops the exclusive, auto-delete tap."""
    require_rabbitmq()
    ch = await amqp.channel()
    exchange = await ch.declare_exchange(unique("it-rmq-fan"), aio_pika.ExchangeType.FANOUT, auto_delete=True)
    conn = await RabbitMQAdapter(options()).connect()
    tail = Follower(conn, exchange.name, Position.end(), wait=WAIT)
    try:
        await tail.until_live(lambda n: exchange.publish(aio_pika.Message(b"p%d" % n), routing_key=""))
        assert await tap_queues(http)
        await conn.close()  # while the read is still open
    finally:
        await tail.close()
        await conn.close()
    mine = f"{exchange.name}"
    await eventually(lambda: _no_tap_bound_to(http, mine), "the tap of a closed connection to disappear")


async def _no_tap_bound_to(http, exchange: str) -> bool:
    response = await http.get(f"/api/exchanges/%2F/{exchange}/bindings/source")
    if response.status_code == 404:  # auto-delete: the exchange went with its last binding
        return True
    return not [b for b in response.json() if b["destination"].startswith(TAP_PREFIX)]


TAPPER = r"""
import asyncio, sys
from workbench_rabbitmq import RabbitMQAdapter
from workbench.broker import Position

async def main():
    conn = await RabbitMQAdapter({"url": sys.argv[1]}).connect()
    reader = conn.read(sys.argv[2], Position.end(), follow=True)
    waiting = asyncio.ensure_future(anext(reader))
    print("tapping", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_tap_goes_when_the_process_is_killed(amqp, http):
    """SIGKILL: no close() at all, yet the tap queue (exclusive, auto-delete) disappears."""
    ch = await amqp.channel()
    exchange = await ch.declare_exchange(unique("it-rmq-kill"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
    keep = await ch.declare_queue(unique("it-rmq-keep"), exclusive=True)  # keeps the exchange alive
    await keep.bind(exchange, "never")
    proc = subprocess.Popen(
        [sys.executable, "-c", TAPPER, endpoints.RABBIT_AMQP_URL, exchange.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == b"tapping", proc.stderr.read().decode(errors="replace")

        async def taps_bound() -> list[str]:
            response = await http.get(f"/api/exchanges/%2F/{exchange.name}/bindings/source")
            return [b["destination"] for b in response.json() if b["destination"].startswith(TAP_PREFIX)]

        taps = await eventually(taps_bound, "the tap of the other process to be bound")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    async def gone() -> bool:
        return not set(taps) & set(await tap_queues(http))

    await eventually(gone, "the tap queue of a killed process to disappear")
    assert await _no_tap_bound_to(http, exchange.name)


async def test_exchange_history_and_default_exchange_are_unsupported(conn):
    with pytest.raises(Unsupported, match="exchanges have no history"):
        await anext(conn.read("amq.topic", Position.beginning()))
    with pytest.raises(Unsupported, match="default exchange"):
        await anext(conn.read("amq.default", Position.end(), follow=True))
    # A bounded read from the end of an exchange: nothing old, ends at once.
    assert [b async for b in conn.read("amq.topic", Position.end())] == []


async def test_reading_a_classic_queue_is_unsupported(conn, amqp):
    ch = await amqp.channel()
    queue = await ch.declare_queue(unique("it-rmq-work"), exclusive=True)
    await ch.default_exchange.publish(aio_pika.Message(b"keep me"), routing_key=queue.name)
    with pytest.raises(Unsupported, match="would take its messages"):
        await anext(conn.read(queue.name, Position.beginning()))
    declared = await ch.declare_queue(queue.name, passive=True)
    assert declared.declaration_result.message_count == 1  # untouched


# --------------------------------------------------------------------------- publish failures


async def test_unroutable_publish_is_a_failure_of_that_event(conn, amqp):
    ch = await amqp.channel()
    exchange = await ch.declare_exchange(unique("it-rmq-direct"), aio_pika.ExchangeType.DIRECT, auto_delete=True)
    bound = await ch.declare_queue(unique("it-rmq-bound"), exclusive=True)
    await bound.bind(exchange, "somewhere")
    results = await conn.publish(
        exchange.name,
        [
            OutgoingEvent(value=b"routed", key=b"somewhere"),
            OutgoingEvent(value=b"lost", key=b"nowhere"),
            OutgoingEvent(value=b"routed too", key=b"somewhere"),
        ],
    )
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].ok and results[2].ok
    assert isinstance(results[1].error, Unroutable), results[1]
    assert "event 1" in str(results[1].error) and "nowhere" in str(results[1].error)
    declared = await ch.declare_queue(bound.name, passive=True)
    assert declared.declaration_result.message_count == 2


async def test_missing_exchange_is_not_found_and_the_connection_survives(conn, amqp):
    with pytest.raises(NotFound):
        await conn.publish(f"exchange:{unique('it-rmq-missing')}", [OutgoingEvent(value=b"x")])
    # An exchange deleted after publish() resolved it: the channel error fails those events
    # (NotFound), and the next publish works on a fresh channel.
    ch = await amqp.channel()
    doomed = await ch.declare_exchange(unique("it-rmq-doomed"), aio_pika.ExchangeType.FANOUT)
    queue = await ch.declare_queue(unique("it-rmq-sink"), exclusive=True)
    await queue.bind(doomed)
    assert all(r.ok for r in await conn.publish(doomed.name, [OutgoingEvent(value=b"1")]))
    await doomed.delete()
    results = await conn.publish(doomed.name, [OutgoingEvent(value=b"2"), OutgoingEvent(value=b"3")])
    assert all(isinstance(r.error, NotFound) for r in results), results
    stream = unique("it-rmq-after")
    await conn.create_topic(stream)
    try:
        assert all(r.ok for r in await conn.publish(stream, [OutgoingEvent(value=b"still fine")]))
        assert any(t.name == stream for t in await conn.list_topics())
    finally:
        await conn.delete_topic(stream)


# --------------------------------------------------------------------------- dead letters


async def test_x_death_is_decoded(conn, amqp):
    ch = await amqp.channel()
    dlx = await ch.declare_exchange(unique("it-rmq-dlx"), aio_pika.ExchangeType.FANOUT, auto_delete=True)
    work = await ch.declare_queue(unique("it-rmq-work"), exclusive=True, arguments={"x-dead-letter-exchange": dlx.name})
    tail = Follower(conn, dlx.name, Position.end(), wait=WAIT)
    try:
        await tail.until_live(lambda n: dlx.publish(aio_pika.Message(b"probe-%d" % n), routing_key=""))
        await ch.default_exchange.publish(aio_pika.Message(b"poison", headers={"a": "1"}), routing_key=work.name)
        message = await work.get(timeout=5)
        await message.reject(requeue=False)
        await tail.wait_for(lambda events: any(e.value == b"poison" for e in events))
    finally:
        await tail.close()
    (dead,) = [e for e in tail.events if e.value == b"poison"]
    (death,) = dead.metadata["x_death"]
    assert death["queue"] == work.name
    assert death["reason"] == "rejected"
    assert death["count"] == 1
    assert death["exchange"] == ""
    assert death["routing_keys"] == [work.name]
    assert abs(death["time"] - time.time() * 1000) < 120_000
    headers = dict(dead.headers)
    assert headers["a"] == b"1"
    assert b'"rejected"' in headers["x-death"]  # the raw header, as JSON text


# --------------------------------------------------------------------------- connecting


async def test_unreachable_in_bounded_time():
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"RabbitMQ AMQP at 127\.0\.0\.1:1 refused the connection"):
        await RabbitMQAdapter({"url": "amqp://guest:guest@127.0.0.1:1/", "timeout_s": 2}).connect()
    assert time.monotonic() - started < 5


async def test_silent_server_times_out_in_bounded_time():
    """A port that accepts TCP but never speaks AMQP: Unreachable after timeout_s, not a hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(Unreachable, match=rf"127\.0\.0\.1:{port} did not answer within 1\.5 s"):
            await RabbitMQAdapter({"url": f"amqp://guest:guest@127.0.0.1:{port}/", "timeout_s": 1.5}).connect()
        assert time.monotonic() - started < 5
    finally:
        server.close()


async def test_wrong_password_is_access_denied_and_never_shown():
    require_rabbitmq()
    secret = "not-the-password-" + uuid.uuid4().hex[:6]
    url = f"amqp://guest:{secret}@{endpoints.RABBIT_HOST}:{endpoints.RABBIT_AMQP_PORT}/"
    adapter = RabbitMQAdapter(RabbitMQAdapter.options_from_url(url))
    assert secret not in adapter.describe() and secret not in repr(adapter)
    with pytest.raises(AccessDenied, match="authentication failed") as caught:
        await adapter.connect()
    assert secret not in str(caught.value) and secret not in repr(caught.value)


async def test_wrong_vhost_is_named():
    require_rabbitmq()
    vhost = unique("no-such-vhost")
    url = f"amqp://guest:guest@{endpoints.RABBIT_HOST}:{endpoints.RABBIT_AMQP_PORT}/{vhost}"
    with pytest.raises(NotFound, match=vhost):
        await RabbitMQAdapter({"url": url, "timeout_s": 5}).connect()


async def test_management_down_is_a_degraded_mode(amqp):
    conn = await RabbitMQAdapter(options(management_url="http://127.0.0.1:1", timeout_s=3)).connect()
    try:
        assert conn.degraded
        assert any("management API at http://127.0.0.1:1" in w for w in conn.warnings), conn.warnings
        with pytest.raises(Unsupported, match="management API"):
            await conn.list_topics()
        ch = await amqp.channel()
        queue = await ch.declare_queue(unique("it-rmq-degraded"), auto_delete=True)
        try:
            results = await conn.publish(queue.name, [OutgoingEvent(value=b"still publishes")])
            assert results[0].ok
            info = await conn.describe_topic(queue.name)
            assert info.count == 1 and "management API" in info.metadata["warning"]
            with pytest.raises(Unsupported, match="management API"):
                await anext(conn.read(queue.name, Position.beginning()))
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    finally:
        await conn.close()
