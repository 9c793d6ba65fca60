"""The ``rabbitmq`` adapter: options, ``amqp://`` / ``amqps://`` URLs and ``connect()``.

``connect()`` opens the AMQP connection (bounded by ``timeout_s``), then checks the management
API. An AMQP failure is fatal and says so (Unreachable, AccessDenied for bad credentials,
NotFound / AccessDenied naming the vhost). A management failure is not: the connection works
in a degraded mode (publish, describe, create/delete; no listing, groups, lag or reads, which
need to know what a name is) and ``connection.warnings`` says why, as does the ``warning``
metadata of what ``describe_topic`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq.exceptions as amqp

from workbench.broker import (
    AccessDenied,
    Adapter,
    BrokerError,
    Capabilities,
    NotFound,
    Unreachable,
)

from . import options as opts
from .connection import RabbitMQConnection
from .errors import reply_text
from .management import Management

log = logging.getLogger("workbench_rabbitmq")
log.addHandler(logging.NullHandler())


class RabbitMQAdapter(Adapter):
    """RabbitMQ through AMQP 0-9-1 (aio-pika) and the management HTTP API (httpx)."""

    name = "rabbitmq"
    description = "RabbitMQ: exchanges, queues and streams (AMQP 0-9-1 + management API)"
    # History, positions and topic admin apply to streams; exchanges are tapped live and classic
    # or quorum queues are not read (that would take messages from their consumers), only peeked
    # on request (taken and requeued through the management API).
    capabilities = Capabilities(
        history=True,
        partitions=False,
        consumer_groups=True,
        offsets_reset=False,
        publisher_confirms=True,
        headers=True,
        publish_timestamp=True,
        non_destructive_tap=True,
        topic_admin=True,
        peek_requeue=True,
    )
    options = opts.OPTIONS

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)  # types and positive numbers checked there
        self._endpoint, self._secrets = opts.endpoint(self.settings)

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        return opts.options_from_url(url)

    def describe(self) -> str:
        return opts.describe(self.settings)

    def _scrub(self, text: str) -> str:
        return opts.scrub(text, self._secrets.values())

    async def connect(self) -> RabbitMQConnection:
        ep = self._endpoint
        context = opts.ssl_context(self.settings) if ep.tls or ep.management_url.startswith("https") else None
        amqp_conn = await self._connect_amqp(context)
        try:
            started = time.monotonic()
            channel = await amqp_conn.channel(publisher_confirms=False)
            rtt = time.monotonic() - started
            await channel.close()
        except Exception as exc:  # noqa: BLE001
            await _close_quietly(amqp_conn)
            raise Unreachable(f"{ep.where}: cannot open a channel: {self._scrub(reply_text(exc))}") from None
        management, warnings = await self._connect_management(context)
        for warning in warnings:
            log.warning("%s", warning)
        return RabbitMQConnection(
            endpoint=ep,
            amqp=amqp_conn,
            management=management,
            warnings=warnings,
            settings=self.settings,
            rtt_s=rtt,
            scrub=self._scrub,
            reconnect=lambda: self._connect_amqp(context),
        )

    async def _connect_amqp(self, context: ssl.SSLContext | None) -> aio_pika.abc.AbstractConnection:
        ep = self._endpoint
        timeout = self.settings["timeout_s"]
        try:
            return await asyncio.wait_for(
                aio_pika.connect(
                    host=ep.host,
                    port=ep.port,
                    login=ep.user,
                    password=self._secrets.password,
                    virtualhost=ep.vhost,
                    ssl=ep.tls,
                    ssl_context=context if ep.tls else None,
                    timeout=timeout,
                    client_properties={
                        "connection_name": self.settings["connection_name"],
                        "product": "event-workbench",
                    },
                ),
                timeout + 1,
            )
        except TimeoutError:
            raise Unreachable(
                f"{ep.where} did not answer within {timeout:g} s",
                hint="is the broker running, and are host and port right? (timeout_s sets the wait)",
            ) from None
        except (amqp.ProbableAuthenticationError, amqp.AuthenticationError):
            raise AccessDenied(
                f"{ep.where}: authentication failed for user {ep.user!r}",
                hint="check the user and password",
            ) from None
        except amqp.InvalidFrameError as exc:
            # The broker closed the connection while opening the vhost.
            raise await self._vhost_error(reply_text(exc)) from None
        except ssl.SSLError as exc:
            raise Unreachable(
                f"{ep.where}: TLS handshake failed: {self._scrub(str(exc))}",
                hint="check ca_file / cert_file / key_file, and that the port speaks TLS",
            ) from None
        except (ConnectionRefusedError, amqp.AMQPConnectionError, OSError) as exc:
            raise self._connect_failure(exc) from None

    def _connect_failure(self, exc: BaseException) -> Unreachable:
        """Why the AMQP connection could not be made, in words (aiormq wraps the cause)."""
        ep = self._endpoint
        cause = exc.__cause__ or exc.__context__ or exc
        detail = self._scrub(reply_text(exc))
        if isinstance(cause, ssl.SSLError) or isinstance(exc, ssl.SSLError):
            return Unreachable(
                f"{ep.where}: TLS handshake failed: {self._scrub(str(cause))}",
                hint="check ca_file / cert_file / key_file, and that the port speaks TLS (amqps:// is usually 5671)",
            )
        if isinstance(cause, socket.gaierror):
            return Unreachable(
                f"{ep.where}: cannot resolve the host name {ep.host!r} ({self._scrub(str(cause.strerror or cause))})",
                hint="check the host in the URL",
            )
        if isinstance(cause, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError):
            return Unreachable(
                f"{ep.where} refused the connection: nothing listens on that port",
                hint="is the broker running, and are host and port right?",
            )
        if isinstance(cause, asyncio.IncompleteReadError):
            return Unreachable(
                f"{ep.where} closed the connection during the AMQP handshake ({detail})",
                hint="is this an AMQP port? (RabbitMQ listens on 5672, or 5671 for amqps)",
            )
        return Unreachable(
            f"{ep.where}: cannot connect ({detail})",
            hint="is the broker running, and are host and port right? (timeout_s sets the wait)",
        )

    async def _vhost_error(self, detail: str) -> BrokerError:
        ep = self._endpoint
        exists: bool | None = None
        mgmt = Management(ep, self._secrets, min(self.settings["timeout_s"], 5.0), None)
        try:
            exists = await mgmt.vhost_exists()
        except BrokerError:
            exists = None
        finally:
            await mgmt.aclose()
        if exists is False:
            return NotFound(f"{ep.where}: vhost {ep.vhost!r} does not exist", hint="the vhost is the URL's path")
        if exists is True:
            return AccessDenied(f"{ep.where}: user {ep.user!r} may not use vhost {ep.vhost!r}")
        return AccessDenied(
            f"{ep.where}: the broker refused vhost {ep.vhost!r}: it does not exist or user {ep.user!r} may not use it"
        )

    async def _connect_management(self, context: ssl.SSLContext | None) -> tuple[Management | None, list[str]]:
        ep = self._endpoint
        mgmt = Management(ep, self._secrets, self.settings["timeout_s"], context)
        try:
            if not await mgmt.vhost_exists():
                raise NotFound(f"{ep.management_where}: vhost {ep.vhost!r} is not visible")
        except BrokerError as exc:
            await mgmt.aclose()
            text = self._scrub(str(exc))
            warning = (
                f"{text}: degraded mode, listing, groups, lag and reads are unavailable "
                "(publish, describe, create and delete work)"
            )
            return None, [warning]
        return mgmt, []


async def _close_quietly(connection: aio_pika.abc.AbstractConnection) -> None:
    try:
        await connection.close()
    except Exception:  # noqa: BLE001
        pass
