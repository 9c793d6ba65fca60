"""Planted secrets never show: not in any verb's stdout or stderr (success and failure), not in
the str or repr of profiles, targets, adapters, connections and errors, not in the logs (librdkafka
with debug=all, aiormq, aio-pika), not on TUI screens, not in the reviewed SVG snapshots.

The secrets are unique per run: a Kafka SASL password (literal and from ${ENV}), the password in a
RabbitMQ URL (of a user made for the test, so that the verbs really succeed with it) and a wrong one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.brokers import endpoints
from workbench import config, plugins, service
from workbench.broker import BrokerError
from workbench.errors import ExitCode

from .conftest import write_profiles

RUN = uuid.uuid4().hex[:10]
SECRETS = {
    "kafka": f"kafka-pw-{RUN}",
    "kafka-url": f"kafka-url-pw-{RUN}",
    "env": f"env-token-{RUN}",
    "rabbit": f"rabbit-pw-{RUN}",
    "wrong": f"wrong-pw-{RUN}",
}
RABBIT_USER = f"sec-{RUN}"
KAFKA = endpoints.KAFKA_BOOTSTRAP
AMQP = f"{endpoints.RABBIT_HOST}:{endpoints.RABBIT_AMQP_PORT}"

PROFILES = f"""
[profiles.kafka]
broker = "kafka://{KAFKA}"
"sasl.username" = "ops"
"sasl.password" = "{SECRETS["kafka"]}"
debug = "security,broker,conf"

[profiles.kafka-env]
adapter = "kafka"
"bootstrap.servers" = "{KAFKA}"
"sasl.password" = "${{SEC_TEST_TOKEN}}"

[profiles.kafka-sasl]
broker = "kafka://ops:{SECRETS["kafka-url"]}@{KAFKA}?security.protocol=SASL_PLAINTEXT&timeout_s=5"

[profiles.kafka-down]
broker = "kafka://127.0.0.1:1?timeout_s=1"
"sasl.password" = "${{SEC_TEST_TOKEN}}"

[profiles.rabbit]
broker = "amqp://{RABBIT_USER}:{SECRETS["rabbit"]}@{AMQP}/"

[profiles.rabbit-wrong]
broker = "amqp://{RABBIT_USER}:{SECRETS["wrong"]}@{AMQP}/?timeout_s=5"
management_password = "{SECRETS["wrong"]}"
"""


def leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


@pytest.fixture
def rabbit_user():
    """A RabbitMQ user whose password is a planted secret (deleted afterwards; made per test, since
    other tests restart the broker)."""
    endpoints.require_rabbitmq()
    api = httpx.Client(base_url=endpoints.RABBIT_MANAGEMENT_URL, auth=("guest", "guest"), timeout=10)
    api.put(
        f"/api/users/{RABBIT_USER}", json={"password": SECRETS["rabbit"], "tags": "administrator"}
    ).raise_for_status()
    api.put(
        f"/api/permissions/%2F/{RABBIT_USER}", json={"configure": ".*", "write": ".*", "read": ".*"}
    ).raise_for_status()
    yield RABBIT_USER
    api.delete(f"/api/users/{RABBIT_USER}")
    api.close()


@pytest.fixture
def secret_cli(cli, rabbit_user):
    write_profiles(cli.home, PROFILES)
    cli.env["SEC_TEST_TOKEN"] = SECRETS["env"]
    return cli


def run_all(cli, profile: str, verbs: list[list[str]]) -> list[tuple[list[str], int]]:
    codes = []
    for verb in verbs:
        done = cli("--profile", profile, *verb, input=b"", timeout=60)
        found = leaks(done.text)
        assert not found, f"workbench --profile {profile} {' '.join(verb)} printed the {found} secret:\n{done.text}"
        codes.append((verb, done.code))
    return codes


def verbs_on(topic: str, group: str | None = None) -> list[list[str]]:
    """Every verb once; ``lag`` on the test's own group where it has one (a shared cluster holds
    thousands: the whole-cluster listing is `groups`)."""
    scope = ["--group", group] if group else []
    return [
        [],
        ["profiles"],
        ["profiles", "-o", "json"],
        ["topics"],
        ["topics", "-o", "json"],
        ["describe", topic],
        ["publish", topic, "--value", "v", "--key", "k"],
        ["tail", topic, "--max", "1"],
        ["tail", topic, "--max", "1", "-o", "jsonl"],
        ["lag", *scope],
        ["lag", *scope, "-o", "json"],
        ["groups"],
        ["tail", f"missing-{RUN}", "--max", "1"],
        ["describe", f"missing-{RUN}"],
    ]


@pytest.fixture
def kafka_group():
    """A consumer group of the test's own (committed offsets, no consumer), deleted afterwards."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA})
    made: list[str] = []

    def make(topic: str) -> str:
        group = f"sec-group-{topic}"
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])]
        admin.alter_consumer_group_offsets(request, request_timeout=30)[group].result()
        made.append(group)
        return group

    yield make
    for group in made:
        admin.delete_consumer_groups([group], request_timeout=30)[group].result()


@pytest.mark.kafka
@pytest.mark.parametrize("profile", ["kafka", "kafka-env"])
def test_no_kafka_verb_prints_the_secret(secret_cli, profile, kafka_group):
    endpoints.require_kafka()
    topic = f"sec-{profile}-{RUN}"
    assert run_all(secret_cli, profile, [["topics", "create", topic]])[0][1] == 0
    try:
        group = kafka_group(topic)
        codes = dict((" ".join(v), c) for v, c in run_all(secret_cli, profile, verbs_on(topic, group)))
        assert codes[f"lag --group {group} -o json"] == 0
        assert codes[f"publish {topic} --value v --key k"] == 0 and codes[f"tail {topic} --max 1 -o jsonl"] == 0
        assert codes[f"tail missing-{RUN} --max 1"] == ExitCode.NOT_FOUND
    finally:
        run_all(secret_cli, profile, [["topics", "delete", topic, "--yes"]])


