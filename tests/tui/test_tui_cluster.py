"""The TUI on the secure, replicated cluster (tests/brokers/kafka-cluster.sh), through SASL_SSL.

The topic view shows each partition's leader, replicas, in-sync replicas and state, the rule
``describe`` uses (PartitionInfo.replica_state). For the least-privilege "oncall" user it says what
the ACLs do not allow on the topic, and the publish key says so instead of opening a dialog that
would fail; admin gets the dialog.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.text import Text
from textual.widgets import DataTable

from tests.brokers import cluster
from workbench import config
from workbench.broker import PartitionInfo, TopicInfo
from workbench.tui.screens.publish import PublishDialog
from workbench.tui.widgets.topic_view import TopicView, refused_actions, replica_summary

from .conftest import SIZE, make_app, open_topic, rendered, settle

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

WAIT = 60.0


@pytest.fixture(scope="module")
def info() -> Iterator[cluster.Info]:
    with cluster.running() as running:
        yield running


@pytest.fixture(scope="module")
def topic(info: cluster.Info) -> Iterator[str]:
    with cluster.replicated_topic("ew-sec-tui") as name:
        yield name


def target(info: cluster.Info, user: str) -> config.Target:
    options = info.scram(user) | {"timeout_s": 10.0}
    return config.resolve(config.Profile(name=f"cluster-{user}", adapter="kafka", options=options))


async def open_topic_view(pilot, name: str) -> TopicView:
    app = pilot.app
    await settle(pilot, lambda: app.connection_state == "connected" and app.main.topics, "the topic list", WAIT)
    await open_topic(pilot, name)
    view = app.main.query_one(TopicView)
    await settle(pilot, lambda: view.info is not None and view.info.name == name, "the topic's figures", WAIT)
    return view


def column_labels(table: DataTable) -> list[str]:
    return [str(column.label) for column in table.columns.values()]


def cells(table: DataTable, column: str) -> list[str]:
    keys = list(table.columns)
    index = column_labels(table).index(column)
    return [str(table.get_row_at(row)[index]) for row in range(table.row_count)] if keys else []


async def test_oncall_sees_replicas_and_what_it_may_not_do(info: cluster.Info, topic: str) -> None:
    cluster.wait_up()
    app = make_app(target(info, cluster.ONCALL), lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_topic_view(pilot, topic)
        table = view.query_one("#partitions", DataTable)
        assert column_labels(table) == ["PARTITION", "START", "END", "COUNT", "LEADER", "REPLICAS", "ISR", "STATE"]
        assert sorted(cells(table, "PARTITION")) == ["0", "1", "2"]
        for replicas in cells(table, "REPLICAS"):
            assert sorted(replicas.split(",")) == ["1", "2", "3"]
        expected = [p.replica_state for p in view.info.partitions]
        assert cells(table, "STATE") == expected
        assert set(cells(table, "LEADER")) <= {"1", "2", "3", "-"}

        assert view.info.operations is not None and "read" in view.info.operations
        assert not view.info.may("write")
        title = rendered(view.query_one("#topic-title"))
        assert "not authorized here: publish (no Write)" in title
        assert "read events" not in title  # reading is allowed: not listed

        await pilot.press("p")  # publish: said, not tried
        await settle(pilot, lambda: any(n.title == "Publish not authorized" for n in app._notifications), "the note")
        assert not isinstance(app.screen, PublishDialog)
        note = [n for n in app._notifications if n.title == "Publish not authorized"][-1]
        assert f"Not authorized to Write on topic '{topic}'" in note.message


async def test_admin_may_publish_from_the_topic_view(info: cluster.Info, topic: str) -> None:
    cluster.wait_up()
    app = make_app(target(info, cluster.ADMIN), lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_topic_view(pilot, topic)
        assert view.info.may("write") and "not authorized" not in rendered(view.query_one("#topic-title"))
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the publish dialog")


def test_replica_states_are_summed_up_as_describe_states_them() -> None:
    """The title's summary counts the states PartitionInfo.replica_state gives (no second rule)."""
    parts = (
        PartitionInfo(0, 0, 5, leader=1, replicas=(1, 2, 3), isr=(1, 2, 3)),
        PartitionInfo(1, 0, 5, leader=2, replicas=(1, 2, 3), isr=(2, 3)),
        PartitionInfo(2, 0, 5, leader=None, replicas=(1, 2, 3), isr=()),
        PartitionInfo(3, 0, 5, leader=3, replicas=(3, 1, 2), isr=(3,)),
    )
    assert [p.replica_state for p in parts] == ["ok", "under-replicated", "offline", "under-replicated"]
    summary = replica_summary(TopicInfo("t", partitions=parts))
    assert isinstance(summary, Text) and summary.plain == "1 offline (no leader) · 2 under-replicated"
    assert replica_summary(TopicInfo("t", partitions=parts[:1])) is None
    assert replica_summary(TopicInfo("t", partitions=(PartitionInfo(0, 0, 1),))) is None  # no replication


def test_permissions_unknown_are_never_refused() -> None:
    """A broker that does not tell (operations None) is offered everything; the broker decides."""
    assert refused_actions(TopicInfo("t")) == []
    assert refused_actions(TopicInfo("t", operations=frozenset({"read", "describe"}))) == [("write", "publish")]
    assert refused_actions(TopicInfo("t", operations=frozenset())) == [("read", "read events"), ("write", "publish")]
