"""What the CLI says about RabbitMQ matches what the broker does (issue 19): peek's warning, the
hints of peek and tail, a header frame larger than frame_max, the age of management figures, and
trace's skipped topics and not-found exit. Real RabbitMQ; every object is made with a unique name
(or in a vhost of its own) and removed in a teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from urllib.parse import quote

import aio_pika
import httpx
import pytest

from tests.brokers import endpoints
from tests.integration.rabbitmq_support import amqp, conn, eventually, unique  # noqa: F401 (fixtures)
from workbench.broker import InvalidRequest, OutgoingEvent
from workbench.errors import ExitCode
from workbench_rabbitmq import codec

pytestmark = pytest.mark.rabbitmq

BROKER = ["--broker", endpoints.RABBIT_AMQP_URL]


def workbench(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    broker = ["--broker", url] if url else BROKER
    return subprocess.run(
        [sys.executable, "-m", "workbench", *broker, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
async def channel(amqp):  # noqa: F811
    """A channel, and ``made``: the queues and exchanges to delete afterwards, whatever happened."""
    ch = await amqp.channel()
    ch.made = {"queues": [], "exchanges": []}
    try:
        yield ch
    finally:
        cleanup = await amqp.channel()
        for name in ch.made["queues"]:
            await cleanup.queue_delete(name)
        for name in ch.made["exchanges"]:
            await cleanup.exchange_delete(name)
        await cleanup.close()


async def _queue(ch, prefix: str, bodies: list[bytes] = (), **arguments) -> str:
    name = unique(prefix)
    ch.made["queues"].append(name)
    await ch.declare_queue(name, durable=bool(arguments), arguments=arguments or None)
    for body in bodies:
        await ch.default_exchange.publish(aio_pika.Message(body), routing_key=name)
    return name


async def _ready(ch, name: str, n: int) -> None:
    async def check() -> bool:
        return (await ch.declare_queue(name, passive=True)).declaration_result.message_count == n

    await eventually(check, f"{n} message(s) in {name}")


# --------------------------------------------------------------------------- peek


async def test_peek_says_requeued_messages_keep_their_place_and_they_do(channel):
    bodies = [b"first", b"second", b"third"]
    name = await _queue(channel, "it-rmq-word-peek", bodies)
    await _ready(channel, name, 3)

    done = workbench("peek", name, "--count", "2", "--yes", "-o", "jsonl")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["value"] for line in done.stdout.splitlines()] == ["first", "second"]
    assert "keep their place" in done.stderr and "redelivered" in done.stderr
    assert "back of the queue" not in done.stderr and "order changes" not in done.stderr

    # What the warning says is what happened: same order, the peeked ones marked redelivered.
    queue = await channel.declare_queue(name, passive=True)
    seen = []
    for _ in bodies:
        message = await queue.get(timeout=5)
        seen.append((message.body, message.redelivered))
        await message.ack()
    assert seen == [(b"first", True), (b"second", True), (b"third", False)]


async def test_peek_on_a_quorum_queue_says_it_counts_a_delivery(channel):
    name = await _queue(channel, "it-rmq-word-quorum", [b"only"], **{"x-queue-type": "quorum"})
    await _ready(channel, name, 1)
    done = workbench("peek", name, "--yes", "-o", "jsonl")
    assert done.returncode == 0, done.stderr
    assert "x-delivery-count" in done.stderr
    message = await (await channel.declare_queue(name, passive=True)).get(timeout=5)
    assert message.redelivered and message.headers.get("x-delivery-count") == 1
    await message.ack()


async def test_what_cannot_be_peeked_is_refused_before_any_warning(channel, tmp_path):
    stream = await _queue(channel, "it-rmq-word-stream", **{"x-queue-type": "stream"})
    exchange = unique("it-rmq-word-x")
    channel.made["exchanges"].append(exchange)
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC)

    refused = workbench("peek", stream, "--yes")
    assert refused.returncode == ExitCode.UNSUPPORTED
    assert "cannot be peeked" in refused.stderr and f"`workbench tail {stream}`" in refused.stderr
    assert "requeue" not in refused.stderr  # no warning about what did not happen

    # Without --yes and without a terminal: still the refusal first, not "needs confirmation".
    refused = workbench("peek", exchange)
    assert refused.returncode == ExitCode.UNSUPPORTED
    assert f"`workbench tail {exchange} --follow`" in refused.stderr  # the whole command inside the backticks
    assert "requeue" not in refused.stderr and "confirmation" not in refused.stderr

    # A broker that cannot peek at all is refused before connecting or warning.
    local = workbench("peek", "orders", "--yes", url=f"local:{tmp_path / 'events.db'}")
    assert local.returncode == ExitCode.UNSUPPORTED
    assert "cannot peek" in local.stderr and "requeue" not in local.stderr.split("cannot peek")[0]

    missing = workbench("peek", unique("it-rmq-word-missing"), "--yes")
    assert missing.returncode == ExitCode.NOT_FOUND and "requeue" not in missing.stderr


async def test_tail_on_a_classic_queue_points_to_peek_and_names_the_exchange_feeding_it(channel):
    exchange = unique("it-rmq-word-feed")
    channel.made["exchanges"].append(exchange)
    source = await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT)
    name = await _queue(channel, "it-rmq-word-tail")
    await (await channel.declare_queue(name, passive=True)).bind(source, "orders")

    done = workbench("tail", name)
    assert done.returncode == ExitCode.UNSUPPORTED, done.stderr
    assert f"`workbench peek {name}`" in done.stderr
    assert f"`workbench tail {exchange} --follow`" in done.stderr


# --------------------------------------------------------------------------- frame_max


def _headers_file(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


async def test_an_event_whose_headers_exceed_frame_max_is_refused_alone_naming_the_limit(channel, tmp_path):
    name = await _queue(channel, "it-rmq-word-frame")
    many = {f"h{i}": "x" for i in range(10_000)}
    path = _headers_file(tmp_path, [{"value": "before"}, {"value": "big", "headers": many}, {"value": "after"}])

    done = workbench("publish", name, "--file", path)
    assert done.returncode == ExitCode.PUBLISH_FAILED, done.stderr
    assert "2 confirmed, 1 failed, 0 not sent" in done.stdout  # the connection survived the refusal
    assert f"{path}:2: InvalidRequest:" in done.stderr
    assert "frame_max (131,072 bytes)" in done.stderr and "10,000 header(s)" in done.stderr
    assert "Unreachable" not in done.stderr and "frame_too_large" not in done.stderr
    await _ready(channel, name, 2)


async def test_the_frame_max_check_is_exact_at_the_limit(conn, amqp, channel):  # noqa: F811
    """One byte under the limit the broker takes; one over is refused before it reaches the broker
    (which would close the whole connection), and the connection goes on."""
    name = await _queue(channel, "it-rmq-word-limit")
    frame_max = amqp.transport.connection.connection_tune.frame_max

    def padded(extra: int) -> OutgoingEvent:
        pad = 100_000
        event = OutgoingEvent(value=b"v", headers=(("pad", b"x" * pad),))
        size = codec.header_frame_size(1, codec.properties_for(event, key_header=True))
        return OutgoingEvent(value=b"v", headers=(("pad", b"x" * (pad + frame_max - size + extra)),))

    [at_limit] = await conn.publish(name, [padded(0)])
    assert at_limit.ok, at_limit.error
    [over] = await conn.publish(name, [padded(1)])
    assert isinstance(over.error, InvalidRequest) and f"frame_max ({frame_max:,} bytes)" in str(over.error)
    [after] = await conn.publish(name, [OutgoingEvent(value=b"after")])
    assert after.ok, after.error
    await _ready(channel, name, 2)


# --------------------------------------------------------------------------- statistics


async def test_describe_and_topics_say_how_old_the_management_figures_are(channel):
    name = await _queue(channel, "it-rmq-word-stats", [b"one"])
    exchange = unique("it-rmq-word-stats-x")
    channel.made["exchanges"].append(exchange)
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT)
    await _ready(channel, name, 1)

    described = workbench("describe", name)
    assert described.returncode == 0, described.stderr
    assert "up to ~5 s old" in described.stdout and "messages_ready and consumers are exact" in described.stdout

    listed = workbench("topics", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    topics = {t["name"]: t for t in json.loads(listed.stdout)}
    assert "up to ~5 s old" in topics[name]["metadata"]["statistics"]
    # An exchange stores nothing: no partitions and no events to count (the CLI shows "-").
    assert topics[exchange]["partitions"] == [] and "up to ~5 s old" in topics[exchange]["metadata"]["statistics"]

    table = workbench("topics")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines()[1:]}
    assert rows[exchange] == ["exchange", "-", "-"] and rows[name][1] == "1"  # its count may lag ~5 s
    assert table.stderr.count("up to ~5 s old") == 1, table.stderr  # said once, not per row


# --------------------------------------------------------------------------- trace


@pytest.fixture
def vhost():
    """A vhost of its own (so that trace sees only this test's exchanges and queues), deleted with
    everything in it."""
    endpoints.require_rabbitmq()
    name = f"it-rmq-word-{uuid.uuid4().hex[:8]}"
    api = httpx.Client(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=("guest", "guest"), timeout=10)
    try:
        api.put(f"/api/vhosts/{quote(name, safe='')}").raise_for_status()
        api.put(
            f"/api/permissions/{quote(name, safe='')}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
        yield name
    finally:
        api.delete(f"/api/vhosts/{quote(name, safe='')}")
        api.close()


async def _fill_vhost(vhost: str, cid: str) -> str:
    """Three exchanges and two classic queues (unreadable) and a stream holding one event of ``cid``."""
    connection = await aio_pika.connect(f"{endpoints.RABBIT_AMQP_URL}{quote(vhost, safe='')}", timeout=10)
    async with connection:
        ch = await connection.channel()
        for i in range(3):
            await ch.declare_exchange(f"x{i}", aio_pika.ExchangeType.TOPIC, durable=True)
        for i in range(2):
            await ch.declare_queue(f"q{i}", durable=True)
        stream = await ch.declare_queue("audit", durable=True, arguments={"x-queue-type": "stream"})
        await ch.default_exchange.publish(aio_pika.Message(b"{}", correlation_id=cid), routing_key=stream.name)
    return f"{endpoints.RABBIT_AMQP_URL}{quote(vhost, safe='')}"


async def test_trace_sums_up_what_it_skips_in_one_line_and_lists_it_with_verbose(vhost):
    cid = f"order-{uuid.uuid4().hex[:10]}"
    url = await _fill_vhost(vhost, cid)

    async def traced() -> bool:
        return workbench("trace", cid, "--since", "beginning", url=url).returncode == 0

    await eventually(traced, "the stream's event to be listed", timeout=20)
    done = workbench("trace", cid, "--since", "beginning", url=url)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        "skipped 3 exchanges and 2 queues that cannot be read back: q0, q1, x0 and 2 more "
        "(-v lists each with the reason)"
    ]
    assert "audit" in done.stdout

    verbose = workbench("trace", cid, "--since", "beginning", "-v", url=url)
    lines = [line for line in verbose.stderr.splitlines() if line.startswith("skipped ")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "skipped q0",
        "skipped q1",
        "skipped x0",
        "skipped x1",
        "skipped x2",
    ]
    assert all("history" in line or "would take its messages" in line for line in lines)


def test_trace_of_an_id_nothing_carries_exits_5():
    endpoints.require_rabbitmq()
    missing = f"no-such-id-{uuid.uuid4().hex[:8]}"
    done = workbench("trace", missing, "-t", "amq.topic")
    assert done.returncode == ExitCode.NOT_FOUND, done.stderr
    assert f"no event carries correlation id {missing!r}" in done.stderr and done.stdout == ""
    as_json = workbench("trace", missing, "-t", "amq.topic", "-o", "json")
    assert as_json.returncode == ExitCode.NOT_FOUND and as_json.stdout == ""
