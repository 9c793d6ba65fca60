"""The conformance suite against the real RabbitMQ of ``tests/brokers/brokers.sh``.

Topics are streams made with ``create_topic`` (unique names, deleted by :meth:`Harness.teardown`);
RabbitMQ streams have one partition, so tests needing several are skipped by the suite
(capability ``partitions``). A missing broker fails the test with the command that starts it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.brokers import endpoints
from workbench.broker import Adapter
from workbench_rabbitmq import RabbitMQAdapter

from .harness import Harness


class RabbitMQHarness(Harness):
    """RabbitMQ 3.10+ (AMQP 127.0.0.1:5672, management :15672), vhost '/'."""

    name = "rabbitmq"
    adapter_class = RabbitMQAdapter
    marks = (pytest.mark.rabbitmq,)
    publish_offsets = False  # publisher confirms carry no offset

    def __init__(self, tmp_path: Path, test_name: str) -> None:
        super().__init__(tmp_path, test_name)
        for port, what in (
            (endpoints.RABBIT_AMQP_PORT, "AMQP"),
            (endpoints.RABBIT_MANAGEMENT_PORT, "management API"),
        ):
            if not endpoints.port_open(endpoints.RABBIT_HOST, port):
                pytest.fail(
                    f"RabbitMQ {what} does not answer on {endpoints.RABBIT_HOST}:{port}: "
                    "run `bash tests/brokers/brokers.sh up`",
                    pytrace=False,
                )
        # Every connection of this test carries this name: assert_clean() looks for leftovers.
        self.connection_name = f"workbench-conformance-{uuid.uuid4().hex[:12]}"

    def options(self) -> dict[str, Any]:
        return {
            "url": endpoints.RABBIT_AMQP_URL,
            "management_url": endpoints.RABBIT_MANAGEMENT_URL,
            "timeout_s": 10.0,
            "connection_name": self.connection_name,
        }

    def unreachable_adapter(self) -> Adapter:
        return RabbitMQAdapter({"url": "amqp://guest:guest@127.0.0.1:1/", "timeout_s": 2.0})

    def unique(self, prefix: str = "wbc-rmq") -> str:
        return super().unique(prefix)

    def topic_config(self) -> dict[str, str]:
        return {"x-max-length-bytes": "200000000", "x-max-age": "1D"}

    async def assert_clean(self) -> None:
        """No connection of this test is left open (so neither are its channels, consumers and
        tap queues: those are exclusive to their connection)."""
        auth = (endpoints.RABBIT_USER, endpoints.RABBIT_PASSWORD)
        async with httpx.AsyncClient(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=auth, timeout=10) as http:
            deadline = time.monotonic() + 10
            while True:
                response = await http.get("/api/connections", params={"columns": "name,client_properties"})
                response.raise_for_status()
                left = [
                    c["name"]
                    for c in response.json()
                    if (c.get("client_properties") or {}).get("connection_name") == self.connection_name
                ]
                if not left:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"connections still open after close(): {left}")
                await asyncio.sleep(0.1)
