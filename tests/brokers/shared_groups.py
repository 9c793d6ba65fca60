"""Make the test Kafka look like a shared production cluster: thousands of unrelated groups.

A shared Kafka with 10,000 consumer groups is normal in production, and every verb and test must
stay fast and alive there. This seeds (idempotently) a topic and N consumer groups with committed
offsets on every partition, through the admin API (no consumers run), and removes them again.

    python3 -m tests.brokers.shared_groups seed [--groups 10000] [--partitions 24]
    python3 -m tests.brokers.shared_groups remove
    python3 -m tests.brokers.shared_groups count

Requests are bounded (a window of ``WINDOW`` in flight): thousands of coordinator requests fired at
once time out in bulk, which is exactly the librdkafka failure this cluster shape exists to catch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from concurrent.futures import Future

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers.endpoints import KAFKA_BOOTSTRAP

TOPIC = "ew-shared-cluster"
PREFIX = "ew-shared-group-"
WINDOW = 64  # admin requests in flight at once
TIMEOUT_S = 30.0


def group_name(index: int) -> str:
    return f"{PREFIX}{index:05d}"


def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP, "socket.timeout.ms": 60_000})


def _windowed(calls, what: str) -> int:
    """Run ``calls`` (each returns one future) with at most WINDOW in flight; count failures."""
    pending: deque[tuple[str, Future]] = deque()
    failed = 0

    def settle(name: str, future: Future) -> None:
        nonlocal failed
        try:
            future.result(timeout=TIMEOUT_S * 2)
        except Exception as exc:  # noqa: BLE001 - reported, counted, and the run goes on
            failed += 1
            if failed <= 5:
                print(f"shared groups: {what} {name}: {exc}", file=sys.stderr)

    for name, call in calls:
        pending.append((name, call()))
        if len(pending) >= WINDOW:
            settle(*pending.popleft())
    while pending:
        settle(*pending.popleft())
    return failed


def existing_groups(client: AdminClient) -> set[str]:
    listing = client.list_consumer_groups(request_timeout=TIMEOUT_S).result()
    if listing.errors:
        raise RuntimeError(f"listing consumer groups: {listing.errors[0]}")
    return {g.group_id for g in listing.valid if g.group_id.startswith(PREFIX)}


def _ensure_topic(client: AdminClient, partitions: int) -> None:
    if TOPIC in client.list_topics(timeout=TIMEOUT_S).topics:
        return
    futures = client.create_topics([NewTopic(TOPIC, partitions, 1)], request_timeout=TIMEOUT_S)
    futures[TOPIC].result()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        topic = client.list_topics(TOPIC, timeout=TIMEOUT_S).topics.get(TOPIC)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {TOPIC} did not get its {partitions} partitions")


def seed(groups: int = 10_000, partitions: int = 24) -> int:
    """Make sure ``groups`` shared groups exist; returns how many this call created."""
    started = time.monotonic()
    client = admin()
    _ensure_topic(client, partitions)
    partitions = len(client.list_topics(TOPIC, timeout=TIMEOUT_S).topics[TOPIC].partitions)
    have = existing_groups(client)
    missing = [group_name(i) for i in range(groups) if group_name(i) not in have]
    # Offset 0 is a valid committed offset on an empty partition: lag 0, a healthy group.
    commits = [TopicPartition(TOPIC, p, 0) for p in range(partitions)]
    calls = (
        (
            name,
            lambda name=name: client.alter_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(name, commits)], request_timeout=TIMEOUT_S
            )[name],
        )
        for name in missing
    )
    failed = _windowed(calls, "committing offsets of")
    print(
        f"shared groups: {groups - len(missing)} present, {len(missing) - failed} created, {failed} failed "
        f"({groups} groups x {partitions} partitions of {TOPIC}) in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    if failed:
        raise RuntimeError(f"{failed} of {len(missing)} shared groups could not be created")
    return len(missing)


def remove() -> None:
    started = time.monotonic()
    client = admin()
    names = sorted(existing_groups(client))
    calls = (
        (name, lambda name=name: client.delete_consumer_groups([name], request_timeout=TIMEOUT_S)[name])
        for name in names
    )
    failed = _windowed(calls, "deleting")
    if TOPIC in client.list_topics(timeout=TIMEOUT_S).topics:
        client.delete_topics([TOPIC], operation_timeout=TIMEOUT_S)[TOPIC].result()
    print(
        f"shared groups: {len(names) - failed} deleted, {failed} failed, topic {TOPIC} deleted "
        f"in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    if failed:
        raise RuntimeError(f"{failed} of {len(names)} shared groups could not be deleted")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m tests.brokers.shared_groups", description=__doc__)
    parser.add_argument("command", choices=["seed", "remove", "count"])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=24)
    args = parser.parse_args(argv)
    if args.command == "seed":
        seed(args.groups, args.partitions)
    elif args.command == "remove":
        remove()
    else:
        print(len(existing_groups(admin())))


if __name__ == "__main__":
    main()
