"""The workbench on a secure, replicated Kafka cluster (tests/brokers/kafka-cluster.sh): SASL over TLS
with SCRAM-SHA-512 and with OAUTHBEARER (unsecured JWT), ACLs, the CA file given in the profile.

- Every verb works over SASL_SSL, through a profile in workbench.toml and through --broker URLs.
- Refused credentials and refused certificates are each a clear error in bounded time, told apart
  (a CA the profile does not trust vs a certificate not valid for the host name), naming the broker
  and what to set, never the password, with no librdkafka log line on the terminal.
- The least-privilege "oncall" user reads without a warning, and what it may not do fails at once
  with "not authorized to <Operation> ...", not a timeout.

The cluster is started by the module (cluster.up() is idempotent) and stopped at the end if this
module started it. Another test module kills nodes for failover tests: a call that finds a node down
waits for the cluster and is tried again.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from tests.brokers import cluster
from tests.integration.faults_support import run_workbench
from workbench.cli import app

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

QUIET = cluster.QUIET
EVENTS = 6  # seeded into the topic, two per partition
ERROR_BOUND_S = 8.0  # a refusal is known within a second or two; the rest is the interpreter's start
DENIED, UNREACHABLE, PUBLISH_FAILED = 6, 4, 7
REPLICA_WARNING = re.compile(r"^warning: \S+: .*(under-replicated|offline)")
SECRET_ENV = {"admin": "EW_SEC_ADMIN_PASSWORD", "oncall": "EW_SEC_ONCALL_PASSWORD"}


def scram(user: str, password: str, ca: str, bootstrap: str) -> str:
    return f"""
broker = "kafka://{bootstrap}"
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{user}"
"sasl.password" = "{password}"
"ssl.ca.location" = "{ca}"
timeout_s = 10
"""


def oauthbearer(principal: str, ca: str, bootstrap: str) -> str:
    return f"""
broker = "kafka://{bootstrap}"
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "OAUTHBEARER"
"enable.sasl.oauthbearer.unsecure.jwt" = true
"sasl.oauthbearer.config" = "principal={principal}"
"ssl.ca.location" = "{ca}"
timeout_s = 10
"""


@pytest.fixture(scope="module")
def info() -> Iterator[cluster.Info]:
    with cluster.running() as running:
        yield running


@pytest.fixture(scope="module")
def env(info: cluster.Info, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every call: WORKBENCH_CONFIG names a profile file (mode 600, passwords from
    the environment), one profile per way of connecting."""
    folder = tmp_path_factory.mktemp("secure-profiles")
    good, mismatch = info.sasl_ssl, info.mismatch
    profiles = {
        "admin": scram("admin", "${EW_SEC_ADMIN_PASSWORD}", info.ca, good),
        "oncall": scram("oncall", "${EW_SEC_ONCALL_PASSWORD}", info.ca, good),
        "oauth-admin": oauthbearer("admin", info.ca, good),
        "oauth-oncall": oauthbearer("oncall", info.ca, good),
        "wrong-password": scram("admin", "${EW_SEC_WRONG_PASSWORD}", info.ca, good),
        "unknown-user": scram("nobody-" + uuid.uuid4().hex[:6], "${EW_SEC_WRONG_PASSWORD}", info.ca, good),
        "untrusted-ca": scram("admin", "${EW_SEC_ADMIN_PASSWORD}", info.untrusted_ca, good),
        "host-mismatch": scram("admin", "${EW_SEC_ADMIN_PASSWORD}", info.ca, mismatch),
    }
    path = folder / "workbench.toml"
    path.write_text("".join(f"[profiles.{name}]{body}\n" for name, body in profiles.items()))
    path.chmod(0o600)
    return {
        "WORKBENCH_CONFIG": str(path),
        SECRET_ENV["admin"]: info.password("admin"),
        SECRET_ENV["oncall"]: info.password("oncall"),
        "EW_SEC_WRONG_PASSWORD": "Hunter2-" + uuid.uuid4().hex[:8],
    }


@pytest.fixture(scope="module")
def topic(info: cluster.Info) -> Iterator[str]:
    """RF 3, three partitions, EVENTS events, made by the harness's own door (PLAINTEXT)."""
    with cluster.replicated_topic("ew-sec") as name:
        producer = Producer({"bootstrap.servers": info.plaintext, "acks": "all", "logger": QUIET})
        for i in range(EVENTS):
            producer.produce(name, b'{"n": %d}' % i, key=b"k%d" % i, partition=i % 3)
        assert producer.flush(30) == 0
        yield name


