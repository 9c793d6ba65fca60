"""`workbench` with no verb opens the workbench in a terminal (a pty here) and q quits it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    """Read the terminal until ``needle`` appears (or the time is up)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_workbench_alone_opens_the_tui_and_q_quits(target):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "36"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--broker", "local:events.db"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    try:
        screen = read_until(leader, b"orders", timeout=30)
        assert b"Event" in screen and b"orders" in screen, screen[-2000:]
        os.write(leader, b"q")
        read_until(leader, b"\0never", timeout=30)  # drain until the app closes the terminal
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


def test_a_mistake_in_the_keys_table_stops_the_start_naming_the_file_and_field(target, isolated_home):
    (isolated_home / "workbench.toml").write_text('[profiles.demo]\nbroker = "local:events.db"\n\n[keys]\nlag = "p"\n')
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(follower)
    try:
        shown = read_until(leader, b"\0never", timeout=30).decode(errors="replace")
        assert proc.wait(timeout=30) == 3  # ExitCode.CONFIG
        flat = " ".join(shown.split())
        assert "workbench.toml: [keys] field 'lag': key 'p' is bound twice (lag and publish)" in flat, shown
        assert "Traceback" not in shown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
