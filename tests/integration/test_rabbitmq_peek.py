"""Peeking a classic queue through the management API: exact bytes, messages requeued, guarded CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import aio_pika
import pytest

from tests.brokers import endpoints
from tests.integration.rabbitmq_support import amqp, conn, eventually, unique  # noqa: F401 (fixtures)
from workbench.broker import InvalidRequest, NotFound, Unsupported
from workbench.errors import ExitCode

pytestmark = pytest.mark.rabbitmq

BODIES = [b"\x00\xff first", b"\x80\x81 second", b"third \xfe"]


async def _queue_with_three(amqp) -> tuple[str, aio_pika.abc.AbstractChannel]:  # noqa: F811
    name = unique("it-rmq-peek")
    channel = await amqp.channel()
    await channel.declare_queue(name, auto_delete=False)
    for i, body in enumerate(BODIES):
        message = aio_pika.Message(body, headers={"n": str(i), "kind": "peek-test"})
        await channel.default_exchange.publish(message, routing_key=name)
    return name, channel


async def _depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count


async def _depth_is(channel, name: str, n: int) -> bool:
    return await _depth(channel, name) == n


def _workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


async def test_peek_returns_exact_messages_and_requeues_them(conn, amqp):  # noqa: F811
    assert type(conn).__module__.startswith("workbench_rabbitmq")
    name, channel = await _queue_with_three(amqp)
    try:
        await eventually(lambda: _depth_is(channel, name, 3), "3 messages in the queue")
        events = await conn.peek(name, 2)
        assert [e.value for e in events] == BODIES[:2]
        assert [dict(e.headers) for e in events] == [
            {"n": b"0", "kind": b"peek-test"},
            {"n": b"1", "kind": b"peek-test"},
        ]
        assert [e.offset for e in events] == [0, 1]
        assert all(e.metadata["routing_key"] == name and e.metadata["exchange"] == "" for e in events)
        assert "redelivered" in events[0].metadata and "message_count" in events[0].metadata
        assert await _depth(channel, name) == 3  # nothing was taken for good

        queue = await channel.declare_queue(name, passive=True)
        seen = {}
        for _ in range(3):
            message = await queue.get(timeout=5)
            seen[message.body] = message.redelivered
            await message.ack()
        assert seen == {BODIES[0]: True, BODIES[1]: True, BODIES[2]: False}
    finally:
        await channel.queue_delete(name)


async def test_peek_refuses_streams_missing_queues_and_bad_counts(conn, amqp):  # noqa: F811
    stream = unique("it-rmq-peek-stream")
    channel = await amqp.channel()
    await channel.declare_queue(stream, durable=True, arguments={"x-queue-type": "stream"})
    try:
        with pytest.raises(Unsupported) as refused:
            await conn.peek(stream, 1)
        assert "tail" in (refused.value.hint or "")
        with pytest.raises(InvalidRequest):
            await conn.peek(stream, 0)
    finally:
        await channel.queue_delete(stream)
    with pytest.raises(NotFound):
        await conn.peek(unique("it-rmq-missing"), 1)


async def test_cli_peek_needs_confirmation_and_a_writable_profile(amqp, isolated_home):  # noqa: F811
    endpoints.require_rabbitmq()
    name, channel = await _queue_with_three(amqp)
    try:
        await eventually(lambda: _depth_is(channel, name, 3), "3 messages in the queue")
        broker = ["--broker", endpoints.RABBIT_AMQP_URL]

        done = _workbench(*broker, "peek", name, "--count", "2", "-o", "jsonl", "--yes")
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(lines) == 2 and all(line["topic"] == name for line in lines)
        assert "requeues them at once" in done.stderr and "redelivered" in done.stderr

        done = _workbench(*broker, "peek", name, "--count", "2", "-o", "jsonl")
        assert done.returncode == ExitCode.USAGE and done.stdout == ""
        assert "needs confirmation" in done.stderr and "--yes" in done.stderr
        assert "keep their place in the queue" in done.stderr  # the warning comes before the question

        (isolated_home / "workbench.toml").write_text(
            f'[profiles.prod]\nbroker = "{endpoints.RABBIT_AMQP_URL}"\nread_only = true\n'
        )
        done = _workbench("--profile", "prod", "peek", name, "--yes")
        assert done.returncode == ExitCode.DENIED and "read-only" in done.stderr
        assert await _depth(channel, name) == 3
        assert "guest:guest" not in done.stdout + done.stderr
    finally:
        await channel.queue_delete(name)