@pytest.fixture(scope="module")
def group(info: cluster.Info, topic: str) -> Iterator[str]:
    """A consumer group that committed offset 1 on every partition (admin API, no consumer)."""
    group_id = f"ew-sec-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": info.plaintext, "logger": QUIET})
    offsets = [TopicPartition(topic, p, 1) for p in range(3)]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id, offsets)], request_timeout=30)[
        group_id
    ].result()
    yield group_id
    admin.delete_consumer_groups([group_id], request_timeout=30)[group_id].result()


def workbench(env: dict[str, str], *args: str, input: str | None = None):
    """`workbench ARGS` in-process (CliRunner); waits for the cluster and tries again if a node is down."""
    for attempt in range(3):
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        if result.exit_code in (UNREACHABLE, 9) and attempt < 2 and not cluster.is_up():
            cluster.wait_up()
            continue
        return result
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- every verb, both mechanisms


@pytest.mark.parametrize("profile", ["admin", "oauth-admin"], ids=["scram", "oauthbearer"])
def test_every_verb_over_sasl_ssl(env, topic: str, group: str, profile: str) -> None:
    listed = workbench(env, "--profile", profile, "topics")
    assert listed.exit_code == 0, listed.stderr
    assert topic in listed.stdout

    described = workbench(env, "--profile", profile, "describe", topic)
    assert described.exit_code == 0, described.stderr
    for column in ("LEADER", "REPLICAS", "ISR", "STATE"):
        assert column in described.stdout

    tailed = workbench(env, "--profile", profile, "tail", topic, "--from", "beginning", "-o", "jsonl")
    assert tailed.exit_code == 0, tailed.stderr
    assert len(tailed.stdout.splitlines()) >= EVENTS

    tag = uuid.uuid4().hex[:8]
    published = workbench(env, "--profile", profile, "publish", topic, "--value", f'{{"tag": "{tag}"}}')
    assert published.exit_code == 0, published.stderr
    assert "1 confirmed, 0 failed" in published.stdout
    again = workbench(env, "--profile", profile, "tail", topic, "--from", "beginning", "-o", "jsonl")
    assert tag in again.stdout

    lag = workbench(env, "--profile", profile, "lag", "--group", group)
    assert lag.exit_code == 0, lag.stderr
    assert group in lag.stdout and topic in lag.stdout

    groups = workbench(env, "--profile", profile, "groups")
    assert groups.exit_code == 0, groups.stderr
    assert group in groups.stdout


def test_broker_urls_with_scram_and_oauthbearer(info: cluster.Info, env, topic: str) -> None:
    """Without a profile: credentials in the URL (SASL_SSL by default), properties as its query."""
    password = info.password("oncall")
    scram_url = f"kafka://oncall:{password}@{info.sasl_ssl}?sasl.mechanism=SCRAM-SHA-512&ssl.ca.location={info.ca}"
    listed = workbench(env, "--broker", scram_url, "topics")
    assert listed.exit_code == 0, listed.stderr
    assert topic in listed.stdout and password not in listed.stdout + listed.stderr

    oauth_url = (
        f"kafka://{info.sasl_ssl}?security.protocol=SASL_SSL&sasl.mechanism=OAUTHBEARER"
        f"&enable.sasl.oauthbearer.unsecure.jwt=true&sasl.oauthbearer.config=principal%3Doncall"
        f"&ssl.ca.location={info.ca}"
    )
    tailed = workbench(env, "--broker", oauth_url, "tail", topic, "--from", "beginning", "-o", "jsonl")
    assert tailed.exit_code == 0, tailed.stderr
    assert len(tailed.stdout.splitlines()) >= EVENTS


# --------------------------------------------------------------------------- refusals at connect


