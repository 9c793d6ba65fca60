"""Least-privilege RabbitMQ users: a `monitoring` user browses fully (it is not told its password
is wrong), and a wrong password says so. Real RabbitMQ; the users are made and deleted per test."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from tests.brokers import endpoints

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def monitoring_user():
    endpoints.require_rabbitmq()
    name, password = f"wb-mon-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    api = httpx.Client(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=("guest", "guest"), timeout=10)
    api.put(f"/api/users/{name}", json={"password": password, "tags": "monitoring"}).raise_for_status()
    api.put(f"/api/permissions/%2F/{name}", json={"configure": "", "write": "", "read": ".*"}).raise_for_status()
    try:
        yield name, password
    finally:
        api.delete(f"/api/users/{name}")
        api.close()


def workbench(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--broker", url, *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def own_queue():
    """A queue of this test's own, so the listing has something to show on a fresh broker."""
    name = f"wb-mon-q-{uuid.uuid4().hex[:8]}"
    api = httpx.Client(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=("guest", "guest"), timeout=10)
    api.put(f"/api/queues/%2F/{name}", json={"durable": False, "auto_delete": False}).raise_for_status()
    try:
        yield name
    finally:
        api.delete(f"/api/queues/%2F/{name}")
        api.close()


def test_a_monitoring_user_lists_queues_without_a_degraded_mode(monitoring_user, own_queue) -> None:
    name, password = monitoring_user
    done = workbench(f"amqp://{name}:{password}@{endpoints.RABBIT_HOST}:{endpoints.RABBIT_AMQP_PORT}/", "topics")
    assert done.returncode == 0, done.stderr
    assert "degraded" not in done.stderr and "authentication failed" not in done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert own_queue in listed, done.stdout


def test_a_wrong_password_is_named_as_such(monitoring_user) -> None:
    name, _ = monitoring_user
    done = workbench(f"amqp://{name}:wrong@{endpoints.RABBIT_HOST}:{endpoints.RABBIT_AMQP_PORT}/?timeout_s=5", "topics")
    assert done.returncode == 6, done.stderr
    assert f"authentication failed for user {name!r}" in done.stderr
    assert "wrong" not in done.stderr.replace(f"{name!r}", "")
