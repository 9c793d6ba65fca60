"""RabbitMQ adapter throughput, on demand: ``python3 -m pytest tests/integration/test_rabbitmq_benchmark.py -m benchmark -s``.

Not part of the test command (``-m "not benchmark"``). Baselines are measured in the same run,
against the same broker: a minimal aio-pika publisher with confirms and the same number of
unconfirmed messages in flight. Asserts on ratios, never on seconds; figures go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid

import aio_pika
import pytest

from tests.brokers import endpoints
from workbench.broker import OutgoingEvent, Position
from workbench_rabbitmq import RabbitMQAdapter

pytestmark = [pytest.mark.rabbitmq, pytest.mark.benchmark]

N = 50_000
WINDOW = 1000  # confirms outstanding at once, for both
BODY = b"x" * 200


def require_rabbitmq() -> None:
    if not endpoints.port_open(endpoints.RABBIT_HOST, endpoints.RABBIT_AMQP_PORT):
        pytest.fail("RabbitMQ does not answer: run `bash tests/brokers/brokers.sh up`", pytrace=False)


def report(name: str, **figures) -> None:
    shown = ", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\nBENCH {name}: {shown}", file=sys.stderr)


async def baseline_publish(stream: str, n: int) -> float:
    """Events/s of a minimal aio-pika publisher: confirms, WINDOW in flight."""
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        gate = asyncio.Semaphore(WINDOW)

        async def one(i: int) -> None:
            async with gate:
                await channel.default_exchange.publish(
                    aio_pika.Message(BODY, timestamp=time.time()), routing_key=stream
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)
    finally:
        await connection.close()


async def test_publish_throughput_against_minimal_aio_pika():
    require_rabbitmq()
    adapter = RabbitMQAdapter({"url": endpoints.RABBIT_AMQP_URL, "publish_window": WINDOW})
    conn = await adapter.connect()
    stream = f"bench-rmq-{uuid.uuid4().hex[:8]}"
    await conn.create_topic(stream)
    try:
        events = [OutgoingEvent(value=BODY, key=b"key-%d" % (i % 100)) for i in range(N)]
        started = time.perf_counter()
        results = await conn.publish(stream, events)
        ours = N / (time.perf_counter() - started)
        assert all(r.ok for r in results)
        base = await baseline_publish(stream, N)
        report("rabbitmq publish 50k x 200 B, confirms", workbench_eps=ours, aio_pika_eps=base, ratio=ours / base)
        assert ours >= 0.5 * base
    finally:
        await conn.delete_topic(stream)
        await conn.close()


async def test_tap_while_publishing_misses_nothing():
    require_rabbitmq()
    conn = await RabbitMQAdapter({"url": endpoints.RABBIT_AMQP_URL}).connect()
    publisher = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
    try:
        channel = await publisher.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            f"bench-rmq-{uuid.uuid4().hex[:8]}", aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        sink = await channel.declare_queue("", exclusive=True)  # keeps the exchange routable
        await sink.bind(exchange, "nothing.matches.this")
        seen: list[bytes] = []
        arrived = asyncio.Event()
        reader = conn.read(exchange.name, Position.end(), follow=True)

        async def tail() -> None:
            async for batch in reader:
                seen.extend(e.value for e in batch)
                arrived.set()

        task = asyncio.create_task(tail())
        while not seen:  # until the tap is bound
            await exchange.publish(aio_pika.Message(b"probe"), routing_key="probe")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 0.2)
        probes = len(seen)
        gate = asyncio.Semaphore(WINDOW)

        async def one(i: int) -> None:
            async with gate:
                await exchange.publish(aio_pika.Message(b"%06d" % i), routing_key="order.created")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(N)))
        while len([v for v in seen if v != b"probe"]) < N:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 30)
        elapsed = time.perf_counter() - started
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await reader.aclose()
        got = [v for v in seen if v != b"probe"]
        assert got == [b"%06d" % i for i in range(N)], "missed or reordered"
        report("rabbitmq tap while publishing 50k", events_per_s=N / elapsed, probes=probes)
    finally:
        await publisher.close()
        await conn.close()
