"""The three-node Kafka cluster of tests/brokers/kafka-cluster.sh is what it claims to be.

Replicated (three brokers, RF 3, min.insync.replicas 2), SASL over TLS with the cluster's own CA
(SCRAM-SHA-512 users, OAUTHBEARER with unsecured JWTs), ACLs (a super user and a read-only on-call
user). confluent-kafka is used directly: this checks the harness, not the workbench.

The module starts the cluster when it is not running (about 35 s the first time, 15 s after) and
stops it at the end if it started it, so three JVMs do not sit beside the rest of the suite.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tests.brokers import cluster

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

QUIET = cluster.QUIET  # librdkafka's log lines go here, not to the terminal


@pytest.fixture(scope="module")
def info() -> Iterator[cluster.Info]:
    with cluster.running() as running:
        yield running


@pytest.fixture(scope="module")
def topic(info: cluster.Info) -> Iterator[str]:
    """A topic with RF 3 and min.insync.replicas 2, created by admin over SASL_SSL with SCRAM and the CA."""
    with cluster.replicated_topic("ew-cluster-harness", info.scram(cluster.ADMIN)) as name:
        yield name


def produce_one(conf: dict, topic: str, value: bytes = b"x", timeout: float = 20.0) -> KafkaError | None:
    """Produce one event with acks=all; the delivery error (None when it was written)."""
    outcome: list[KafkaError | None] = []
    producer = Producer(conf | {"acks": "all", "message.timeout.ms": int(timeout * 1000), "logger": QUIET})
    producer.produce(topic, value, on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(timeout + 5)
    assert outcome, "no delivery report"
    return outcome[0]


def first_error(conf: dict, within: float = 10.0) -> tuple[float, KafkaError | None]:
    """Seconds until the client reports its first error, and that error (None if none came)."""
    errors: list[KafkaError] = []
    admin = AdminClient(conf | {"error_cb": errors.append, "logger": QUIET})
    started = time.monotonic()
    while not errors and time.monotonic() - started < within:
        admin.poll(0.1)
    return time.monotonic() - started, (errors[0] if errors else None)


def test_three_brokers_in_metadata(info: cluster.Info) -> None:
    assert cluster.broker_ids() == {1, 2, 3}
    admin = AdminClient(info.scram(cluster.ADMIN) | {"logger": QUIET})
    described = admin.describe_cluster(request_timeout=20).result()
    assert sorted(node.id for node in described.nodes) == [1, 2, 3]
    assert described.controller is not None and described.controller.id in {1, 2, 3}
    ports = sorted(node.port for node in described.nodes)
    assert ports == sorted(cluster.SASL_SSL_PORTS.values()), "a SASL_SSL client is sent to the SASL_SSL listeners"


def test_admin_creates_a_replicated_topic_over_sasl_ssl(info: cluster.Info, topic: str) -> None:
    for partition in range(3):
        state = cluster.partition_state(topic, partition)
        assert sorted(state.replicas) == [1, 2, 3]
        assert sorted(state.isr) == [1, 2, 3]
        assert state.leader in {1, 2, 3}
    admin = AdminClient(info.scram(cluster.ADMIN) | {"logger": QUIET})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource], request_timeout=20)[resource].result()
    assert configs["min.insync.replicas"].value == "2"
    assert produce_one(info.scram(cluster.ADMIN), topic, b"from admin") is None


def test_broker_defaults_replicate_every_topic(info: cluster.Info) -> None:
    """A topic created without a replication factor gets the cluster's: RF 3, min.insync.replicas 2."""
    name = f"ew-cluster-defaults-{uuid.uuid4().hex[:8]}"
    conf: dict[str, Any] = {"bootstrap.servers": info.plaintext, "logger": QUIET}
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(name)], request_timeout=30)[name].result()
    try:
        state = cluster.partition_state(name, 0)
        assert sorted(state.replicas) == [1, 2, 3]
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([resource], request_timeout=20)[resource].result()
        assert configs["min.insync.replicas"].value == "2"
    finally:
        admin.delete_topics([name], request_timeout=30)[name].result()


@pytest.fixture
def group(info: cluster.Info, topic: str) -> Iterator[str]:
    """A consumer group with committed offsets (made by admin with the admin API, no consumer)."""
    group_id = f"ew-cluster-harness-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(info.scram(cluster.ADMIN) | {"logger": QUIET})
    offsets = [TopicPartition(topic, p, 0) for p in range(3)]
    request = [ConsumerGroupTopicPartitions(group_id, offsets)]
    admin.alter_consumer_group_offsets(request, request_timeout=30)[group_id].result()
    yield group_id
    admin.delete_consumer_groups([group_id], request_timeout=30)[group_id].result()


