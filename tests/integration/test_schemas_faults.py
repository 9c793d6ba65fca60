"""Schema-aware events when things go wrong, against real Kafka and a real schema registry.

A registry that is down, slow, or gone mid-tail; a schema id it does not know; a schema deleted; bytes
that do not decode after the magic byte: the event is shown with its schema id and its exact bytes and
a one-line reason naming the registry (never its password), nothing crashes and the tail goes on. A
publish whose input does not fit its schema names the file, line and field and publishes nothing.

The tails run as real ``python -m workbench`` processes (fresh: no schema cached from another test).
"Registry down mid-tail" starts a second registry of its own (tests/brokers/brokers.sh on other ports
and another state directory) and stops it by its pid; the shared registry is never touched.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from typer.testing import CliRunner

from tests.brokers import endpoints
from tests.integration.test_schemas_interop import Names, remove, require_brokers
from workbench.cli import app
from workbench.events.schemas import wire

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_url(registry: str) -> str:
    return f"kafka://{BOOTSTRAP}?schema_registry={registry}"


def workbench(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m workbench ARGS`` in a process of its own; its wall time in ``.elapsed``."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    done.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return done


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr


@pytest.fixture
def names() -> Iterator[Names]:
    require_brokers()
    made = Names(f"ew-it-schemafault-{uuid.uuid4().hex[:10]}")
    made.new_topic()
    try:
        yield made
    finally:
        remove(made)


def produce(topic: str, *events: tuple[bytes | None, bytes | None]) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for key, value in events:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def end_offset(topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"{topic}-never-joins"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        consumer.close()


def ping_schema(names: Names, name: str = "Ping") -> dict:
    return {
        "type": "record",
        "name": name,
        "namespace": names.pkg,
        "fields": [{"name": "text", "type": "string"}, {"name": "n", "type": "int"}],
    }


def avro(schema: dict, value: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


def value_bytes(line: dict) -> bytes:
    import base64

    return base64.b64decode(line["value"]) if line.get("value_encoding") == "base64" else line["value"].encode()


# --------------------------------------------------------------------------- registry down


def test_registry_down_each_event_shows_its_id_bytes_and_a_reason(names: Names) -> None:
    port = free_port()  # nothing listens there
    down = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    schema = ping_schema(names)
    events = [
        (
            wire.frame(7001, avro(schema, {"text": "k", "n": 0})),
            wire.frame(7000 + n, avro(schema, {"text": "x", "n": n})),
        )
        for n in range(3)
    ]
    produce(names.topic, *events)

    done = workbench("--broker", broker_url(down), "tail", names.topic, "-o", "json", timeout=60)
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert done.elapsed < 30, f"the tail took {done.elapsed:.1f} s with the registry down"  # type: ignore[attr-defined]
    lines = json_lines(done.stdout)
    assert len(lines) == 3
    for n, line in enumerate(lines):
        assert value_bytes(line) == events[n][1]  # the exact bytes
        reason = line["value_schema"]["error"]
        assert line["value_schema"]["id"] == 7000 + n and "value_decoded" not in line
        assert f"schema registry {down}" in reason and "\n" not in reason
        assert line["key_schema"]["id"] == 7001 and f"schema registry {down}" in line["key_schema"]["error"]

    table = workbench("--broker", broker_url(down), "tail", names.topic, timeout=60)
    assert table.returncode == 0, table.stderr
    no_traceback(table)
    rows = table.stdout.splitlines()
    assert len(rows) == 3
    for n, row in enumerate(rows):
        assert f"schema id {7000 + n}" in row and down in row
        assert ("\\x00\\x00\\x00\\x1b" in row) or ("0x00" in row)  # the bytes, escaped, after the reason


def test_a_slow_registry_is_given_up_on_in_bounded_time(names: Names, tmp_path: Path) -> None:
    """A registry that takes connections and never answers (a socket that accepts and says nothing)."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/apis/ccompat/v7"
    (tmp_path / "workbench.toml").write_text(
        f'[profiles.slow]\nbroker = "kafka://{BOOTSTRAP}"\nschema_registry = "{url}"\nschema_registry_timeout_s = 1\n',
        encoding="utf-8",
    )
    schema = ping_schema(names)
    ids = 6  # events with schema ids of their own: the registry is not waited for once per id
    produce(names.topic, *[(None, wire.frame(8000 + n, avro(schema, {"text": "x", "n": n}))) for n in range(ids)])
    try:
        done = workbench(
            "--profile",
            "slow",
            "tail",
            names.topic,
            "-o",
            "json",
            env={"WORKBENCH_CONFIG": str(tmp_path / "workbench.toml")},
        )
    finally:
        silent.close()
        for s in held:
            s.close()
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    # the first id is asked for (twice: one retry, 1 s each); the others wait for no answer that will not come
    assert done.elapsed < 12, f"the tail took {done.elapsed:.1f} s"  # type: ignore[attr-defined]
    reasons = [line["value_schema"]["error"] for line in json_lines(done.stdout)]
    assert len(reasons) == ids
    for reason in reasons:
        assert f"schema registry {url}" in reason and "no answer within 1 s" in reason and "\n" not in reason


