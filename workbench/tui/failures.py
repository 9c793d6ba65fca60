"""What went wrong, said for people, and how screens tell the app the broker may be gone.

Shared by the app and its screens, so no screen imports ``app.py`` (no import cycle).
"""

from __future__ import annotations

from textual.message import Message

from workbench.broker import BrokerError, NotFound, Timeout, Unreachable, Unsupported
from workbench.errors import WorkbenchError

_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (NotFound, "it may have been deleted: press r to reload the topic list"),
    (Unsupported, "this broker or adapter cannot do it"),
    (BrokerError, "check that the broker is up and the profile is right, then press r to retry"),
)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(what happened, what to do) for a notification; never a traceback."""
    if isinstance(exc, WorkbenchError | BrokerError):
        hint = exc.hint or next((h for kind, h in _HINTS if isinstance(exc, kind)), "")
        return str(exc), hint
    return (
        f"unexpected {type(exc).__name__}: {exc}",
        "this is a bug in Event Workbench: please report it with what you did",
    )


def is_loss(exc: BaseException) -> bool:
    """The broker went away (or never answered): worth retrying with backoff. For a bulk request
    (lag over every group, a scan) a Timeout alone is not enough: a cheap call tells slow from lost."""
    return isinstance(exc, Unreachable | Timeout | ConnectionError)


def is_slow_only(exc: BaseException) -> bool:
    """A request timed out: the broker may be busy rather than gone (a cheap call tells)."""
    return isinstance(exc, Timeout) and not isinstance(exc, Unreachable)


class BrokerTrouble(Message):
    """A screen's request failed in a way that may mean the broker is gone; the app decides.

    ``bulk``: what the request was when it was a bulk one (e.g. "the consumer lag refresh"): a
    timeout of such a request is checked with a cheap call before anything is reconnected, and an
    error that is no loss is left to the screen. None: an ordinary request."""

    def __init__(self, error: BaseException, bulk: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.bulk = bulk