def test_oncall_reads_but_may_not_write(info: cluster.Info, topic: str, group: str) -> None:
    oncall = info.scram(cluster.ONCALL)
    admin = AdminClient(oncall | {"logger": QUIET})
    assert topic in admin.list_topics(timeout=20).topics

    # Read: the on-call user sees what admin wrote (assign(), no commit: how the workbench reads).
    assert produce_one(info.scram(cluster.ADMIN), topic, b"for oncall", timeout=20) is None
    consumer = Consumer(
        oncall | {"group.id": f"ew-harness-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False, "logger": QUIET}
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        values = set()
        deadline = time.monotonic() + 20
        while b"for oncall" not in values and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.add(message.value())
        assert b"for oncall" in values
    finally:
        consumer.close()

    # Groups: listed, described, their committed offsets fetched.
    listed = admin.list_consumer_groups(request_timeout=20).result()
    assert group in {g.group_id for g in listed.valid}
    admin.describe_consumer_groups([group], request_timeout=20)[group].result()
    fetched = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=20)
    assert {tp.partition for tp in fetched[group].result().topic_partitions} == {0, 1, 2}

    # Write, creating topics, moving a group's offsets: refused by the ACLs, promptly and by name.
    started = time.monotonic()
    error = produce_one(oncall, topic, b"not allowed")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert time.monotonic() - started < 10
    name = f"ew-cluster-denied-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as denied:
        admin.create_topics([NewTopic(name, 1, 3)], request_timeout=20)[name].result()
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    reset = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])]
    refused = admin.alter_consumer_group_offsets(reset, request_timeout=20)[group].result()
    assert [tp.error.code() if tp.error else None for tp in refused.topic_partitions] == [
        KafkaError.GROUP_AUTHORIZATION_FAILED
    ]


def test_oauthbearer_unsecured_jwt(info: cluster.Info, topic: str) -> None:
    """OAUTHBEARER connects with an unsecured JWT, and the ACLs apply to the token's principal."""
    as_admin = info.oauthbearer(cluster.ADMIN)
    assert topic in AdminClient(as_admin | {"logger": QUIET}).list_topics(timeout=20).topics
    assert produce_one(as_admin, topic, b"from an OAUTHBEARER admin") is None
    error = produce_one(info.oauthbearer(cluster.ONCALL), topic, b"not allowed")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


@pytest.mark.parametrize(
    ("user", "password"),
    [(cluster.ADMIN, "not-the-password"), ("nobody", "whatever")],
    ids=["wrong-password", "unknown-user"],
)
def test_bad_credentials_fail_fast(info: cluster.Info, user: str, password: str) -> None:
    seconds, error = first_error(info.scram(user, password))
    assert error is not None and error.code() == KafkaError._AUTHENTICATION, error
    assert "invalid credentials" in error.str()
    assert seconds < 5


# librdkafka reports a refused certificate as _SSL, or as _TRANSPORT when the failure surfaces on the
# socket read of the handshake (seen in about one run in five); the message names it in both cases.
TLS_REFUSED = {KafkaError._SSL, KafkaError._TRANSPORT}


def test_untrusted_ca_is_refused(info: cluster.Info) -> None:
    seconds, error = first_error(info.scram(cluster.ADMIN, ca=info.untrusted_ca))
    assert error is not None and error.code() in TLS_REFUSED, error
    assert "certificate verify failed" in error.str()
    assert seconds < 5


def test_hostname_mismatch_is_refused(info: cluster.Info) -> None:
    """The MISMATCH listener's certificate is signed by the cluster's CA for another name: only the host
    name check refuses it (without that check, the same client gets in)."""
    seconds, error = first_error(info.scram(cluster.ADMIN, bootstrap=info.mismatch))
    assert error is not None and error.code() in TLS_REFUSED, error
    assert "certificate verify failed" in error.str()
    assert seconds < 5
    unchecked = info.scram(cluster.ADMIN, bootstrap=info.mismatch) | {"ssl.endpoint.identification.algorithm": "none"}
    assert AdminClient(unchecked | {"logger": QUIET}).list_topics(timeout=20).brokers


def test_a_killed_node_comes_back(info: cluster.Info, topic: str) -> None:
    """The failover helpers work: the leader of a partition is SIGKILLed, another replica leads, the
    node starts again and rejoins the ISR."""
    leader = cluster.leader_of(topic, 0)
    cluster.kill_node(leader)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = cluster.partition_state(topic, 0)
            if state.leader not in (-1, leader) and leader not in state.isr:
                break
            time.sleep(0.5)
        assert state.leader not in (-1, leader), state
        assert produce_one(info.scram(cluster.ADMIN), topic, b"with two in sync") is None
    finally:
        cluster.start_node(leader)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and leader not in cluster.partition_state(topic, 0).isr:
        time.sleep(0.5)
    assert leader in cluster.partition_state(topic, 0).isr
    assert cluster.broker_ids() == {1, 2, 3}