def test_registry_password_is_never_shown(names: Names, tmp_path: Path) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    port = free_port()
    down = f"http://reader:{secret}@127.0.0.1:{port}/apis/ccompat/v7"
    real = endpoints.REGISTRY_URL.replace("http://", f"http://reader:{secret}@")  # the registry ignores auth
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    schema = ping_schema(names)
    schema_id = client.register_schema(f"{names.topic}-value", Schema(json.dumps(schema), "AVRO"))
    produce(names.topic, (None, wire.frame(schema_id, avro(schema, {"text": "a", "n": 1}))))
    bad_input = tmp_path / "bad.jsonl"
    bad_input.write_text('{"text": 5, "n": 1}\n', encoding="utf-8")
    (tmp_path / "workbench.toml").write_text(
        f'[profiles.p]\nbroker = "kafka://{BOOTSTRAP}"\nschema_registry = "http://127.0.0.1:{port}/apis/ccompat/v7"\n'
        'schema_registry_user = "reader"\nschema_registry_password = "${EW_TEST_REGISTRY_PASSWORD}"\n',
        encoding="utf-8",
    )
    profile_env = {"WORKBENCH_CONFIG": str(tmp_path / "workbench.toml"), "EW_TEST_REGISTRY_PASSWORD": secret}
    runs = [
        workbench("--broker", broker_url(down), "tail", names.topic, "-o", "json"),
        workbench("--broker", broker_url(down), "tail", names.topic),
        workbench("--broker", broker_url(down), "tail", names.topic, "-o", "jsonl", "--decoded"),
        workbench("--broker", broker_url(down), "schemas"),
        workbench("--broker", broker_url(down), "publish", names.topic, "--value", "{}", "--value-schema", "x-value"),
        workbench("--broker", broker_url(real), "tail", names.topic, "-o", "json"),
        workbench("--broker", broker_url(real), "schemas", f"{names.topic}-value"),
        workbench("--broker", broker_url(real), "schemas", "no-such-subject-" + names.tag),
        workbench(
            "--broker",
            broker_url(real),
            "publish",
            names.topic,
            "--file",
            str(bad_input),
            "--value-schema",
            f"{names.topic}-value",
        ),
        workbench("--profile", "p", "tail", names.topic, "-o", "json", env=profile_env),
        workbench("--profile", "p", "profiles", "-o", "json", env=profile_env),
        workbench("--profile", "p", "profiles", env=profile_env),
    ]
    for done in runs:
        no_traceback(done)
        assert secret not in done.stdout and secret not in done.stderr, (done.args, done.stdout, done.stderr)
    # and they said what they had to: the registry by a URL without the userinfo
    assert (
        f"schema registry http://127.0.0.1:{port}/apis/ccompat/v7"
        in json_lines(runs[0].stdout)[0]["value_schema"]["error"]
    )
    assert json_lines(runs[5].stdout)[0]["value_decoded"] == {"text": "a", "n": 1}
    assert runs[4].returncode != 0 and f"127.0.0.1:{port}" in runs[4].stderr
    assert runs[8].returncode == 8 and "bad.jsonl:1" in runs[8].stderr


# --------------------------------------------------------------------------- ids and schemas that are not there


