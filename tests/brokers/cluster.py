"""The three-node Kafka cluster of ``tests/brokers/kafka-cluster.sh``, for the tests that need one.

    from tests.brokers import cluster

    cluster.up()                          # start it unless all three nodes answer (idempotent)
    with cluster.running() as info: ...   # up for a test module, down after only if it started it here
    with cluster.replicated_topic("ew-x") as name: ...  # 3 partitions, RF 3, deleted on the way out
    info = cluster.info()                 # addresses, users, passwords, CA files (from the state directory)
    conf = info.scram("oncall")           # confluent-kafka settings: SASL_SSL, SCRAM-SHA-512, the cluster's CA
    leader = cluster.leader_of(topic, 0)  # node id of the partition's leader
    cluster.kill_node(leader)             # SIGKILL, for failover tests
    cluster.start_node(leader)            # back, waits until it answers
    with cluster.node_down(leader): ...   # killed, and always started again on the way out
    cluster.down()

The PLAINTEXT listener (``PLAINTEXT_BOOTSTRAP``) is unauthenticated and a super user: the harness's own door
for setup and checks. Everything a user does goes through ``info().sasl_ssl`` with a SASL mechanism.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BROKERS_DIR = Path(__file__).resolve().parent
CLUSTER_SCRIPT = BROKERS_DIR / "kafka-cluster.sh"

HOST = "127.0.0.1"
NODE_IDS = (1, 2, 3)
PLAINTEXT_PORTS = {1: 19092, 2: 19093, 3: 19094}
SASL_SSL_PORTS = {1: 19192, 2: 19193, 3: 19194}
CONTROLLER_PORTS = {1: 19292, 2: 19293, 3: 19294}
MISMATCH_PORT = 19392  # node 1: SASL_SSL with a certificate (same CA) for another host name
PLAINTEXT_BOOTSTRAP = ",".join(f"{HOST}:{PLAINTEXT_PORTS[n]}" for n in NODE_IDS)
SASL_SSL_BOOTSTRAP = ",".join(f"{HOST}:{SASL_SSL_PORTS[n]}" for n in NODE_IDS)

ADMIN = "admin"  # super user
ONCALL = "oncall"  # Describe and Read on topics and groups, DescribeConfigs on topics; nothing else

SCRIPT_TIMEOUT_S = 300.0

# librdkafka's log lines of the helpers' own clients (a killed node refusing connections) go nowhere.
QUIET = logging.getLogger("tests.brokers.cluster.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


@functools.cache
def state_dir() -> Path:
    """The cluster's state directory: ``$EW_BROKERS_STATE_DIR/kafka-cluster`` as env.sh resolves it."""
    done = subprocess.run(
        ["bash", "-c", '. "$0/env.sh" && printf %s "$EW_BROKERS_STATE_DIR"', str(BROKERS_DIR)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return Path(done.stdout) / "kafka-cluster"


def script(*args: str, timeout: float = SCRIPT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run kafka-cluster.sh with ``args``; raise RuntimeError with its output when it fails."""
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"kafka-cluster.sh {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr[-3000:]}"
        )
    return done


def is_up() -> bool:
    """All three nodes answer (``kafka-cluster.sh status`` exits 0)."""
    done = subprocess.run(["bash", str(CLUSTER_SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0


def up() -> None:
    """Start the cluster unless it already answers (first time: certificates, users, storage, ACLs)."""
    script("up")


def down() -> None:
    script("down")


def kill_node(node_id: int) -> None:
    """SIGKILL one node (broker and controller), returning once the process is gone."""
    script("kill-node", str(node_id))


def start_node(node_id: int) -> None:
    """Start a node again and wait until it answers (it has caught up with the metadata and is unfenced)."""
    script("start-node", str(node_id))


def pids() -> dict[int, int]:
    """Node id -> pid of each running node."""
    lines = script("pids").stdout.split()
    return {int(node): int(pid) for node, pid in zip(lines[::2], lines[1::2], strict=True)}


def rss_mib() -> dict[int, int]:
    """Node id -> resident set size in MiB of each running node."""
    sizes: dict[int, int] = {}
    for node, pid in pids().items():
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        if out:
            sizes[node] = int(out) // 1024
    return sizes


@dataclass(frozen=True)
class Info:
    """What a test needs to reach the cluster, as kafka-cluster.sh wrote it into cluster.json."""

    plaintext: str
    sasl_ssl: str
    mismatch: str
    ca: str
    untrusted_ca: str
    users: dict[str, str]

    def password(self, user: str) -> str:
        return self.users[user]

    def sasl(self, mechanism: str, *, ca: str | None = None, bootstrap: str | None = None) -> dict[str, Any]:
        """confluent-kafka settings for the SASL_SSL listener, trusting the cluster's CA (or ``ca``)."""
        return {
            "bootstrap.servers": bootstrap or self.sasl_ssl,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": ca or self.ca,
            "sasl.mechanism": mechanism,
        }

    def scram(self, user: str, password: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """SCRAM-SHA-512 as ``user`` (with its password unless one is given)."""
        return self.sasl("SCRAM-SHA-512", **kwargs) | {
            "sasl.username": user,
            "sasl.password": self.users[user] if password is None else password,
        }

    def oauthbearer(self, principal: str, **kwargs: Any) -> dict[str, Any]:
        """OAUTHBEARER with an unsecured JWT (``alg: none``) naming ``principal``: the broker's unsecured
        validator accepts it, and the ACLs apply to ``User:<principal>``."""
        return self.sasl("OAUTHBEARER", **kwargs) | {
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": f"principal={principal}",
        }


def info() -> Info:
    """The cluster's addresses, users and CA files (the cluster must have been brought up once)."""
    path = state_dir() / "cluster.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"{path} is missing: start the cluster with tests/brokers/kafka-cluster.sh up") from None
    return Info(
        plaintext=data["plaintext"],
        sasl_ssl=data["sasl_ssl"],
        mismatch=data["mismatch"],
        ca=data["ca"],
        untrusted_ca=data["untrusted_ca"],
        users=dict(data["users"]),
    )


@contextlib.contextmanager
def running() -> Iterator[Info]:
    """The cluster up for a test module (``up()`` also brings its ACLs up to date when it runs), and
    stopped on the way out only if no node ran before: one node down is a failover test's, not a
    stopped cluster, so three JVMs are left running only for whoever started them."""
    started_here = not pids()
    up()
    try:
        yield info()
    finally:
        if started_here:
            down()


@contextlib.contextmanager
def replicated_topic(prefix: str, admin_conf: Mapping[str, Any] | None = None) -> Iterator[str]:
    """A new topic ``PREFIX-<8 hex>`` of three partitions, RF 3 and min.insync.replicas 2, deleted on the
    way out; made over the harness's own PLAINTEXT door unless ``admin_conf`` says how to connect."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(dict(admin_conf) | {"logger": QUIET}) if admin_conf else _admin(info().plaintext)
    new = NewTopic(name, num_partitions=3, replication_factor=3, config={"min.insync.replicas": "2"})
    admin.create_topics([new], request_timeout=30)[name].result()
    try:
        yield name
    finally:
        admin.delete_topics([name], request_timeout=30)[name].result()


def _admin(bootstrap: str | None = None) -> Any:
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap or PLAINTEXT_BOOTSTRAP, "logger": QUIET}
    return AdminClient(conf)


def broker_ids(timeout: float = 10.0) -> set[int]:
    """The ids of the brokers in the cluster's metadata (fenced brokers are not listed)."""
    return set(_admin().list_topics(timeout=timeout).brokers)


@dataclass(frozen=True)
class PartitionState:
    leader: int  # -1 when the partition has no leader (offline)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_state(topic: str, partition: int = 0, timeout: float = 10.0) -> PartitionState:
    """Leader, replicas and in-sync replicas of one partition, from a metadata request."""
    metadata = _admin().list_topics(topic, timeout=timeout)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise RuntimeError(f"topic {topic!r} has no metadata: {found.error if found else 'not listed'}")
    state = found.partitions[partition]
    return PartitionState(leader=state.leader, replicas=tuple(state.replicas), isr=tuple(state.isrs))


def leader_of(topic: str, partition: int = 0, timeout: float = 10.0) -> int:
    """The node id leading ``topic``'s ``partition`` (-1 when it has none)."""
    return partition_state(topic, partition, timeout).leader


# ---------------------------------------------------------------------- failover helpers


@contextlib.contextmanager
def node_down(node_id: int) -> Iterator[None]:
    """``node_id`` SIGKILLed for the body, and started again (waiting until it answers) however the body
    ends: the cluster is shared, no test may leave a node down."""
    kill_node(node_id)
    try:
        yield
    finally:
        try:
            start_node(node_id)
        except RuntimeError:
            # kafka-cluster.sh has been seen to call a node that was starting "exited during
            # start-up" while it ran on: start it again (a no-op if it runs), which waits for it.
            start_node(node_id)


def create_topic(name: str, replicas: Sequence[Sequence[int]], config: Mapping[str, str] | None = None) -> None:
    """A topic whose partition ``i`` lives on the nodes ``replicas[i]``, the first one its preferred
    leader (so a test knows which node to kill), over the PLAINTEXT listener."""
    from confluent_kafka.admin import NewTopic

    new = NewTopic(
        name, num_partitions=len(replicas), replica_assignment=[list(r) for r in replicas], config=dict(config or {})
    )
    _settle(
        lambda admin: admin.create_topics([new], request_timeout=15)[name].result(),
        f"creating {name!r}",
        done_if="TOPIC_ALREADY_EXISTS",
    )
    wait_for(lambda: all(partition_state(name, p).leader == r[0] for p, r in enumerate(replicas)), "leaders", 30)


def delete_topic(name: str) -> None:
    _settle(
        lambda admin: admin.delete_topics([name], request_timeout=15)[name].result(),
        f"deleting {name!r}",
        done_if="UNKNOWN_TOPIC_OR_PART",
    )


def _settle(request: Any, what: str, *, done_if: str, attempts: int = 3) -> None:
    """``request(admin)`` with a new admin client each time, again when it times out: librdkafka sends
    CreateTopics and DeleteTopics to the node the last metadata answer named controller (in KRaft, any
    node), and right after a node was killed or restarted that one may not answer yet. The error
    ``done_if`` after a timed-out attempt means that attempt did the work after all."""
    from confluent_kafka import KafkaError, KafkaException

    for attempt in range(1, attempts + 1):
        admin = _admin()  # kept until the answer: a client freed with a request in flight fails it
        try:
            request(admin)
            return
        except KafkaException as exc:
            error = exc.args[0]
            if attempt > 1 and error.code() == getattr(KafkaError, done_if):
                return
            if error.code() != KafkaError._TIMED_OUT or attempt == attempts:
                raise RuntimeError(f"{what}: {error.str()} ({attempt} attempt(s))") from None


def wait_up(within: float = 120.0) -> None:
    """Until all three nodes answer: a failover test may have a node down (it always starts it again)."""
    wait_for(is_up, "all three nodes to answer", within)


def wait_for(check: Any, what: str, timeout: float) -> Any:
    """Poll ``check()`` every 100 ms until it returns something truthy; RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except RuntimeError:  # metadata without the topic yet (just created) or without a leader
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not reach this within {timeout:g} s: {what}")
        time.sleep(0.1)


def wait_in_sync(topic: str, node_id: int, timeout: float = 60.0) -> None:
    """Until ``node_id`` is in the ISR of every partition of ``topic`` (a restarted node has caught up)."""
    partitions = range(len(_admin().list_topics(topic, timeout=10).topics[topic].partitions))
    wait_for(
        lambda: all(node_id in partition_state(topic, p).isr for p in partitions),
        f"node {node_id} in the ISR of every partition of {topic!r}",
        timeout,
    )


def elect_preferred_leaders(topic: str, partitions: Sequence[int]) -> None:
    """A preferred-leader election for ``partitions`` of ``topic`` (Kafka would run one only after
    ``leader.imbalance.check.interval.seconds``, 5 minutes); returns once each is led by its first replica."""
    from confluent_kafka import ElectionType, KafkaError, TopicPartition

    wanted = [TopicPartition(topic, p) for p in partitions]
    admin = _admin()
    results = admin.elect_leaders(ElectionType.PREFERRED, wanted).result(timeout=60)
    for tp, error in results.items():
        # ELECTION_NOT_NEEDED: the preferred replica leads already.
        if error is not None and error.args[0].code() != KafkaError.ELECTION_NOT_NEEDED:
            raise RuntimeError(f"preferred leader election of {tp.topic}[{tp.partition}]: {error}")
    replicas = {p: partition_state(topic, p).replicas[0] for p in partitions}
    wait_for(
        lambda: all(partition_state(topic, p).leader == replicas[p] for p in partitions),
        f"preferred leaders of {topic!r} {list(partitions)}",
        30,
    )
