"""Issue 19 on the real brokers: publishing to a topic that does not exist is not found (exit 5) on
Kafka and RabbitMQ as on the local log, and a RabbitMQ publish never claims an offset it lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.brokers.endpoints import (
    KAFKA_BOOTSTRAP,
    KAFKA_HOST,
    KAFKA_PORT,
    RABBIT_AMQP_PORT,
    RABBIT_AMQP_URL,
    RABBIT_HOST,
    require_port,
)
from workbench.errors import ExitCode

KAFKA = f"kafka://{KAFKA_BOOTSTRAP}"


def workbench(broker: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--broker", broker, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def rabbit_queue():
    require_port(RABBIT_HOST, RABBIT_AMQP_PORT, "rabbitmq")
    name = unique("wb-truths-q")
    created = workbench(RABBIT_AMQP_URL, "topics", "create", name)
    assert created.returncode == 0, created.stderr
    yield name
    workbench(RABBIT_AMQP_URL, "topics", "delete", name, "--yes")


def test_kafka_publish_to_a_missing_topic_is_not_found():
    require_port(KAFKA_HOST, KAFKA_PORT, "kafka")
    name = unique("wb-truths-missing")
    result = workbench(KAFKA, "publish", name, "--value", "x")
    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    assert f"topic '{name}' does not exist" in result.stderr and result.stdout == ""
    assert workbench(KAFKA, "describe", name).returncode == ExitCode.NOT_FOUND  # and nothing was created


def test_rabbitmq_publish_to_a_missing_queue_is_not_found():
    require_port(RABBIT_HOST, RABBIT_AMQP_PORT, "rabbitmq")
    name = unique("wb-truths-missing")
    result = workbench(RABBIT_AMQP_URL, "publish", name, "--value", "x")
    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    assert name in result.stderr and result.stdout == ""


def test_rabbitmq_publish_never_says_offset_none(rabbit_queue):
    table = workbench(RABBIT_AMQP_URL, "publish", rabbit_queue, "--value", "x")
    assert table.returncode == 0, table.stderr
    assert "None" not in table.stdout and "1 confirmed" in table.stdout
    machine = workbench(RABBIT_AMQP_URL, "publish", rabbit_queue, "--value", "y", "-o", "json")
    assert machine.returncode == 0, machine.stderr
    [event] = json.loads(machine.stdout)["events"]
    assert event["origin"] == "--value" and "offset" not in event
