"""The connection's state machine on its own: no app, no broker, a fake clock."""

from __future__ import annotations

import pytest

from workbench.broker import AccessDenied, NotFound, Timeout, Unreachable
from workbench.tui.supervisor import SLOW_SHOWN_S, State, Supervisor, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def connected(clock: Clock, delays: tuple[float, ...] = (1.0, 2.0, 4.0)) -> Supervisor:
    sup = Supervisor(delays, clock)
    sup.connecting()
    sup.connected()
    return sup


def test_it_starts_connecting_and_connects(clock):
    sup = Supervisor(clock=clock)
    assert sup.state == State.CONNECTING == "connecting" and sup.attempt == 0
    sup.connected()
    assert sup.state == "connected" and sup.last_error is None and sup.retry_in() is None


def test_an_error_retrying_cannot_fix_gives_up_at_once(clock):
    sup = Supervisor(clock=clock)
    denied = AccessDenied("no")
    assert sup.connect_failed(denied) is False
    assert sup.state == State.NOT_CONNECTED == "not connected" and sup.last_error is denied and sup.attempt == 0


def test_an_unreachable_broker_is_retried_with_backoff_then_the_last_delay_repeats(clock):
    sup = Supervisor((1.0, 2.0, 4.0), clock)
    error = Unreachable("down")
    assert sup.connect_failed(error) is True
    delays = [sup.backoff(error, attempt) for attempt in range(5)]
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert sup.state == State.RECONNECTING and sup.attempt == 5 and sup.last_error is error
    assert sup.retry_in() == 4.0
    clock.now += 3
    assert sup.retry_in() == 1.0
    clock.now += 10
    assert sup.retry_in() == 0.0  # never negative
    sup.connected()
    assert sup.state == State.CONNECTED and sup.last_error is None and sup.retry_at is None


def test_a_loss_is_taken_once_and_only_while_connected(clock):
    sup = connected(clock)
    error = Unreachable("gone")
    assert sup.failure(error) is Verdict.RECONNECT
    assert sup.lose(error) is True
    assert sup.state == State.RECONNECTING and sup.last_error is error
    assert sup.lose(Unreachable("again")) is False  # whoever noticed first started the reconnect
    assert sup.failure(error) is Verdict.IGNORE
    assert sup.bulk_failure(error) is None


def test_nothing_starts_over_while_the_read_rides_the_outage_out(clock):
    sup = connected(clock)
    assert sup.failure(Unreachable("gone"), riding_out=True) is Verdict.IGNORE
    assert sup.lose(Unreachable("gone"), riding_out=True) is False
    assert sup.probe_due(riding_out=True) is False
    assert sup.state == State.CONNECTED and sup.probe_due()


def test_a_timeout_is_checked_before_anything_is_reconnected(clock):
    sup = connected(clock)
    assert sup.failure(Timeout("slow")) is Verdict.CHECK
    assert sup.bulk_failure(Timeout("slow")) is Verdict.CHECK
    assert sup.bulk_failure(Timeout("slow"), riding_out=True) is Verdict.CHECK  # a bulk timeout always is
    assert sup.bulk_failure(Unreachable("gone")) is Verdict.RECONNECT
    assert sup.bulk_failure(NotFound("no such topic")) is None  # not a loss: the caller reports it


def test_slow_is_said_once_and_shown_for_a_while(clock):
    sup = connected(clock)
    assert sup.slow_shown() is None
    assert sup.still_answers("the consumer lag refresh") is True
    assert sup.still_answers("the consumer lag refresh") is False  # one notification, not one per refresh
    assert sup.slow_shown() == "the consumer lag refresh" and sup.state == State.CONNECTED
    clock.now += SLOW_SHOWN_S + 1
    assert sup.slow_shown() is None
    sup.still_answers("a request")
    sup.connected()  # a new connection forgets it
    assert sup.slow is None


def test_the_status_line_says_each_state(clock):
    from rich.text import Text

    from workbench.tui.widgets.status_line import status_text

    class Stream:  # what the status line reads of the stream view: nothing open
        pump = None
        topic = None
        buffer = None

    sup = Supervisor((5.0,), clock)
    assert status_text(sup, Stream()).plain == "○ connecting…"  # type: ignore[arg-type]
    sup.backoff(Unreachable("refused"), 0)
    shown = status_text(sup, Stream())  # type: ignore[arg-type]
    assert isinstance(shown, Text)
    assert shown.plain == "⟳ reconnecting (attempt 1, next in 5 s; r retries now): refused"
    sup.connected()
    sup.still_answers("the consumer lag refresh")
    assert status_text(sup, Stream()).plain == (  # type: ignore[arg-type]
        "● connected · the broker is slow (the consumer lag refresh timed out; it still answers)"
    )
    sup.connect_failed(AccessDenied("no"))
    assert status_text(sup, Stream()).plain == "✗ not connected (r retries)"  # type: ignore[arg-type]
