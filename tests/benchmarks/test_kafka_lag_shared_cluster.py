"""`workbench lag -o json` with 10,000 consumer groups x 24 partitions (issue 17, "Scale").

The groups are the suite's shared ones (``tests/brokers/shared_groups.py``; seeded here when absent,
and then removed again). The baseline, in the same run, is the broker's floor: a child process
that only lists the groups and fetches every group's committed offsets with confluent-kafka
(64 requests in flight, as many as the workbench's worker), writing nothing. Kafka answers one
offset request per group (librdkafka asks for one group at a time), so that floor is the broker's
own time; the ratio says what the workbench adds on top of it (describing groups that have
members, end offsets, the JSON).

Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``).
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.benchmarks.conftest import best_of, report
from tests.brokers import endpoints, shared_groups

GROUPS = 10_000
#: The workbench's whole command (start-up, worker, 48 MB of JSON) against the broker's floor
#: (measured 2.75: 3.47 s against 1.26 s).
MAX_RATIO = 4.0

BASELINE = f"""
from concurrent.futures import wait
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
admin = AdminClient({{"bootstrap.servers": "{endpoints.KAFKA_BOOTSTRAP}"}})
groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=30).result().valid]
for start in range(0, len(groups), 64):
    batch = groups[start : start + 64]
    wait([admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=30)[g] for g in batch])
print(len(groups))
"""


@pytest.fixture(scope="module")
def shared():
    endpoints.require_kafka()
    seeded = shared_groups.seed(GROUPS)
    try:
        yield
    finally:
        if seeded:
            shared_groups.remove()


def test_lag_json_of_10k_groups_against_the_brokers_floor(shared):
    floor = best_of(2, [sys.executable, "-c", BASELINE])
    assert int(floor.stdout) >= GROUPS
    argv = [sys.executable, "-m", "workbench", "--broker", f"kafka://{endpoints.KAFKA_BOOTSTRAP}", "lag", "-o", "json"]
    run = best_of(2, argv)
    found = json.loads(run.stdout)
    mine = [g for g in found if g["group"].startswith(shared_groups.PREFIX)]
    assert len(mine) >= GROUPS and all(len(g["partitions"]) == 24 for g in mine)
    ratio = run.seconds / floor.seconds
    report(
        "kafka-lag-10k-groups",
        lag_json_s=run.seconds,
        lag_json_peak_rss_mb=run.peak_rss_mb,
        broker_floor_s=floor.seconds,
        ratio=ratio,
        output_mb=len(run.stdout) / 1e6,
    )
    assert ratio <= MAX_RATIO, f"lag -o json {run.seconds:.2f} s, the broker's floor {floor.seconds:.2f} s"
