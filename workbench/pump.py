"""The pump: events from an adapter into a bounded ring buffer, with coalesced notifications.

Pure asyncio, no Textual: the TUI's stream view reads the buffer; a CLI could too.

- :class:`RingBuffer` keeps the newest ``capacity`` events. Every event ever appended has a
  sequence number (``received`` counts them), so a reader can tell how many arrived since it last
  looked even when older ones were dropped meanwhile. Drops are counted, never silent.
- :class:`Pump` runs :func:`workbench.service.tail` in an asyncio task and appends its batches.
  It asks the adapter for the next batch only after the previous one is appended (the adapter
  fetches on demand: backpressure), and stops asking while paused. Its ``notify`` callback is
  called at most once per ``interval`` however many batches arrive (plus once when it ends), and
  at most once per ``flood_interval`` while each notification carries ``flood`` events or more.
  When the adapter loses the broker during the read and keeps retrying (``on_outage`` of
  :meth:`Connection.read`), the pump says so (``outage``) and simply goes on once it reads again:
  no gap, no duplicate, no new read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from workbench import service
from workbench.broker import BrokerError, Connection, Event, Position
from workbench.scan import ScanReport

Clock = Callable[[], float]

DEFAULT_CAPACITY = 10_000
#: Seconds between two notifications, at most: each one repaints the stream view, so while events
#: stream in the screen is painted about ten times a second and key presses get the rest of the time.
DEFAULT_INTERVAL = 0.1
#: While events pour in (at least :data:`FLOOD` between two notifications), the next one waits
#: :data:`FLOOD_INTERVAL` instead: each repaint then replaces every row on screen anyway (nobody
#: reads 1,000 events in 100 ms), and a key press, which waits for the repaint in progress and
#: then for its own, finds the event loop free twice as often.
FLOOD = 1000
FLOOD_INTERVAL = 0.2
#: Events asked of the adapter at once. The pump takes in about one batch per turn of the event
#: loop, and a turn that paints the screen can last 100 ms on a loaded 2-core machine: batches
#: of 5,000 keep that at 50,000 events/s, and a read that has caught up gets smaller ones anyway.
DEFAULT_BATCH = 5000
RATE_WINDOW = 2.0  # seconds over which events/s is measured


class RingBuffer:
    """The newest ``capacity`` events, addressed by index (0 = oldest kept) or sequence number.

    ``received`` is the number of events ever appended; the newest event has sequence number
    ``received - 1`` and the oldest kept one ``first_seq``. ``version`` grows with every change
    (append or clear). ``rate()`` is events/s over the last ``rate_window`` seconds of ``clock``.
    """

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, *, clock: Clock = time.monotonic, rate_window: float = RATE_WINDOW
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if rate_window <= 0:
            raise ValueError("rate_window must be positive")
        self.capacity = capacity
        self.clock = clock
        self.rate_window = rate_window
        self._slots: list[Event | None] = [None] * capacity
        self._head = 0  # slot of the oldest kept event
        self._len = 0
        self.received = 0
        self.dropped = 0
        self.version = 0
        self._arrivals: deque[tuple[float, int]] = deque()  # (clock, count) per append
        self._in_window = 0

    # ------------------------------------------------------------------ writing

    def extend(self, events: Sequence[Event]) -> None:
        """Append events (oldest first); when full, the oldest kept ones are dropped and counted."""
        n = len(events)
        if not n:
            return
        self._count_arrival(n)
        cap = self.capacity
        self.received += n
        self.version += 1
        if n >= cap:  # only the newest `cap` of this batch survive; everything kept before goes
            self.dropped += self._len + n - cap
            self._slots = list(events[n - cap :])
            self._head, self._len = 0, cap
            return
        overflow = self._len + n - cap
        if overflow > 0:
            self.dropped += overflow
            self._head = (self._head + overflow) % cap
            self._len -= overflow
        tail = (self._head + self._len) % cap
        first = min(n, cap - tail)
        self._slots[tail : tail + first] = events[:first]
        if first < n:
            self._slots[: n - first] = events[first:]
        self._len += n

    def clear(self) -> None:
        """Forget the kept events and the counters (a new read starts)."""
        self._slots = [None] * self.capacity
        self._head = self._len = 0
        self.received = self.dropped = 0
        self._arrivals.clear()
        self._in_window = 0
        self.version += 1

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> Event:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("ring buffer index out of range")
        event = self._slots[(self._head + index) % self.capacity]
        assert event is not None
        return event

    def __iter__(self) -> Iterator[Event]:
        for i in range(self._len):
            yield self[i]

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest kept event (== ``received`` when empty)."""
        return self.received - self._len

    def by_seq(self, seq: int) -> Event | None:
        """The event with this sequence number, or None when dropped or not yet received."""
        index = seq - self.first_seq
        return self[index] if 0 <= index < self._len else None

    def rate(self) -> float:
        """Events per second appended during the last ``rate_window`` seconds."""
        self._expire(self.clock())
        return self._in_window / self.rate_window

    # ------------------------------------------------------------------ rate

    def _count_arrival(self, n: int) -> None:
        now = self.clock()
        self._expire(now)
        self._arrivals.append((now, n))
        self._in_window += n

    def _expire(self, now: float) -> None:
        horizon = now - self.rate_window
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= horizon:
            self._in_window -= arrivals.popleft()[1]


PumpState = Literal["idle", "running", "paused", "done", "failed", "stopped"]