def test_unknown_schema_id_is_named_and_the_next_event_still_decodes(names: Names) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    schema = ping_schema(names)
    schema_id = client.register_schema(f"{names.topic}-value", Schema(json.dumps(schema), "AVRO"))
    unknown = 2**31 - 7
    assert httpx.get(f"{endpoints.REGISTRY_URL}/schemas/ids/{unknown}", timeout=30).status_code == 404
    produce(
        names.topic,
        (None, wire.frame(unknown, avro(schema, {"text": "lost", "n": 1}))),
        (None, wire.frame(schema_id, avro(schema, {"text": "found", "n": 2}))),
    )
    done = workbench("--broker", broker_url(endpoints.REGISTRY_URL), "tail", names.topic, "-o", "json")
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    first, second = json_lines(done.stdout)
    assert first["value_schema"]["id"] == unknown and "value_decoded" not in first
    assert first["value_schema"]["error"].startswith(
        f"schema registry {endpoints.REGISTRY_URL}: schema id {unknown} not found"
    )
    assert second["value_decoded"] == {"text": "found", "n": 2}
    assert second["value_schema"] == {
        "format": "avro",
        "id": schema_id,
        "subject": f"{names.topic}-value",
        "version": 1,
    }


def test_a_deleted_schema_is_reported_not_found_by_a_fresh_process(names: Names) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    customer = {
        "type": "record",
        "name": "Customer",
        "namespace": names.pkg,
        "fields": [{"name": "name", "type": "string"}],
    }
    order = {
        "type": "record",
        "name": "Order",
        "namespace": names.pkg,
        "fields": [{"name": "id", "type": "string"}, {"name": "customer", "type": f"{names.pkg}.Customer"}],
    }
    client.register_schema(f"{names.tag}.customer", Schema(json.dumps(customer), "AVRO"))
    ref = SchemaReference(f"{names.pkg}.Customer", f"{names.tag}.customer", 1)
    serializer = AvroSerializer(
        client,
        Schema(json.dumps(order), "AVRO", [ref]),
        conf={"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy},
    )
    ctx = SerializationContext(names.topic, MessageField.VALUE)
    produce(names.topic, (None, serializer({"id": "o-1", "customer": {"name": "Ada"}}, ctx)))
    schema_id = client.get_latest_version(f"{names.topic}-value").schema_id

    before = workbench("--broker", broker_url(endpoints.REGISTRY_URL), "tail", names.topic, "-o", "json")
    assert json_lines(before.stdout)[0]["value_decoded"] == {"id": "o-1", "customer": {"name": "Ada"}}

    endpoints.delete_subject(f"{names.topic}-value")  # soft, then permanently; then its reference
    endpoints.delete_subject(f"{names.tag}.customer")
    # the premise, as this registry answers it: the id is gone
    assert httpx.get(f"{endpoints.REGISTRY_URL}/schemas/ids/{schema_id}", timeout=30).status_code == 404

    after = workbench("--broker", broker_url(endpoints.REGISTRY_URL), "tail", names.topic, "-o", "json")
    assert after.returncode == 0, after.stderr
    no_traceback(after)
    (line,) = json_lines(after.stdout)
    assert "value_decoded" not in line and line["value_schema"]["id"] == schema_id
    assert line["value_schema"]["error"].startswith(
        f"schema registry {endpoints.REGISTRY_URL}: schema id {schema_id} not found"
    )


def test_corrupt_payloads_after_the_magic_byte_are_reported_and_the_tail_goes_on(names: Names, tmp_path: Path) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    schema = ping_schema(names)
    avro_id = client.register_schema(f"{names.topic}-value", Schema(json.dumps(schema), "AVRO"))
    proto = f'syntax = "proto3";\npackage {names.pkg};\nmessage A {{ string a = 1; }}\nmessage B {{ int32 b = 1; }}\n'
    proto_id = client.register_schema(f"{names.tag}.proto-value", Schema(proto, "PROTOBUF"))
    good = avro(schema, {"text": "ok", "n": 1})
    events = [
        wire.frame(avro_id, good),
        wire.frame(avro_id, b"\x40abc"),  # a string of 32 bytes announced, 3 given
        wire.frame(avro_id, good + b"\x00\x00"),  # bytes left after the value
        wire.frame(proto_id, b"\x04\x02"),  # two message indexes announced, one given
        wire.frame(proto_id, b"\x02\x08", None),  # message index [4]: the schema has two messages
        wire.frame(proto_id, b"\x0a\xff\x01", [0]),  # a string field running past the end
        wire.frame(proto_id, b"\x08\x07", [1]),  # fine: B {b: 7}
        wire.frame(avro_id, avro(schema, {"text": "still", "n": 2})),
    ]
    produce(names.topic, *[(None, e) for e in events])
    done = workbench("--broker", broker_url(endpoints.REGISTRY_URL), "tail", names.topic, "-o", "json")
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    lines = json_lines(done.stdout)
    assert [value_bytes(line) for line in lines] == events
    assert lines[0]["value_decoded"] == {"text": "ok", "n": 1}
    reasons = {n: lines[n]["value_schema"].get("error") for n in range(len(lines))}
    assert "not valid Avro" in reasons[1]
    assert "2 byte(s) left after the value" in reasons[2]
    assert "message indexes end early" in reasons[3]
    assert "message indexes [4] name no message" in reasons[4]
    assert f"not valid Protobuf for {names.pkg}.A" in reasons[5]
    for n in (1, 2, 3, 4, 5):
        assert "value_decoded" not in lines[n] and "\n" not in reasons[n]
        assert lines[n]["value_schema"]["id"] in (avro_id, proto_id)
    assert lines[6]["value_decoded"] == {"b": 7} and lines[6]["value_schema"]["message"] == f"{names.pkg}.B"
    assert lines[7]["value_decoded"] == {"text": "still", "n": 2}


# --------------------------------------------------------------------------- publish: a line that does not fit


FITS = {
    "avro": (
        lambda ns: Schema(
            json.dumps(
                {
                    "type": "record",
                    "name": "Order",
                    "namespace": ns,
                    "fields": [
                        {"name": "id", "type": "string"},
                        {"name": "customer", "type": f"{ns}.Customer"},
                    ],
                }
            ),
            "AVRO",
        ),
        lambda ns: Schema(
            json.dumps(
                {"type": "record", "name": "Customer", "namespace": ns, "fields": [{"name": "name", "type": "string"}]}
            ),
            "AVRO",
        ),
        lambda ns: f"{ns}.Customer",
    ),
    "protobuf": (
        lambda ns: Schema(
            f'syntax = "proto3";\npackage {ns};\nimport "{ns}/customer.proto";\n'
            f"message Order {{ string id = 1; {ns}.common.Customer customer = 2; }}\n",
            "PROTOBUF",
        ),
        lambda ns: Schema(
            f'syntax = "proto3";\npackage {ns}.common;\nmessage Customer {{ string name = 1; }}\n', "PROTOBUF"
        ),
        lambda ns: f"{ns}/customer.proto",
    ),
    "json": (
        lambda ns: Schema(
            json.dumps(
                {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "customer": {"$ref": "customer.json"}},
                    "required": ["id", "customer"],
                }
            ),
            "JSON",
        ),
        lambda ns: Schema(
            json.dumps({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}), "JSON"
        ),
        lambda ns: "customer.json",
    ),
}


