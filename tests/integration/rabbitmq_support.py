"""What the RabbitMQ integration tests share: the broker check, names, options, fixtures, polling.

Needs RabbitMQ on 127.0.0.1 (AMQP 5672, management 15672): ``bash tests/brokers/brokers.sh up``.
Without it the tests fail (they do not skip).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest

from tests.brokers import endpoints
from workbench_rabbitmq import RabbitMQAdapter

WAIT = 10.0  # seconds: bound on any wait in these tests (none sleeps a fixed time)


def require_rabbitmq() -> None:
    for port, what in ((endpoints.RABBIT_AMQP_PORT, "AMQP"), (endpoints.RABBIT_MANAGEMENT_PORT, "management")):
        if not endpoints.port_open(endpoints.RABBIT_HOST, port):
            pytest.fail(
                f"RabbitMQ {what} does not answer on {endpoints.RABBIT_HOST}:{port}: "
                "run `bash tests/brokers/brokers.sh up`",
                pytrace=False,
            )


def unique(prefix: str = "it-rmq") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def options(**extra) -> dict:
    return {
        "url": endpoints.RABBIT_AMQP_URL,
        "management_url": endpoints.RABBIT_MANAGEMENT_URL,
        "timeout_s": 10.0,
        **extra,
    }


async def eventually(check, what: str, timeout: float = WAIT):
    """Poll ``await check()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def conn():
    require_rabbitmq()
    connection = await RabbitMQAdapter(options()).connect()
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def amqp():
    """A plain aio-pika connection: the real publishers and consumers."""
    require_rabbitmq()
    connection = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    try:
        yield connection
    finally:
        await connection.close()
