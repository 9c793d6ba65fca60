"""The CLI against the real RabbitMQ: an unroutable publish is a reported failure, not a silent loss."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import aio_pika
import pytest

from tests.brokers import endpoints
from workbench.errors import ExitCode

pytestmark = pytest.mark.rabbitmq


async def _exchange(name: str, *, delete: bool = False) -> None:
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL)
    async with connection:
        channel = await connection.channel()
        if delete:
            await channel.exchange_delete(name)
        else:
            await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=False)


def test_unroutable_publish_exits_non_zero_naming_the_event():
    endpoints.require_rabbitmq()
    name = f"wb-it-unroutable-{uuid.uuid4().hex[:8]}"
    asyncio.run(_exchange(name))  # a topic exchange with no binding: nothing can route
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench",
                "--broker",
                endpoints.RABBIT_AMQP_URL,
                "publish",
                name,
                "--value",
                '{"orderId": 1}',
                "--key",
                "orders.created",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        asyncio.run(_exchange(name, delete=True))
    assert done.returncode == ExitCode.PUBLISH_FAILED, done.stderr
    assert "0 confirmed, 1 failed" in done.stdout
    assert "--value: Unroutable" in done.stderr
    assert "guest:guest" not in done.stdout + done.stderr  # the password never shows