@pytest.mark.parametrize("fmt", list(FITS))
def test_publish_a_line_that_does_not_fit_names_file_line_and_field_and_publishes_nothing(
    fmt: str, names: Names, tmp_path: Path
) -> None:
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    order, customer, ref_name = FITS[fmt]
    ref_subject = f"{names.tag}.customer"
    client.register_schema(ref_subject, customer(names.pkg))
    main = order(names.pkg)
    client.register_schema(
        f"{names.topic}-value",
        Schema(main.schema_str, main.schema_type, [SchemaReference(ref_name(names.pkg), ref_subject, 1)]),
    )
    produce(names.topic, (None, b"already there"), (None, b"and this"))
    before = end_offset(names.topic)
    source = tmp_path / "orders.jsonl"
    lines = [{"id": "o-1", "customer": {"name": "Ada"}}, {"id": "o-2", "customer": {"name": "Grace"}}]
    lines.append({"id": "o-3", "customer": {"name": 42}})
    lines.append({"id": "o-4", "customer": {"name": "Edsger"}})
    source.write_text("".join(json.dumps(v) + "\n" for v in lines), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["--broker", broker_url(endpoints.REGISTRY_URL), "publish", names.topic, "--file", str(source)]
        + ["--value-schema", f"{names.topic}-value:latest"],
        catch_exceptions=False,
    )
    assert result.exit_code == 8, result.output
    assert f"{source}:3: field 'value.customer.name'" in result.stderr, result.stderr
    assert "nothing was published" in result.stderr
    assert end_offset(names.topic) == before


