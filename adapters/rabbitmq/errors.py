"""aiormq / aio-pika exceptions -> the contract's typed errors (messages never carry a secret)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import aiormq.exceptions as amqp

from workbench.broker import (
    AccessDenied,
    BrokerError,
    InvalidRequest,
    NotFound,
    Timeout,
    Unreachable,
)


def reply_text(exc: BaseException) -> str:
    """The broker's reply text of a channel or connection error (``NOT_FOUND - no queue 'x' ...``)."""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, str) and arg:
            return arg
        text = getattr(arg, "reply_text", None)
        if isinstance(text, str) and text:
            return text
    return type(exc).__name__


def map_error(exc: BaseException, what: str, scrub: Callable[[str], str] = lambda s: s) -> BrokerError:
    """A typed error for ``exc``, its message starting with ``what`` (e.g. "RabbitMQ AMQP at h:p: ...")."""
    if isinstance(exc, BrokerError):
        return exc
    text = scrub(reply_text(exc))
    if isinstance(exc, amqp.ChannelNotFoundEntity):
        return NotFound(f"{what}: {text}")
    if isinstance(exc, (amqp.ChannelAccessRefused, amqp.ChannelLockedResource, amqp.ConnectionNotAllowed)):
        return AccessDenied(f"{what}: {text}")
    if isinstance(exc, amqp.ChannelPreconditionFailed):
        return InvalidRequest(f"{what}: {text}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Timeout(f"{what}: no answer in time")
    if isinstance(exc, ssl.SSLError):
        return Unreachable(f"{what}: TLS failed: {scrub(str(exc))}")
    if isinstance(exc, amqp.ChannelInvalidStateError):
        return BrokerError(f"{what}: the channel was closed")
    if isinstance(exc, (amqp.AMQPConnectionError, ConnectionError, OSError)):
        return Unreachable(f"{what}: the AMQP connection failed or was lost ({text})")
    if isinstance(exc, amqp.ChannelClosed):
        return BrokerError(f"{what}: the broker closed the channel: {text}")
    return BrokerError(f"{what}: {scrub(type(exc).__name__)}: {text}")
