"""A broker that cannot be reached at start: a clear error naming the address, in bounded time.

Through the CLI (a real subprocess), for Kafka and RabbitMQ: nothing listening, the wrong port
(the other broker's), TLS spoken to a plaintext port, a host name that does not resolve, and a
port that accepts connections but never answers. Each must exit with code 4 (Unreachable), say
where it tried and why, and end within the profile's ``timeout_s`` plus a generous margin for
the interpreter's start (a bound on a failure path, not a performance figure).
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from tests.brokers import endpoints
from tests.integration import rabbitmq_support
from tests.integration.faults_support import require_kafka, run_workbench

TIMEOUT_S = 3  # the profile's timeout_s in every case
MARGIN_S = 12  # interpreter start, imports, librdkafka's own retry step: generous on 2 busy cores
UNREACHABLE = 4


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentListener:
    """A loopback port that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent():
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


def expect_unreachable(args: list[str], *, names: str, says: str) -> str:
    code, out, err, seconds = run_workbench(*args, timeout=120)
    assert code == UNREACHABLE, f"exit {code} for {args}\nstdout: {out}\nstderr: {err}"
    assert out == "", "errors go to stderr, stdout stays empty"
    assert names in err, f"the error does not name {names!r}: {err}"
    assert re.search(says, err, re.IGNORECASE), f"the error does not say {says!r}: {err}"
    assert seconds < TIMEOUT_S + MARGIN_S, f"took {seconds:.1f} s with timeout_s={TIMEOUT_S}: {err}"
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- Kafka


def kafka(address: str, *query: str) -> list[str]:
    return ["-b", f"kafka://{address}?" + "&".join([f"timeout_s={TIMEOUT_S}", *query]), "topics"]


@pytest.mark.kafka
def test_kafka_nothing_listening():
    address = f"127.0.0.1:{free_port()}"
    expect_unreachable(kafka(address), names=address, says=r"refused|did not answer")


@pytest.mark.kafka
def test_kafka_a_refused_connection_fails_fast_while_silence_waits_the_timeout():
    """Nothing listening answers at once (connection refused): no need to wait timeout_s (10 s)."""
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    err = expect_unreachable(["-b", f"kafka://{address}?timeout_s=10", "topics"], names=address, says="refused")
    assert time.monotonic() - started < 5, "a refused connection waited for the timeout"
    assert "connection refused" in err


@pytest.mark.kafka
def test_kafka_wrong_port_speaks_another_protocol():
    rabbitmq_support.require_rabbitmq()
    address = f"127.0.0.1:{endpoints.RABBIT_AMQP_PORT}"
    expect_unreachable(kafka(address), names=address, says=r"did not answer")


@pytest.mark.kafka
def test_kafka_tls_to_a_plaintext_port():
    require_kafka()
    address = endpoints.KAFKA_BOOTSTRAP
    err = expect_unreachable(kafka(address, "security.protocol=SSL"), names=address, says=r"SSL|TLS")
    assert "ssl" in err.lower() and "hint:" in err


@pytest.mark.kafka
def test_kafka_host_name_that_does_not_resolve():
    expect_unreachable(kafka("no-such-host.invalid:9092"), names="no-such-host.invalid", says=r"resolve")


@pytest.mark.kafka
def test_kafka_silent_port_through_a_profile(silent, tmp_path, monkeypatch):
    """The timeout comes from the profile file (``timeout_s``), not only from a URL."""
    (tmp_path / "workbench.toml").write_text(
        f'[profiles.silent]\nadapter = "kafka"\n"bootstrap.servers" = "127.0.0.1:{silent.port}"\n'
        f"timeout_s = {TIMEOUT_S}\n"
    )
    monkeypatch.chdir(tmp_path)
    expect_unreachable(["-p", "silent", "topics"], names=f"127.0.0.1:{silent.port}", says=rf"within {TIMEOUT_S} s")


# --------------------------------------------------------------------------- RabbitMQ


def rabbit(url_base: str) -> list[str]:
    return ["-b", f"{url_base}/?timeout_s={TIMEOUT_S}", "topics"]


@pytest.mark.rabbitmq
def test_rabbitmq_nothing_listening():
    address = f"127.0.0.1:{free_port()}"
    expect_unreachable(rabbit(f"amqp://guest:guest@{address}"), names=address, says=r"refused")


@pytest.mark.rabbitmq
def test_rabbitmq_wrong_port_speaks_another_protocol():
    require_kafka()
    address = endpoints.KAFKA_BOOTSTRAP
    expect_unreachable(rabbit(f"amqp://guest:guest@{address}"), names=address, says=r"AMQP port")


@pytest.mark.rabbitmq
def test_rabbitmq_tls_to_a_plaintext_port():
    rabbitmq_support.require_rabbitmq()
    address = f"127.0.0.1:{endpoints.RABBIT_AMQP_PORT}"
    expect_unreachable(rabbit(f"amqps://guest:guest@{address}"), names=address, says=r"TLS handshake failed")


@pytest.mark.rabbitmq
def test_rabbitmq_host_name_that_does_not_resolve():
    expect_unreachable(
        rabbit("amqp://guest:guest@no-such-host.invalid:5672"), names="no-such-host.invalid", says=r"resolve"
    )


@pytest.mark.rabbitmq
def test_rabbitmq_silent_port_through_a_profile(silent, tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text(
        f'[profiles.silent]\nadapter = "rabbitmq"\nurl = "amqp://guest@127.0.0.1:{silent.port}/"\n'
        f"timeout_s = {TIMEOUT_S}\n"
    )
    monkeypatch.chdir(tmp_path)
    expect_unreachable(["-p", "silent", "topics"], names=f"127.0.0.1:{silent.port}", says=rf"within {TIMEOUT_S} s")