# --------------------------------------------------------------------------- registry down mid-tail


@dataclass
class SecondRegistry:
    url: str
    pid: int
    log: Path


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[SecondRegistry]:
    """A registry of this test's own (same distribution, other ports, another state directory),
    started with tests/brokers/brokers.sh and stopped by its pid."""
    state = tmp_path / "registry-state"
    port, management = free_port(), free_port()
    env = {
        **os.environ,
        "EW_BROKERS_STATE_DIR": str(state),
        "EW_REGISTRY_PORT": str(port),
        "EW_REGISTRY_MANAGEMENT_PORT": str(management),
    }
    started = subprocess.run(
        ["bash", str(endpoints.BROKERS_SCRIPT), "up", "registry"], capture_output=True, text=True, timeout=180, env=env
    )
    pid_file = state / "registry" / "registry.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    try:
        assert started.returncode == 0, started.stderr
        assert pid is not None
        yield SecondRegistry(f"http://127.0.0.1:{port}/apis/ccompat/v7", pid, state / "registry" / "registry.log")
    finally:
        if pid is not None:
            stop_pid(pid)


def stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


class Lines:
    """The stdout lines of a running process, read by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.all: list[dict[str, Any]] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: [self.queue.put(line) for line in stream], daemon=True).start()

    def wait(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.all) < count:
            try:
                line = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{len(self.all)} of {count} lines within {timeout} s: {self.all}") from None
            if line.strip():
                self.all.append(json.loads(line))
        return self.all


def test_registry_down_mid_tail_the_tail_goes_on(names: Names, second_registry: SecondRegistry) -> None:
    started = time.monotonic()
    client = SchemaRegistryClient({"url": second_registry.url, "timeout": 20})
    first_schema, later_schema = ping_schema(names, "Early"), ping_schema(names, "Late")
    first_id = client.register_schema(f"{names.topic}-value", Schema(json.dumps(first_schema), "AVRO"))
    later_id = client.register_schema(f"{names.topic}-late-value", Schema(json.dumps(later_schema), "AVRO"))
    assert first_id != later_id
    produce(
        names.topic, *[(None, wire.frame(first_id, avro(first_schema, {"text": "before", "n": n}))) for n in range(2)]
    )

    tail = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--broker", broker_url(second_registry.url), "tail", names.topic]
        + ["--from", "beginning", "--follow", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(tail)
        seen = lines.wait(2)
        assert [line["value_decoded"] for line in seen] == [{"text": "before", "n": 0}, {"text": "before", "n": 1}]

        stop_pid(second_registry.pid)  # the registry goes away mid-tail
        assert not endpoints.port_open("127.0.0.1", int(second_registry.url.split(":")[2].split("/")[0]), timeout=1)
        produce(
            names.topic,
            (None, wire.frame(later_id, avro(later_schema, {"text": "after", "n": 2}))),  # an id never asked for
            (None, wire.frame(first_id, avro(first_schema, {"text": "after", "n": 3}))),  # an id fetched before
        )
        seen = lines.wait(4)
        assert "value_decoded" not in seen[2] and seen[2]["value_schema"]["id"] == later_id
        reason = seen[2]["value_schema"]["error"]
        assert f"schema registry {second_registry.url}" in reason and "\n" not in reason
        assert seen[3]["value_decoded"] == {"text": "after", "n": 3}  # fetched once per id: still decoded
        assert tail.poll() is None, "the tail stopped"
        produce(names.topic, (None, wire.frame(first_id, avro(first_schema, {"text": "later still", "n": 4}))))
        assert lines.wait(5)[4]["value_decoded"] == {"text": "later still", "n": 4}
        assert tail.poll() is None
    finally:
        tail.send_signal(signal.SIGINT)
        try:
            _, err = tail.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            tail.kill()
            _, err = tail.communicate()
    assert tail.returncode in (0, 130), err
    assert "Traceback" not in err, err
    assert time.monotonic() - started < 60
