"""Addresses of the local test brokers started by ``tests/brokers/brokers.sh up``.

Integration tests import these instead of hard-coding ports, call
:func:`require_port` to fail with a clear message when a broker is not running,
and use :func:`kafka_tool` to compare against Kafka's own command-line tools.
The schema registry's subjects are listed with :func:`registry_subjects` and removed
with :func:`delete_subject`.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

BROKERS_DIR = Path(__file__).resolve().parent
BROKERS_SCRIPT = BROKERS_DIR / "brokers.sh"

KAFKA_HOST = "127.0.0.1"
KAFKA_PORT = 9092
KAFKA_BOOTSTRAP = f"{KAFKA_HOST}:{KAFKA_PORT}"

RABBIT_HOST = "127.0.0.1"
RABBIT_AMQP_PORT = 5672
RABBIT_MANAGEMENT_PORT = 15672
RABBIT_STREAM_PORT = 5552
RABBIT_USER = "guest"
RABBIT_PASSWORD = "guest"
RABBIT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
RABBIT_MANAGEMENT_URL = "http://127.0.0.1:15672"

# The schema registry (Apicurio Registry, in memory): its Confluent-compatible API is the registry URL
# a Confluent client takes. brokers.sh honours EW_REGISTRY_PORT; so does this.
REGISTRY_HOST = "127.0.0.1"
REGISTRY_PORT = int(os.environ.get("EW_REGISTRY_PORT", "18081"))
REGISTRY_URL = f"http://{REGISTRY_HOST}:{REGISTRY_PORT}/apis/ccompat/v7"
REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

# Wrappers beside this file that run Kafka's tools from the jars brokers.sh caches.
KAFKA_TOOLS = (
    "kafka-topics",
    "kafka-consumer-groups",
    "kafka-console-producer",
    "kafka-console-consumer",
    "kafka-run-class",
)


def kafka_tool(
    name: str, *args: str, timeout: float = 120, check: bool = False, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of Kafka's own tools, e.g. ``kafka_tool("kafka-topics", "--list")``.

    ``name`` is a wrapper in tests/brokers (with or without ``.sh``). Unless the
    arguments already name one, ``--bootstrap-server 127.0.0.1:9092`` is added
    (not for ``kafka-run-class``). Output is captured as text.
    """
    name = name.removesuffix(".sh")
    if name not in KAFKA_TOOLS:
        raise ValueError(f"unknown Kafka tool {name!r}; one of {', '.join(KAFKA_TOOLS)}")
    argv = [str(BROKERS_DIR / f"{name}.sh"), *args]
    if name != "kafka-run-class" and "--bootstrap-server" not in args:
        argv += ["--bootstrap-server", KAFKA_BOOTSTRAP]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, input=input_text)


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a TCP connection to host:port succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_port(host: str, port: int, name: str) -> None:
    """Raise RuntimeError unless host:port accepts a TCP connection within 2 s."""
    if not port_open(host, port):
        raise RuntimeError(
            f"{name} does not accept connections on {host}:{port}; "
            "start the test brokers with: tests/brokers/brokers.sh up"
        )


def require_kafka() -> None:
    require_port(KAFKA_HOST, KAFKA_PORT, "Kafka")


def require_rabbitmq() -> None:
    require_port(RABBIT_HOST, RABBIT_AMQP_PORT, "RabbitMQ (AMQP)")
    require_port(RABBIT_HOST, RABBIT_MANAGEMENT_PORT, "RabbitMQ management")
    require_port(RABBIT_HOST, RABBIT_STREAM_PORT, "RabbitMQ streams")


def require_registry() -> None:
    require_port(REGISTRY_HOST, REGISTRY_PORT, "The schema registry")


def registry_subjects(prefix: str = "", deleted: bool = True) -> set[str]:
    """The registry's subjects starting with ``prefix``; with ``deleted``, the soft-deleted ones too."""
    import httpx

    response = httpx.get(f"{REGISTRY_URL}/subjects", params={"deleted": str(deleted).lower()}, timeout=30)
    response.raise_for_status()
    return {name for name in response.json() if name.startswith(prefix)}


def delete_subject(name: str, missing_ok: bool = False) -> None:
    """Delete a subject for good: soft, then permanently (``?permanent=true``), as Confluent requires.

    A soft delete alone leaves the subject behind, and re-registering the same schema under it then
    leaves it invisible in Apicurio: a test's teardown always calls this. A subject already soft-deleted
    is deleted permanently; one that does not exist raises, unless ``missing_ok``.
    """
    import httpx

    url = f"{REGISTRY_URL}/subjects/{quote(name, safe='')}"
    with httpx.Client(timeout=30) as http:
        soft = http.delete(url)
        if soft.status_code == 404:
            code = soft.json().get("error_code")
            if code == 40401 and missing_ok:  # subject not found
                return
            if code != 40404:  # 40404: already soft-deleted, go on to the permanent delete
                soft.raise_for_status()
        else:
            soft.raise_for_status()
        http.delete(url, params={"permanent": "true"}).raise_for_status()


def kafka_group_ids(prefix: str = "") -> set[str]:
    """The consumer group ids the test Kafka lists (starting with ``prefix``): ONE ListGroups request.

    Tests that only need names use this, never ``Connection.groups()``, which describes every group
    (on a shared cluster's thousands of groups that takes seconds).
    """
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP})
    listing = admin.list_consumer_groups(request_timeout=30).result()
    return {g.group_id for g in listing.valid if g.group_id.startswith(prefix)}


def delete_kafka_groups(*group_ids: str) -> None:
    """Delete consumer groups a test made (a test leaves the broker as it found it)."""
    from confluent_kafka.admin import AdminClient

    if not group_ids:
        return
    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP})
    for future in admin.delete_consumer_groups(list(group_ids), request_timeout=30).values():
        future.result()