@pytest.mark.parametrize(
    ("profile", "code", "says", "names"),
    [
        ("wrong-password", DENIED, "wrong password or unknown user", ["user 'admin'", "SCRAM-SHA-512"]),
        ("unknown-user", DENIED, "wrong password or unknown user", ["user 'nobody-"]),
        ("untrusted-ca", UNREACHABLE, "is not signed by a CA this profile trusts", ["ssl.ca.location"]),
        (
            "host-mismatch",
            UNREACHABLE,
            "does not match the host name '127.0.0.1'",
            [f"broker {cluster.HOST}:{cluster.MISMATCH_PORT}", "ssl.endpoint.identification.algorithm"],
        ),
    ],
)
def test_refused_at_connect_is_said_at_once_and_apart(
    info: cluster.Info, env, profile: str, code: int, says: str, names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real process: its whole stderr is the error and its hint (librdkafka logs nothing there)."""
    for key, value in env.items():  # the process's environment: the profile file and its passwords
        monkeypatch.setenv(key, value)
    exit_code, out, err, seconds = run_workbench("--profile", profile, "topics", timeout=60)
    assert exit_code == code, f"exit {exit_code}\n{err}"
    assert out == ""
    assert says in err, err
    for name in names:
        assert name in err, f"{name!r} not in: {err}"
    assert seconds < ERROR_BOUND_S, f"took {seconds:.1f} s: {err}"
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and lines[-1].startswith("hint: "), err
    assert all(line.startswith(("error: ", "hint: ", "  ")) for line in lines), f"stray output: {err}"
    for secret in (env["EW_SEC_WRONG_PASSWORD"], info.password("admin")):
        assert secret not in err
    if "untrusted" in profile:
        assert "host name" not in err.split("hint:")[0] and info.untrusted_ca in err
    if "mismatch" in profile:
        assert "not signed by a CA" not in err


# --------------------------------------------------------------------------- least privilege


@pytest.mark.parametrize("profile", ["oncall", "oauth-oncall"], ids=["scram", "oauthbearer"])
def test_oncall_reads_everything_without_a_warning(env, topic: str, group: str, profile: str) -> None:
    for args in (
        ["topics"],
        ["describe", topic],
        ["tail", topic, "--from", "beginning", "-o", "jsonl"],
        ["groups"],
        ["lag", "--group", group],
    ):
        result = workbench(env, "--profile", profile, *args)
        assert result.exit_code == 0, f"{args}: {result.stderr}"
        noisy = [
            line
            for line in result.stderr.splitlines()
            if ("warning" in line.lower() or "error" in line.lower())
            and not REPLICA_WARNING.search(line)  # a node down for another module's failover test
        ]
        assert not noisy, f"{args} warned: {noisy}"
    assert group in result.stdout and topic in result.stdout


def test_oncall_is_refused_by_name_and_at_once(env, topic: str, group: str) -> None:
    """Publishing, resetting a group's offsets and creating a topic: "not authorized to ...", exit 6,
    well before any timeout (timeout_s is 10)."""
    refused = {
        "Write to topic": ["publish", topic, "--value", "{}"],
        "Create topic": ["topics", "create", f"ew-sec-denied-{uuid.uuid4().hex[:6]}", "--replication-factor", "3"],
        f"Read group '{group}'": ["offsets", "reset", group, "--topic", topic, "--to", "earliest", "--execute"],
    }
    for operation, args in refused.items():
        started = time.monotonic()
        result = workbench(env, "--profile", "oncall", *args)
        seconds = time.monotonic() - started
        assert result.exit_code == DENIED, f"{args}: exit {result.exit_code}\n{result.stdout}{result.stderr}"
        assert f"not authorized to {operation}" in result.stderr, result.stderr
        assert seconds < 5, f"{args} took {seconds:.1f} s"
    # nothing was written: the topic still holds what admin put there (and what the verbs test added)
    tailed = workbench(env, "--profile", "oncall", "tail", topic, "--from", "beginning", "-o", "jsonl")
    assert '"{}"' not in tailed.stdout


def test_a_big_refused_publish_is_said_once(env, topic: str, tmp_path: Path) -> None:
    """Thousands of events refused by the ACLs: one error line, not one per event."""
    lines = "".join(f'{{"value": "{i}"}}\n' for i in range(3000))
    source = tmp_path / "events.jsonl"
    source.write_text(lines)
    result = workbench(env, "--profile", "oncall", "publish", topic, "--file", str(source))
    assert result.exit_code == DENIED, result.stderr
    assert result.stderr.count("not authorized to Write to topic") == 1, result.stderr
