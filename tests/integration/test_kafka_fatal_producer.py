"""A fatal producer error, provoked for real on the secure three-node cluster (tests/brokers/kafka-cluster.sh).

The workbench's producer is idempotent: it first asks the cluster for a producer id (InitProducerId).
Kafka 3.0 and later (KIP-679) grant one to a user with Write on any topic or IdempotentWrite on the
cluster; a user with neither is refused with CLUSTER_AUTHORIZATION_FAILED, which librdkafka makes a
*fatal* error: the producer can send nothing more. Found by experiment on this cluster (Kafka 4.x): a
user with Write on the topic and an explicit DENY of IdempotentWrite on the cluster still gets its id,
so the natural case is a user who may Describe the topic and Write nowhere.

The connection's authorization pre-check (``authorization.py``: may the user Write to this topic?)
refuses such a user before any producer is made, and on this broker a user who passes it always gets
a producer id. So the producer's own path is reached here by going around the pre-check, as it is
reached for real when the pre-check cannot tell: a broker that does not report a topic's authorized
operations (the pre-check then lets the publish through), or a user's last Write taken away within
the pre-check's OPERATIONS_TTL_S. The adapter test calls the publisher's publish directly; the CLI
test stands the pre-check aside (``_may`` answers yes), in-process. That the pre-check refuses the
same user first is asserted too.

What was wrong: librdkafka raises the fatal error from flush() and goes on serving delivery reports
with that exception pending, so the first report's callback failed with a SystemError: the user saw
"unexpected SystemError ... this is a bug" (exit 1), and the connection kept its dead producer.
Expected: every event of the publish fails with the broker's own error, typed AccessDenied (exit 6,
said once, with a hint), and a later publish on the same connection makes a new producer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from typer.testing import CliRunner

from tests.brokers import cluster
from workbench.broker import AccessDenied, OutgoingEvent
from workbench.cli import app
from workbench_kafka.authorization import AuthorizationMixin
from workbench_kafka.publisher import PublisherMixin

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

QUIET = cluster.QUIET
DENIED = 6
REFUSED = "CLUSTER_AUTHORIZATION_FAILED"


@pytest.fixture(scope="module")
def info() -> Iterator[cluster.Info]:
    with cluster.running() as found:
        yield found


@pytest.fixture(scope="module")
def admin(info: cluster.Info) -> AdminClient:
    """The harness's own door (PLAINTEXT, a super user): ACLs and checks."""
    return AdminClient({"bootstrap.servers": info.plaintext, "logger": QUIET})


@pytest.fixture
def topic(info: cluster.Info) -> Iterator[str]:
    with cluster.replicated_topic("ew-fatal-producer") as name:
        yield name