class Pump:
    """Reads ``topic`` from ``start`` through :func:`service.tail` into ``buffer``.

    ``notify()`` is called (in the event loop) when there is something new to show: at most once
    per ``interval`` seconds of ``clock`` while batches arrive (``flood_interval`` after a
    notification that carried ``flood`` events or more), and once more when the read ends
    (done, failed or stopped). ``error`` holds what ended a failed read. ``outage`` is the error of
    a broker outage the adapter is riding out (None once it reads again; ``outages`` counts them);
    both changes are notified at once.
    """

    def __init__(
        self,
        buffer: RingBuffer,
        conn: Connection,
        topic: str,
        start: Position,
        *,
        follow: bool = True,
        match: Callable[[Event], bool] | None = None,
        partitions: Sequence[int] | None = None,
        notify: Callable[[], object] = lambda: None,
        interval: float = DEFAULT_INTERVAL,
        flood: int = FLOOD,
        flood_interval: float = FLOOD_INTERVAL,
        clock: Clock = time.monotonic,
        batch_size: int | None = DEFAULT_BATCH,
        until: Position | None = None,
        report: ScanReport | None = None,
    ) -> None:
        self.buffer = buffer
        self.conn = conn
        self.topic = topic
        self.position = start
        self.follow = follow
        self.match = match
        self.partitions = partitions
        self.until = until  # the window's end (a bounded read): see workbench.scan
        self.report = report  # kept up to date by service.tail: what was read of each partition
        self._notify = notify
        self.interval = interval
        self.flood = flood
        self.flood_interval = max(flood_interval, interval)
        self.clock = clock
        self.batch_size = batch_size  # None: the adapter's default
        self.state: PumpState = "idle"
        self.error: BaseException | None = None
        self.scanned = 0  # events read from the adapter, before the filter
        self.held = 0  # events read but not appended yet because the pump is paused
        self.notifications = 0
        self.outage: BrokerError | None = None
        self.outages = 0
        self.broker_dropped = 0  # dropped before they reached us (a capped RabbitMQ tap): at least this many
        self._task: asyncio.Task[None] | None = None
        self._gate = asyncio.Event()
        self._gate.set()
        self._last_notify: float | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._unnotified = 0  # events appended since the last notification
        self._gap = interval  # the time the next notification waits for: interval, or flood_interval

    # ------------------------------------------------------------------ control

    def start(self) -> Pump:
        if self._task is not None:
            raise RuntimeError("a pump starts once")
        self.state = "running" if self._gate.is_set() else "paused"
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pump {self.topic}")
        return self

    @property
    def paused(self) -> bool:
        return not self._gate.is_set()

    @property
    def active(self) -> bool:
        """Still reading (running or paused)."""
        return self.state in ("running", "paused")

    def pause(self) -> None:
        """Stop appending and stop asking the adapter for more (a batch in flight is held)."""
        self._gate.clear()
        if self.state == "running":
            self.state = "paused"
        self._notify_now()

    def resume(self) -> None:
        self._gate.set()
        if self.state == "paused":
            self.state = "running"
        self._notify_now()

    def toggle(self) -> bool:
        """Pause or resume; returns whether it is paused now."""
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    async def stop(self) -> None:
        """Cancel the read (the adapter's reader is closed) and wait until it has ended."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif task is None:
            self.state = "stopped"

    async def wait(self) -> None:
        """Until the read ends (a bounded read finishes, or it fails or is stopped)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # ------------------------------------------------------------------ the loop

    def _count_scanned(self, n: int) -> None:
        self.scanned += n

    def _on_broker_dropped(self, total: int) -> None:
        self.broker_dropped = max(self.broker_dropped, total)

    def _on_outage(self, error: BrokerError | None) -> None:
        """The adapter lost the broker and keeps retrying (``error``), or reads again (None)."""
        if error is not None and self.outage is None:
            self.outages += 1
        self.outage = error
        self._cancel_pending()
        self._notify_now()

    async def _run(self) -> None:
        try:
            batches = service.tail(
                self.conn,
                self.topic,
                self.position,
                partitions=self.partitions,
                follow=self.follow,
                match=self.match,
                on_scanned=self._count_scanned,
                on_outage=self._on_outage,
                batch_size=self.batch_size,
                on_dropped=self._on_broker_dropped,
                until=self.until,
                report=self.report,
            )
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    if not self._gate.is_set():
                        self.held = len(batch)
                        await self._gate.wait()
                        self.held = 0
                    self.buffer.extend(batch)
                    self._batch_appended(len(batch))
                    await asyncio.sleep(0)  # let the UI run even if the adapter never waits
            self.state = "done"
        except asyncio.CancelledError:
            self.state = "stopped"
            raise
        except Exception as exc:  # shown by the caller; the read is over
            self.error = exc
            self.state = "failed"
        finally:
            self.held = 0
            self.outage = None  # the read is over: it is not waiting for the broker any more
            self._cancel_pending()
            self._notify_now()

    def _batch_appended(self, count: int) -> None:
        self._unnotified += count
        now = self.clock()
        if self._last_notify is None or now - self._last_notify >= self._gap:
            self._cancel_pending()
            self._notify_now()
        elif self._pending is None:
            delay = self._gap - (now - self._last_notify)
            self._pending = asyncio.get_running_loop().call_later(delay, self._flush_pending)

    def _flush_pending(self) -> None:
        self._pending = None
        self._notify_now()

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _notify_now(self) -> None:
        self._gap = self.flood_interval if self._unnotified >= self.flood else self.interval
        self._unnotified = 0
        self._last_notify = self.clock()
        self.notifications += 1
        self._notify()
