"""A slow consumer of a RabbitMQ exchange tap: the tap queue stays within its cap, the
workbench's memory stays bounded, and the overflow is reported, never silent.

``tail EXCHANGE --follow -o jsonl`` writes into a pipe nobody reads while 20,000 messages are
published to the exchange. The tap queue (``tap_max_length=500``, drop-head) never holds more
than 500 ready messages; once the pipe is read, the events printed are in publish order, and
stderr says how many the cap dropped: at least one, never more than were really dropped.
"""

from __future__ import annotations

import asyncio
import json
import re

import aio_pika
import httpx
import pytest

from tests.brokers import endpoints
from tests.integration import rabbitmq_support
from tests.integration.faults_support import RABBIT_URL, Workbench, rss_kb, seq_value, until

pytestmark = pytest.mark.rabbitmq

CAP = 500
BURST = 20_000
TAP_PREFIX = "workbench.tap."
PREFETCH = 1000  # the tap consumer's window (reader.TAP_PREFETCH_MAX)


async def tap_queue(http: httpx.AsyncClient, exchange: str) -> str | None:
    response = await http.get(f"/api/exchanges/%2F/{exchange}/bindings/source")
    response.raise_for_status()
    taps = [b["destination"] for b in response.json() if b["destination"].startswith(TAP_PREFIX)]
    return taps[0] if taps else None


async def queue_figures(http: httpx.AsyncClient, queue: str) -> dict:
    response = await http.get(f"/api/queues/%2F/{queue}", params={"columns": "messages_ready,arguments"})
    response.raise_for_status()
    return response.json()


def reported(tail: Workbench) -> int:
    """The largest "at least N event(s) dropped" the tail said on stderr (0: none)."""
    found = [int(m) for m in re.findall(r"at least (\d+) event\(s\) dropped", tail.stderr_text())]
    return max(found, default=0)


async def test_tap_of_a_slow_reader_stays_capped_and_reports_drops():
    rabbitmq_support.require_rabbitmq()
    name = rabbitmq_support.unique("it-faults-tap")
    auth = (endpoints.RABBIT_USER, endpoints.RABBIT_PASSWORD)
    amqp = await aio_pika.connect(endpoints.RABBIT_AMQP_URL, timeout=10)
    http = httpx.AsyncClient(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=auth, timeout=10)
    try:
        channel = await amqp.channel(publisher_confirms=False)
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
        url = f"{RABBIT_URL}?tap_max_length={CAP}"
        tail = Workbench("-b", url, "tail", name, "--follow", "-o", "jsonl", read_stdout=False)
        try:
            queue = await until(lambda: tap_queue(http, name), "the tap to be bound", 60)
            assert (await queue_figures(http, queue))["arguments"].get("x-max-length") == CAP
            baseline = rss_kb(tail.pid)
            for n in range(BURST):
                await exchange.publish(aio_pika.Message(seq_value("burst", n).encode()), routing_key="orders.placed")
            # The queue's figures come from the broker's statistics: watch them for a while.
            deepest = 0
            for _ in range(40):
                deepest = max(deepest, (await queue_figures(http, queue)).get("messages_ready") or 0)
                await asyncio.sleep(0.25)
            growth_mb = (rss_kb(tail.pid) - baseline) / 1024
            assert deepest <= CAP, f"{deepest} messages waited in a tap capped at {CAP}"
            assert growth_mb < 32, f"RSS grew by {growth_mb:.1f} MB while stdout was blocked"

            tail.start_reading()
            # The report rides on the next event after the tap counted its drops: keep a trickle
            # of events coming until it is said.
            ticks = 0

            async def said() -> int:
                nonlocal ticks
                await exchange.publish(aio_pika.Message(seq_value("tick", ticks).encode()), routing_key="orders.tick")
                ticks += 1
                await asyncio.sleep(0.2)
                return reported(tail)

            await until(said, "the drops to be reported on stderr", 60)
            assert tail.interrupt() == 130
        finally:
            tail.close()
        await exchange.delete()
    finally:
        await http.aclose()
        await amqp.close()

    values = [json.loads(r["value"]) for r in tail.records()]
    burst = [v["seq"] for v in values if v["phase"] == "burst"]
    assert burst == sorted(burst) and len(set(burst)) == len(burst), "burst events out of order or twice"
    assert [v["seq"] for v in values if v["phase"] == "tick"] == list(range(len(values) - len(burst)))
    dropped = BURST - len(burst)
    told = reported(tail)
    print(
        f"\ntap capped at {CAP}: {BURST} published, {len(burst)} printed, {dropped} dropped, "
        f"{told} reported (ticks {ticks}), deepest queue {deepest}, RSS +{growth_mb:.1f} MB"
    )
    assert dropped > 0, "the cap dropped nothing: the test did not overflow the tap"
    # "At least", never more: the routed count lags by a few seconds of ticks, and a prefetch
    # window of deliveries may be on its way.
    assert dropped - ticks - PREFETCH <= told <= dropped, f"reported {told}, really dropped {dropped}"
