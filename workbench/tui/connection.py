"""Runs the :class:`~workbench.tui.supervisor.Supervisor` for the app: connects, reconnects with
backoff, tells slow from lost with a cheap call, checks now and then, closes connections once idle.

The app is reached through :class:`Host` only (notifications, workers, the status line, and what it
does once connected), so this module does not import the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, Protocol

from workbench import service
from workbench.broker import Connection, TopicInfo
from workbench.config import Target
from workbench.events import codecs
from workbench.tui.failures import describe_error, is_loss
from workbench.tui.inflight import InFlight
from workbench.tui.supervisor import State, Supervisor, Verdict


class Host(Protocol):
    target: Target

    def notify(
        self, message: str, *, title: str = ..., severity: Any = ..., timeout: float | None = ..., markup: bool = ...
    ) -> None: ...
    def report(self, exc: BaseException, doing: str, hint: str | None = None) -> None: ...
    def refresh_status(self) -> None: ...
    def run_worker(self, work: Coroutine[Any, Any, Any], *, group: str = ..., exclusive: bool = ...) -> Any: ...
    def read_rides_out_outage(self) -> bool: ...
    def remember_read(self) -> None: ...
    async def stop_reading(self) -> None: ...
    async def connected(self, conn: Connection, again: bool) -> None: ...
    def topics_seen(self, topics: list[TopicInfo]) -> None: ...


class Keeper:
    """The app's one connection (``conn``, None while there is none) and its supervisor."""

    def __init__(self, host: Host, supervisor: Supervisor) -> None:
        self.host = host
        self.sup = supervisor
        self.conn: Connection | None = None
        self.draining: InFlight | None = None  # the old connection a reconnect waits for
        self._stack: AsyncExitStack | None = None
        self._to_close: list[tuple[Connection | None, AsyncExitStack]] = []  # to close once idle

    def start(self) -> None:
        self.host.run_worker(self.connect(), group="connect", exclusive=True)

    async def connect(self, lost: BaseException | None = None) -> None:
        """Connect; while the broker is unreachable, retry with backoff (r retries at once).
        ``lost``: the error that said the broker went away (then the first try waits too).
        The old connection is closed only once nothing is in flight on it."""
        host, sup = self.host, self.sup
        await self.release(wait=True)
        attempt = 0
        if lost is not None:
            await self._pause(lost, 0)
            attempt = 1
        while True:
            if attempt == 0:
                sup.connecting()
                host.refresh_status()
            stack = AsyncExitStack()
            try:
                # each redacted event keeps its original (copy original), unless the profile requires redaction
                conn = InFlight(await stack.enter_async_context(service.connect(host.target, keep_originals=True)))
                break
            except Exception as exc:
                await stack.aclose()
                if not sup.connect_failed(exc):
                    host.report(exc, "connect")
                    host.refresh_status()
                    return
                if attempt == 0:
                    host.report(
                        exc,
                        "connect",
                        "retrying with backoff (the status line says when); check that "
                        "the broker is up and the profile is right; r retries now",
                    )
                await self._pause(exc, attempt)
                attempt += 1
        self.conn, self._stack = conn, stack
        sup.connected()
        await host.connected(conn, again=attempt > 0)

    async def _pause(self, exc: BaseException, attempt: int) -> None:
        delay = self.sup.backoff(exc, attempt)
        self.host.refresh_status()
        await asyncio.sleep(delay)

    def failed(self, exc: BaseException) -> None:
        """Something said the broker is gone: reconnect (once, whoever noticed first); a Timeout is
        checked first with a cheap call: when that answers, the broker is slow, not lost."""
        self._act(self.sup.failure(exc, self.host.read_rides_out_outage()), exc, "a request")

    def bulk_failed(self, exc: BaseException, what: str) -> bool:
        """A bulk request (``what``) failed. True when taken on; False: the caller reports it."""
        verdict = self.sup.bulk_failure(exc, self.host.read_rides_out_outage())
        if verdict is None:
            return False
        self._act(verdict, exc, what)
        return True

    def _act(self, verdict: Verdict, exc: BaseException, what: str) -> None:
        if verdict is Verdict.CHECK and self.conn is not None:
            self.host.run_worker(self._slow_or_lost(self.conn, exc, what), group="liveness", exclusive=True)
        elif verdict is not Verdict.IGNORE:
            self.lose(exc)

    async def _slow_or_lost(self, conn: Connection, exc: BaseException, what: str) -> None:
        """After ``what`` timed out: list the topics (cheap). An answer means slow, not lost."""
        try:
            await conn.list_topics()
        except Exception as again:
            if is_loss(again) and conn is self.conn:
                self.lose(again)
            return
        if conn is not self.conn:
            return
        if self.sup.still_answers(what):
            reason, _ = describe_error(exc)
            self.host.notify(
                codecs.safe_text(
                    f"{what[:1].upper()}{what[1:]} timed out ({reason[:300]}), but the "
                    "broker still answers: nothing was reconnected. The next refresh "
                    "tries again."
                ),
                title="The broker is slow",
                severity="warning",
                timeout=10,
                markup=False,
            )
        self.host.refresh_status()

    def lose(self, exc: BaseException) -> None:
        if self.sup.state != State.CONNECTED or self.host.read_rides_out_outage():
            return
        self.host.remember_read()  # read it again once connected
        self.sup.lose(exc)
        what, _ = describe_error(exc)
        self.host.notify(
            codecs.safe_text(what[:400]) + "\nReconnecting with backoff (see the status line); r retries now.",
            title="Lost the broker",
            severity="error",
            timeout=10,
            markup=False,
        )
        self.host.refresh_status()
        self.host.run_worker(self.connect(lost=exc), group="connect", exclusive=True)

    def check_health(self) -> None:
        """A cheap call now and then, so a lost broker is noticed even when nothing is being read."""
        if self.conn is not None and self.sup.probe_due(self.host.read_rides_out_outage()):
            self.host.run_worker(self._probe(self.conn), group="health", exclusive=True)

    async def _probe(self, conn: Connection) -> None:
        try:
            topics = await conn.list_topics()
        except Exception as exc:
            if is_loss(exc) and conn is self.conn:
                self.lose(exc)  # the cheap call itself failed: lost, not slow
            return
        if conn is self.conn:
            self.host.topics_seen(topics)

    async def release(self, wait: bool = False) -> None:
        """Stop reading and close the connection (idempotent). ``wait``: first let the requests in
        flight on it end (they end by themselves: each has the adapter's timeout), so that no caller
        sees its connection closed under it."""
        with contextlib.suppress(Exception):  # the DOM may already be gone at exit
            await self.host.stop_reading()
        if self._stack is not None:
            self._to_close.append((self.conn, self._stack))
        self._stack, self.conn = None, None
        while self._to_close:  # (a cancelled wait leaves them here for the next release)
            conn, stack = self._to_close[0]
            if wait and isinstance(conn, InFlight) and conn.count:
                self.draining = conn
                self.host.refresh_status()
                try:
                    await conn.idle()
                finally:
                    self.draining = None
            self._to_close.pop(0)
            await stack.aclose()
