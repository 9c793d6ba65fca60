"""`workbench describe` shows what RabbitMQ says beyond partitions: an exchange's bindings as a tree."""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys

import aio_pika
import pytest

from tests.brokers import endpoints
from tests.integration.rabbitmq_support import require_rabbitmq, unique

pytestmark = pytest.mark.rabbitmq


async def _bound_pair(exchange: str, queue: str, *, delete: bool = False) -> None:
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
    async with connection:
        channel = await connection.channel()
        if delete:
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)
            return
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC)
        q = await channel.declare_queue(queue)
        await q.bind(ex, routing_key="orders.*")


def test_describe_an_exchange_shows_its_bindings():
    require_rabbitmq()
    exchange, queue = unique("it-rmq-desc-x"), unique("it-rmq-desc-q")
    asyncio.run(_bound_pair(exchange, queue))
    try:
        argv = [sys.executable, "-m", "workbench", "--broker", endpoints.RABBIT_AMQP_URL, "describe"]
        shown = subprocess.run([*argv, f"exchange:{exchange}"], capture_output=True, text=True, timeout=60)
        as_json = subprocess.run(
            [*argv, f"exchange:{exchange}", "-o", "json"], capture_output=True, text=True, timeout=60
        )
    finally:
        asyncio.run(_bound_pair(exchange, queue, delete=True))
    assert shown.returncode == 0, shown.stderr
    assert "bindings" in shown.stdout and queue in shown.stdout and "orders.*" in shown.stdout
    bindings = json.loads(as_json.stdout)["metadata"]["bindings"]
    assert any(queue in json.dumps(b) and "orders.*" in json.dumps(b) for b in bindings)


def test_tailing_an_exchange_says_what_the_tap_does():
    require_rabbitmq()
    exchange, queue = unique("it-rmq-note-x"), unique("it-rmq-note-q")
    asyncio.run(_bound_pair(exchange, queue))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "--broker",
            endpoints.RABBIT_AMQP_URL,
            "tail",
            f"exchange:{exchange}",
            "--follow",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 30)  # the note comes before any event
        note = proc.stderr.readline() if ready else ""
    finally:
        proc.kill()
        proc.wait(10)
        asyncio.run(_bound_pair(exchange, queue, delete=True))
    assert note.startswith("note: while a tap is bound, messages no other queue takes become routable"), note
