"""Give the terminal back even when the full-screen app dies without cleaning up.

A native abort (librdkafka's assertions call ``abort()``), SIGKILL or any other fatal signal ends
the process before Textual can leave the alternate screen or turn mouse reporting off, and the
user's shell is left unusable. So the TUI runs in a forked child; the parent only waits. When the
child dies by a signal, the parent restores the terminal modes it saved before the fork, undoes
what the app had switched on, and says in one line what happened. Pure standard library: the
parent imports nothing that could crash the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import termios

#: Undo what a Textual app switches on: alternate screen, mouse reporting (all modes), bracketed
#: paste, focus events, the kitty keyboard protocol; then line wrapping and the cursor back on,
#: colours reset, and a fresh line for what follows.
RESTORE_SEQUENCE = (
    "\x1b[?1049l"
    "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l"
    "\x1b[?2004l"
    "\x1b[?1004l"
    "\x1b[<u"
    "\x1b[?7h"
    "\x1b[?25h"
    "\x1b[0m"
    "\r\n"
)


def run_guarded(tty_fd: int | None = None) -> None:
    """Fork; the child returns at once (and goes on to run the app), the parent never returns.

    The parent waits for the child and exits with its status: the child's exit code, or 128 + the
    signal that killed it, after restoring the terminal on ``tty_fd`` (standard input by default).
    """
    fd = sys.stdin.fileno() if tty_fd is None else tty_fd
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return  # not a terminal: nothing to restore, no reason to fork
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        return
    os._exit(_supervise(child, fd, saved))


def _supervise(child: int, fd: int, saved: list) -> int:
    """Wait for ``child``; follow it when it is stopped (Ctrl-Z) and continued; restore if it dies."""
    # Keys reach the app in raw mode; a signal meant for the job (a kill of the process group) is the
    # child's to handle. The parent must outlive it to clean up after it.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: _forward(child, signum))
    while True:
        _, status = os.waitpid(child, os.WUNTRACED)
        if os.WIFSTOPPED(status):  # the app suspended itself: suspend the whole job, then resume it
            os.kill(os.getpid(), signal.SIGSTOP)
            os.kill(child, signal.SIGCONT)
            continue
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        signum = os.WTERMSIG(status)
        restore_terminal(fd, saved)
        _explain(signum)
        return 128 + signum


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass


def restore_terminal(fd: int, saved: list) -> None:
    """The line discipline as it was before the app started, and the screen modes switched off."""
    try:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    except termios.error:
        pass
    try:
        os.write(fd if os.isatty(fd) else sys.stderr.fileno(), RESTORE_SEQUENCE.encode())
    except OSError:
        pass


def _explain(signum: int) -> None:
    name = signal.Signals(signum).name
    cause = (
        "a native library it uses (e.g. librdkafka) aborted" if signum == signal.SIGABRT else f"it was ended by {name}"
    )
    print(
        f"workbench: the terminal UI stopped abruptly ({name}: {cause}); the terminal has been restored. "
        "This is not caused by anything you typed; your data on the broker is untouched.",
        file=sys.stderr,
        flush=True,
    )
