"""A TUI that dies by a signal (a native abort) still gives the user back a working terminal.

Run in tmux as a user would: the app is killed with SIGABRT (what librdkafka's assertions raise)
and SIGKILL, and then tmux itself tells whether the pane left the alternate screen, turned mouse
reporting off and shows the cursor; `stty -a` run by the shell afterwards shows the line
discipline is sane (canonical mode and echo on).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a terminal")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=10).stdout


def wait_for(condition, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pane(tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for this test (tests/run.sh installs it: apt-get install tmux)")
    session = f"ew-guard-{uuid.uuid4().hex[:8]}"
    socket = str(tmp_path / "tmux.sock")

    def run(*args: str) -> str:
        return tmux("-S", socket, *args)

    run("new-session", "-d", "-s", session, "-x", "120", "-y", "30", "bash --norc --noprofile")
    try:
        yield run, session
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=10)


def app_pid(shell_pid: int) -> int | None:
    """The TUI process: the grandchild of the pane's shell (shell -> guard -> app)."""
    for guard in _children(shell_pid):
        for app in _children(guard):
            return app
    return None


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


@pytest.mark.parametrize("signum", [signal.SIGABRT, signal.SIGKILL], ids=["SIGABRT", "SIGKILL"])
def test_a_killed_tui_leaves_a_working_terminal(pane, target, tmp_path, signum):
    run, session = pane
    db = Path.cwd() / "events.db"  # the seeded log of the `target` fixture
    stty = tmp_path / "stty.txt"
    repo = Path(__file__).resolve().parents[2]
    command = f"cd {repo} && {sys.executable} -m workbench --broker local:{db}; echo EXIT=$?; stty -a > {stty}"
    run("send-keys", "-t", session, command, "Enter")

    def flags() -> list[str]:
        return run("display", "-p", "-t", session, "#{alternate_on} #{mouse_any_flag} #{cursor_flag}").split()

    wait_for(lambda: flags()[:2] == ["1", "1"], what="the app to enter the alternate screen with the mouse on")
    shell = int(run("display", "-p", "-t", session, "#{pane_pid}").strip())
    wait_for(lambda: app_pid(shell) is not None, what="the app's process")
    # the crash must come while it owns the screen: wait until it has drawn its title
    wait_for(lambda: "Event Workbench" in run("capture-pane", "-p", "-t", session), what="the app's first frame")
    os.kill(app_pid(shell), signum)

    wait_for(stty.exists, what="the shell to run again after the app died")
    assert flags() == ["0", "0", "1"], "alternate screen off, mouse reporting off, cursor shown"
    settings = stty.read_text()
    assert " icanon" in f" {settings}" and " echo" in f" {settings}", settings
    screen = run("capture-pane", "-p", "-J", "-t", session)
    assert f"EXIT={128 + signum}" in screen
    assert f"stopped abruptly ({signal.Signals(signum).name}" in screen
    assert "not caused by anything you typed" in screen
