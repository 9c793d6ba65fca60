"""The connection's state machine: connecting, connected, lost and reconnecting with backoff, slow.

Pure logic (no Textual, no I/O): every transition is a method that says what to do next, and the
clock is injected, so it is tested without an app. :mod:`workbench.tui.connection` runs it for the app.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from workbench.tui.failures import is_loss, is_slow_only

#: Seconds between reconnection attempts after the broker is lost (the last one repeats).
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Seconds the status line says "the broker is slow" after a bulk request timed out.
SLOW_SHOWN_S = 60.0


class State(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    NOT_CONNECTED = "not connected"  # an error retrying cannot fix (a bad profile, access denied)


class Verdict(enum.Enum):
    """What to do about a request that failed."""

    IGNORE = "ignore"  # not connected anyway, or the open read rides the outage out
    CHECK = "check"  # a timeout: a cheap call tells a slow broker from a lost one
    RECONNECT = "reconnect"


class Supervisor:
    """Where the connection stands. ``attempt``: the reconnection attempt under way (0: the first
    connection); ``retry_at``: when the next one starts (clock time); ``slow``: (when, what timed
    out) while the broker is slow but still answers."""

    def __init__(self, delays: tuple[float, ...] = RETRY_DELAYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.delays = delays
        self.clock = clock
        self.state = State.CONNECTING
        self.attempt = 0
        self.last_error: BaseException | None = None
        self.retry_at: float | None = None
        self.slow: tuple[float, str] | None = None

    # connecting

    def connecting(self) -> None:
        """The first try of a connection (not after a loss)."""
        self.state = State.CONNECTING

    def connect_failed(self, exc: BaseException) -> bool:
        """A try failed. True: retry after :meth:`backoff`; False: retrying cannot help (given up)."""
        if is_loss(exc):
            return True
        self.state = State.NOT_CONNECTED
        self.last_error = exc
        return False

    def backoff(self, exc: BaseException, attempt: int) -> float:
        """Before try number ``attempt + 1``: the seconds to wait (1, 2, 4 ... then the last delay)."""
        delay = self.delays[min(attempt, len(self.delays) - 1)]
        self.state = State.RECONNECTING
        self.last_error = exc
        self.attempt = attempt + 1
        self.retry_at = self.clock() + delay
        return delay

    def connected(self) -> None:
        self.state = State.CONNECTED
        self.last_error = self.retry_at = None
        self.slow = None

    # while connected

    def failure(self, exc: BaseException, riding_out: bool = False) -> Verdict:
        """A request failed with an error that said the broker went away. ``riding_out``: the open
        read's adapter is retrying by itself (starting over would close it)."""
        if self.state != State.CONNECTED or riding_out:
            return Verdict.IGNORE
        return Verdict.CHECK if is_slow_only(exc) else Verdict.RECONNECT

    def bulk_failure(self, exc: BaseException, riding_out: bool = False) -> Verdict | None:
        """A bulk request (the lag of every group) failed. None: not a loss, the caller reports it.
        A timeout is always checked (a bulk request may just take long on a big cluster)."""
        if not is_loss(exc) or self.state != State.CONNECTED:
            return None
        return Verdict.CHECK if is_slow_only(exc) else self.failure(exc, riding_out)

    def lose(self, exc: BaseException, riding_out: bool = False) -> bool:
        """The broker is gone: True when a reconnection should start now (once, whoever noticed first)."""
        if self.state != State.CONNECTED or riding_out:
            return False
        self.state = State.RECONNECTING
        self.last_error = exc
        return True

    def still_answers(self, what: str) -> bool:
        """``what`` timed out but a cheap call answered: slow, not lost. True the first time (tell once)."""
        first = self.slow is None
        self.slow = (self.clock(), what)
        return first

    def slow_shown(self) -> str | None:
        """What timed out, while the status line says the broker is slow."""
        if self.slow is not None and self.clock() - self.slow[0] < SLOW_SHOWN_S:
            return self.slow[1]
        return None

    def probe_due(self, riding_out: bool = False) -> bool:
        """Time for the periodic cheap call (a loss is noticed even when nothing is being read)."""
        return self.state == State.CONNECTED and not riding_out

    def retry_in(self) -> float | None:
        """Seconds until the next reconnection attempt."""
        return None if self.retry_at is None else max(self.retry_at - self.clock(), 0.0)
