"""`topics create` with a replication factor and broker settings, and `describe` flagging partitions
that are offline or under-replicated (issue 17)."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from typer.testing import CliRunner

from tests.brokers import endpoints
from workbench.broker import PartitionInfo, TopicInfo
from workbench.cli import app, output
from workbench.errors import ExitCode

KAFKA = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"


@pytest.fixture
def topic_name():
    endpoints.require_port(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT, "Kafka")
    name = f"create-{uuid.uuid4().hex[:8]}"
    yield name
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    if name in admin.list_topics(timeout=10).topics:
        admin.delete_topics([name], operation_timeout=30)[name].result(60)


@pytest.mark.kafka
def test_settings_reach_the_broker(topic_name):
    result = CliRunner().invoke(
        app,
        [
            "--broker",
            KAFKA,
            "topics",
            "create",
            topic_name,
            "--partitions",
            "2",
            "-r",
            "1",
            "--config",
            "cleanup.policy=compact",
            "--config",
            "min.insync.replicas=1",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert len(created["partitions"]) == 2 and created["config"]["cleanup.policy"] == "compact"
    admin = AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["cleanup.policy"].value == "compact"
    assert all(p["state"] == "ok" for p in created["partitions"])


@pytest.mark.kafka
def test_the_brokers_refusal_is_shown_and_nothing_is_created(topic_name):
    result = CliRunner().invoke(app, ["--broker", KAFKA, "topics", "create", topic_name, "--replication-factor", "3"])
    assert result.exit_code == ExitCode.USAGE
    assert "replication factor of 3 cannot be reached because only 1 broker" in result.output
    assert (
        topic_name not in AdminClient({"bootstrap.servers": endpoints.KAFKA_BOOTSTRAP}).list_topics(timeout=10).topics
    )
    result = CliRunner().invoke(app, ["--broker", KAFKA, "topics", "create", topic_name, "--config", "retention.mss=1"])
    assert result.exit_code == ExitCode.USAGE and "Unknown topic config name: retention.mss" in result.output


def test_bad_settings_and_brokers_without_replicas(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["--broker", f"local:{tmp_path / 'x.db'}", "topics", "create", "t", "--config", "x"])
    assert result.exit_code == ExitCode.USAGE and "expected KEY=VALUE" in result.output
    result = runner.invoke(app, ["--broker", f"local:{tmp_path / 'x.db'}", "topics", "create", "t", "-r", "3"])
    assert result.exit_code == ExitCode.UNSUPPORTED and "no replicas" in result.output


def test_describe_flags_offline_and_under_replicated_partitions(capsys):
    info = TopicInfo(
        name="payments",
        kind="topic",
        partitions=[
            PartitionInfo(0, 0, 5, leader=1, replicas=(1, 2, 3), isr=(1, 2, 3)),
            PartitionInfo(1, 0, 5, leader=None, replicas=(1, 2, 3), isr=()),
            PartitionInfo(2, 0, 5, leader=2, replicas=(1, 2, 3), isr=(2,)),
        ],
    )
    output.render_describe(info, "table")
    captured = capsys.readouterr()
    assert "offline" in captured.out and "under-replicated" in captured.out
    assert "payments: 1 offline (no leader) and 1 under-replicated of 3 partition(s)" in captured.err
    assert [p.get("state") for p in output.topic_dict(info)["partitions"]] == ["ok", "offline", "under-replicated"]