@pytest.mark.rabbitmq
def test_no_rabbitmq_verb_prints_the_secret(secret_cli):
    topic = f"sec-stream-{RUN}"
    assert run_all(secret_cli, "rabbit", [["topics", "create", topic]])[0][1] == 0
    try:
        codes = dict((" ".join(v), c) for v, c in run_all(secret_cli, "rabbit", verbs_on(topic)))
        assert codes["topics"] == 0 and codes[f"publish {topic} --value v --key k"] == 0
    finally:
        run_all(secret_cli, "rabbit", [["topics", "delete", topic, "--yes"]])


@pytest.mark.kafka
@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    ("profile", "code"),
    [
        ("kafka-sasl", {ExitCode.DENIED, ExitCode.UNREACHABLE}),
        ("kafka-down", {ExitCode.UNREACHABLE}),
        ("rabbit-wrong", {ExitCode.DENIED}),
    ],
)
def test_failures_do_not_print_the_secret(secret_cli, profile, code):
    for verb, got in run_all(secret_cli, profile, [["topics"], ["tail", "x"], ["publish", "x", "--value", "v"]]):
        assert got in code, (profile, verb, got)


# --------------------------------------------------------------------------- in-process


def targets(home: Path) -> dict[str, config.Target]:
    cfg = config.load_config(home / "workbench.toml")
    env = {"SEC_TEST_TOKEN": SECRETS["env"]}
    return {name: config.resolve(profile, env) for name, profile in cfg.profiles.items()}


@pytest.mark.kafka
@pytest.mark.rabbitmq
async def test_reprs_errors_and_logs_never_show_the_secret(secret_cli, caplog):
    endpoints.require_kafka()
    caplog.set_level(logging.DEBUG)  # every logger: adapters.*, librdkafka (debug=...), aiormq, aio_pika, httpx
    shown: list[str] = []
    for name, target in targets(secret_cli.home).items():
        adapter = plugins.load(target.adapter)(target.options)
        shown += [
            str(target),
            repr(target),
            str(target.profile),
            repr(target.profile),
            target.profile.shown_broker(),
            repr(adapter),
            adapter.describe(),
            *target.warnings,
        ]
        try:
            async with service.connect(target) as conn:
                shown += [repr(conn), str(conn)]
                topics = await conn.list_topics()
                shown += [repr(t) for t in topics[:5]]
                try:
                    await conn.describe_topic(f"missing-{RUN}")
                except BrokerError as exc:
                    shown += [str(exc), repr(exc), str(exc.hint), repr(exc.args)]
        except BrokerError as exc:  # the wrong password, TLS to a plaintext port, an unreachable broker
            shown += [str(exc), repr(exc), str(exc.hint), repr(exc.args), repr(exc.__cause__), repr(exc.__context__)]
            assert name in ("kafka-sasl", "kafka-down", "rabbit-wrong"), f"{name}: {exc}"
    await asyncio.sleep(0.2)  # let librdkafka's last log lines arrive
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert len(caplog.records) > 50, "expected the clients' debug logs"
    assert not leaks("\n".join(shown)), [s for s in shown if leaks(s)]
    assert not leaks(logged), [line for line in logged.splitlines() if leaks(line)][:5]


@pytest.mark.rabbitmq
async def test_tui_screens_never_show_the_secret(secret_cli):
    from tests.tui.conftest import make_app, settle
    from workbench.tui.screens.profiles import ProfilePicker

    cfg = config.load_config(secret_cli.home / "workbench.toml")
    found = targets(secret_cli.home)
    for name in ("rabbit", "rabbit-wrong"):
        app = make_app(found[name], settings=cfg)
        async with app.run_test(size=(160, 40)) as pilot:
            if name == "rabbit":
                await settle(pilot, lambda app=app: app.main.topics, "the topic list")
            else:
                await settle(pilot, lambda app=app: app._notifications, "the connection error")
                assert "authentication failed" in " ".join(n.message for n in app._notifications)
            screens = [app.export_screenshot()]
            await pilot.press("P")
            await settle(pilot, lambda app=app: isinstance(app.screen, ProfilePicker), "the profile picker")
            screens.append(app.export_screenshot())
            notes = " ".join(f"{n.title} {n.message}" for n in app._notifications)
            assert not leaks(" ".join(screens) + notes), name
            assert "***" in screens[-1]  # the picker shows the profiles, passwords masked


SNAPSHOTS = Path(__file__).resolve().parent.parent / "tui" / "__snapshots__"
_URL_PASSWORD = re.compile(r"[a-z]+://[^/\s:@<>\"]+:(?!\*\*\*@)[^@\s<>\"]+@")


def test_reviewed_snapshots_hold_no_password():
    svgs = list(SNAPSHOTS.rglob("*.svg"))
    assert svgs, "the TUI snapshots moved?"
    for svg in svgs:
        text = svg.read_text(encoding="utf-8")
        assert not _URL_PASSWORD.search(text), f"{svg.name} shows a password in a URL"
        assert not leaks(text)
        for word in ("guest:guest", "hunter2", "s3cret"):
            assert word not in text, f"{svg.name} shows {word!r}"
