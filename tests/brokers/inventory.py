"""What the test brokers hold: Kafka topics and groups; RabbitMQ vhosts, users, exchanges, queues, policies;
the schema registry's subjects (soft-deleted ones too: only a permanent delete removes a subject).

The test command takes this inventory before the suite and again after it: whatever is new was
left behind by a test (a leak) and fails the run, named. A test that needs a broker-side object
creates it with a unique name and removes it in a fixture's teardown, so a fresh broker and one
that ran the suite a hundred times look the same to every test.

    python3 -m tests.brokers.inventory            # print the inventory (one item a line)
"""

from __future__ import annotations

import sys

import httpx
from confluent_kafka.admin import AdminClient

from tests.brokers.endpoints import (
    KAFKA_BOOTSTRAP,
    RABBIT_MANAGEMENT_URL,
    RABBIT_PASSWORD,
    RABBIT_USER,
    registry_subjects,
)

TIMEOUT_S = 30.0


def kafka_items() -> set[str]:
    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP})
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    groups = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result().valid
    return {f"kafka topic {name}" for name in topics if not name.startswith("__")} | {
        f"kafka group {g.group_id}" for g in groups
    }


def rabbitmq_items() -> set[str]:
    items: set[str] = set()
    with httpx.Client(base_url=RABBIT_MANAGEMENT_URL, auth=(RABBIT_USER, RABBIT_PASSWORD), timeout=TIMEOUT_S) as http:

        def get(path: str) -> list[dict]:
            response = http.get(path)
            response.raise_for_status()
            return response.json()

        items |= {f"rabbitmq vhost {v['name']}" for v in get("/api/vhosts")}
        items |= {f"rabbitmq user {u['name']}" for u in get("/api/users")}
        items |= {f"rabbitmq policy {p['vhost']}/{p['name']}" for p in get("/api/policies")}
        items |= {
            f"rabbitmq exchange {e['vhost']}/{e['name']}"
            for e in get("/api/exchanges")
            if e["name"] and not e["name"].startswith("amq.")
        }
        items |= {f"rabbitmq {q.get('type', 'classic')} queue {q['vhost']}/{q['name']}" for q in get("/api/queues")}
    return items


def registry_items() -> set[str]:
    return {f"registry subject {name}" for name in registry_subjects(deleted=True)}


def inventory() -> set[str]:
    return kafka_items() | rabbitmq_items() | registry_items()


def leaks(before: set[str], after: set[str], ignore_prefixes: tuple[str, ...] = ()) -> list[str]:
    """What ``after`` holds that ``before`` did not, less the names that start with an ignored prefix."""
    return sorted(item for item in after - before if not item.startswith(ignore_prefixes))


if __name__ == "__main__":
    for line in sorted(inventory()):
        print(line)
    sys.exit(0)
