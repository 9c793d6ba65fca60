"""A Kafka broker frozen (SIGSTOP) for 70 s, past librdkafka's 60 s socket timeout, while a lag
refresh over 10,000 consumer groups is in flight; then thawed (SIGCONT).

What must hold: `lag --watch -o jsonl` and the TUI's lag view (in tmux, a real terminal) stay
alive (no native abort, no asyncio tracebacks), say the broker is slow or away, and go on
refreshing by themselves once it answers again; the TUI still answers keys. Thousands of coordinator requests timing out at once is what made librdkafka abort
the process (its issue 4605); the adapter never has more than a batch of them in flight.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.brokers import shared_groups
from tests.integration.faults_support import (
    KAFKA_URL,
    REPO,
    Workbench,
    eventually,
    require_kafka,
)

pytestmark = pytest.mark.kafka

FREEZE_S = 70  # librdkafka's socket.timeout.ms is 60 s
GROUPS = 10_000


def kafka_pid() -> int:
    # the single broker's server.properties is in its state directory's kafka/ (the 3-node cluster's
    # nodes, which other tests start, are in kafka-cluster/node-N/)
    found = subprocess.run(
        ["pgrep", "-f", "kafka[.]Kafka .*/kafka/server[.]properties"], capture_output=True, text=True
    )
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, f"expected one Kafka broker process, found {pids}"
    return pids[0]


@pytest.fixture(scope="module")
def big_cluster():
    """At least 10,000 consumer groups (the suite's shared ones, or seeded here and removed after)."""
    require_kafka()
    created = shared_groups.seed(GROUPS)
    yield
    if created == GROUPS:  # none were there before (a plain pytest run): leave none behind
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
    """How many complete refreshes `lag --watch -o jsonl` reported (stdout has verdict changes only;
    stderr says ``refresh N: ...`` after each)."""
    return sum(1 for line in watch.err if line.startswith("refresh "))


class TuiPane:
    """The TUI in a tmux pane (a real terminal), on the lag view."""

    def __init__(self, tmp_path) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is needed for this test (tests/run.sh installs it: apt-get install tmux)")
        self.socket = str(tmp_path / "tmux.sock")
        self.tmux("new-session", "-d", "-s", "tui", "-x", "180", "-y", "50", "bash --norc --noprofile")
        self.tmux("send-keys", "-t", "tui", f"cd {REPO} && {sys.executable} -m workbench --broker {KAFKA_URL}", "Enter")

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def alive(self) -> bool:
        shell = self.tmux("display", "-p", "-t", "tui", "#{pane_pid}").strip()
        return bool(subprocess.run(["pgrep", "-f", "-P", shell, "workbench"], capture_output=True).stdout)

    def wait_for(self, text: str, what: str, timeout: float) -> None:
        try:
            eventually(lambda: text in self.screen(), what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{self.screen()}") from None

    def open_lag_view(self) -> None:
        """`l`, as a user would, once (a key pressed while the app still connects is not lost)."""
        self.tmux("send-keys", "-t", "tui", "l")
        self.wait_for("Consumer lag", "the lag view", 30)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.mark.timeout(600)
def test_lag_watch_and_the_tui_survive_a_frozen_broker_during_a_10k_group_refresh(big_cluster, frozen_kafka, tmp_path):
    freeze, thaw = frozen_kafka
    watch = Workbench("--broker", KAFKA_URL, "lag", "--watch", "--interval", "2", "-o", "jsonl")
    tui = TuiPane(tmp_path)
    try:
        tui.wait_for(shared_groups.TOPIC, "the TUI's topic list", 60)
        tui.open_lag_view()
        tui.wait_for("ew-shared-group-", "the lag view's rows", 120)
        watch.wait_lines(GROUPS, timeout=120)  # the first refresh is complete
        time.sleep(3)  # the second refresh started 2 s after the first: it is in flight now
        freeze()
        time.sleep(FREEZE_S)
        assert watch.proc.poll() is None, watch._report("died while the broker was frozen")
        assert tui.alive(), f"the TUI died while the broker was frozen:\n{tui.screen()}"
        thaw()
        said = watch.wait_stderr("slow", timeout=30)  # "... broker slow ... retrying"
        before = refreshes(watch)
        eventually(
            lambda: refreshes(watch) >= before + 2 or watch.proc.poll() is not None,
            "two more complete refreshes after the broker came back",
            timeout=180,
        )
        assert watch.proc.poll() is None, watch._report("ended after the broker came back")
        assert any("resumed" in line for line in watch.err[said:]), watch._report("never said it resumed")

        def tui_recovered() -> bool:
            shown = tui.screen()
            return "ew-shared-group-" in shown and not re.search(r"failed|reconnecting|slow", shown)

        eventually(tui_recovered, "the TUI's lag view refreshed again", timeout=120)
        assert tui.alive()
        tui.tmux("send-keys", "-t", "tui", "?")
        eventually(lambda: "Keys" in tui.screen() or "keys" in tui.screen(), "the help screen after '?'", 10)
        code = watch.interrupt()
    finally:
        thaw()
        watch.close()
        tui.close()
    stderr = watch.stderr_text()
    assert code in (0, 130), watch._report("Ctrl-C did not end it cleanly")
    for noise in ("Traceback", "never retrieved", "unhandled exception", "Assertion"):
        assert noise not in stderr, watch._report(f"{noise!r} on stderr")