@pytest.fixture
def user(admin: AdminClient, topic: str) -> Iterator[str]:
    """An OAUTHBEARER principal of its own that may Describe the topic (and read its configs) and Write
    nowhere: its ACLs are removed on the way out."""
    principal = f"ew-fatal-{uuid.uuid4().hex[:8]}"
    grant(admin, principal, topic, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
    try:
        yield principal
    finally:
        every = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            f"User:{principal}",
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        for future in admin.delete_acls([every], request_timeout=30).values():
            future.result()


def grant(admin: AdminClient, principal: str, topic: str, *operations: AclOperation) -> None:
    bindings = [
        AclBinding(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            f"User:{principal}",
            "*",
            operation,
            AclPermissionType.ALLOW,
        )
        for operation in operations
    ]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result()


def options(info: cluster.Info, principal: str) -> dict[str, Any]:
    return info.oauthbearer(principal) | {"timeout_s": 10}


def url(info: cluster.Info, principal: str) -> str:
    """A --broker URL for ``principal`` over SASL_SSL with OAUTHBEARER (an unsecured JWT)."""
    return (
        f"kafka://{info.sasl_ssl}?security.protocol=SASL_SSL&sasl.mechanism=OAUTHBEARER"
        f"&enable.sasl.oauthbearer.unsecure.jwt=true&sasl.oauthbearer.config={quote('principal=' + principal)}"
        f"&ssl.ca.location={info.ca}&timeout_s=10"
    )


def written(info: cluster.Info, topic: str) -> list[bytes]:
    """Every value on the topic, read by the harness (PLAINTEXT) from the beginning to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": info.plaintext,
            "group.id": f"ew-fatal-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "logger": QUIET,
        }
    )
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 30
        while len(at_end) < 3:
            assert time.monotonic() < deadline, f"reading {topic!r} back did not end within 30 s"
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                    continue
                values.append(msg.value() or b"")
    finally:
        consumer.close()
    return values


async def test_a_fatal_producer_error_fails_the_publish_and_the_next_one_has_a_new_producer(
    info: cluster.Info, admin: AdminClient, topic: str, user: str
) -> None:
    from workbench_kafka import KafkaAdapter

    conn = await KafkaAdapter(options(info, user)).connect()
    refused_events = [OutgoingEvent(b'{"refused": %d}' % n, key=b"k%d" % n) for n in range(50)]
    try:
        timings = []
        for _ in range(2):  # the second time: a new producer, refused the same way (not a dead one's error)
            started = time.monotonic()
            with pytest.raises(AccessDenied) as refused:
                await PublisherMixin.publish(conn, topic, refused_events)  # the pre-check gone round
            timings.append(time.monotonic() - started)
            message = str(refused.value)
            assert "not authorized to produce" in message and REFUSED in message, message
            assert "Cluster authorization failed" in message, message  # the broker's own words
            assert f"topic {topic!r}" in message, message
            assert refused.value.hint and "Write on the topic" in refused.value.hint

        grant(admin, user, topic, AclOperation.WRITE)
        deadline = time.monotonic() + 30
        while "write" not in ((await conn.describe_topic(topic)).operations or ()):
            assert time.monotonic() < deadline, "the Write ACL did not reach the cluster's nodes within 30 s"
            await asyncio.sleep(0.2)
        accepted = [OutgoingEvent(b'{"accepted": %d}' % n, key=b"k%d" % n) for n in range(50)]
        results = await conn.publish(topic, accepted)  # the whole path, the pre-check too
        assert [r.error for r in results if not r.ok] == []
        assert sorted(r.index for r in results) == list(range(50))
    finally:
        await conn.close()
    assert sorted(written(info, topic)) == sorted(e.value for e in accepted)  # none of the refused ones
    print(
        "\nfatal CLUSTER_AUTHORIZATION_FAILED: publish of 50 events refused in "
        + ", then ".join(f"{t:.2f} s" for t in timings)
        + "; after Write was granted, 50 of 50 confirmed on the same connection"
    )


def test_the_cli_says_a_fatal_producer_error_once_and_exits_6(
    info: cluster.Info, topic: str, user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = url(info, user)
    # As the user meets it: the pre-check finds that the user may not Write to the topic.
    checked = CliRunner().invoke(app, ["--broker", broker, "publish", topic, "--value", "{}"], catch_exceptions=False)
    assert checked.exit_code == DENIED, checked.stderr
    assert f"not authorized to Write to topic '{topic}'" in checked.stderr

    async def may(self: Any, topic: str, operation: str) -> bool:
        return True  # what the pre-check answers when the broker does not say

    monkeypatch.setattr(AuthorizationMixin, "_may", may)
    source = tmp_path / "events.jsonl"
    source.write_text("".join(f'{{"key": "k{n}", "value": {{"n": {n}}}}}\n' for n in range(6000)))  # two batches
    for args in (["--value", "{}"], ["--file", str(source)], ["--file", str(source), "-o", "json"]):
        result = CliRunner().invoke(app, ["--broker", broker, "publish", topic, *args], catch_exceptions=False)
        err = result.stderr
        assert result.exit_code == DENIED, f"{args}: exit {result.exit_code}\n{result.stdout}{err}"
        assert err.count(REFUSED) == 1, err  # said once, however many events
        lines = err.strip().splitlines()
        assert lines[0].startswith("error: ") and "not authorized to produce" in lines[0], err
        assert lines[-1].startswith("hint: ") and "Write on the topic" in lines[-1], err
        for word in ("Traceback", "SystemError", "unexpected", "bug"):
            assert word not in err + result.stdout, err
        if "json" in args:
            assert '"confirmed": 0' in result.stdout, result.stdout
    assert written(info, topic) == []
