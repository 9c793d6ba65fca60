"""A Kafka broker frozen (SIGSTOP) for 70 s, past librdkafka's 60 s socket timeout, while a lag
refresh over 10,000 consumer groups is in flight; then thawed (SIGCONT).

What must hold: `lag --watch -o jsonl` and the TUI's lag view stay alive (no native abort, no
asyncio tracebacks), say the broker is slow or away, and go on refreshing by themselves once it
answers again. Thousands of coordinator requests timing out at once is what made librdkafka abort
the process (its issue 4605); the adapter never has more than a batch of them in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.brokers import shared_groups

from faults_support import KAFKA_URL, Workbench, eventually, require_kafka

pytestmark = pytest.mark.kafka

FREEZE_S = 70  # librdkafka's socket.timeout.ms is 60 s
GROUPS = 10_000


def kafka_pid() -> int:
    found = subprocess.run(["pgrep", "-f", "kafka[.]Kafka .*server[.]properties"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, f"expected one Kafka broker process, found {pids}"
    return pids[0]


@pytest.fixture(scope="module")
def big_cluster():
    """At least 10,000 consumer groups (the suite's shared ones, or seeded here and removed after)."""
    require_kafka()
    created = shared_groups.seed(GROUPS)
    yield
    if created:
        shared_groups.remove()


@pytest.fixture
def frozen_kafka():
    """freeze(): SIGSTOP the broker; it is thawed after FREEZE_S by thaw(), or at teardown whatever happens."""
    pid = kafka_pid()
    state = {"frozen": False}

    def freeze() -> None:
        os.kill(pid, signal.SIGSTOP)
        state["frozen"] = True

    def thaw() -> None:
        if state["frozen"]:
            os.kill(pid, signal.SIGCONT)
            state["frozen"] = False

    try:
        yield freeze, thaw
    finally:
        thaw()


def refreshes(watch: Workbench) -> int:
    """How many complete refreshes `lag --watch -o jsonl` printed (each names every group once)."""
    return len(watch.out) // GROUPS


def test_lag_watch_survives_a_frozen_broker_during_a_10k_group_refresh(big_cluster, frozen_kafka):
    freeze, thaw = frozen_kafka
    watch = Workbench("--broker", KAFKA_URL, "lag", "--watch", "--interval", "2", "-o", "jsonl")
    try:
        watch.wait_lines(GROUPS, timeout=120)  # the first refresh is complete
        time.sleep(3)  # the second refresh started 2 s after the first: it is in flight now
        freeze()
        time.sleep(FREEZE_S)
        assert watch.proc.poll() is None, watch._report("died while the broker was frozen")
        thaw()
        said = watch.wait_stderr("slow", timeout=30)  # "... broker slow ... retrying"
        before = refreshes(watch)
        eventually(lambda: refreshes(watch) >= before + 2 or watch.proc.poll() is not None,
                   "two more complete refreshes after the broker came back", timeout=180)
        assert watch.proc.poll() is None, watch._report("ended after the broker came back")
        assert any("resumed" in line for line in watch.err[said:]), watch._report("never said it resumed")
        code = watch.interrupt()
    finally:
        thaw()
        watch.close()
    stderr = watch.stderr_text()
    assert code in (0, 130), watch._report("Ctrl-C did not end it cleanly")
    for noise in ("Traceback", "never retrieved", "unhandled exception", "Assertion"):
        assert noise not in stderr, watch._report(f"{noise!r} on stderr")
