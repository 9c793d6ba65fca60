"""The ``kafka`` adapter: options, ``kafka://`` URLs and ``connect()``.

``connect()`` creates an AdminClient and asks the cluster for its metadata (bounded by
``timeout_s``). Consumers are created per read, the producer on the first publish.
librdkafka's own log lines go to the ``workbench_kafka`` logger (never straight to stderr, which
would garble the TUI).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from workbench.broker import (
    AccessDenied,
    Adapter,
    BrokerError,
    Capabilities,
    InvalidRequest,
    Unreachable,
)

from . import options as opts
from .connection import KafkaConnection
from .errors import describe_error, kafka_error

log = logging.getLogger("workbench_kafka")
log.addHandler(logging.NullHandler())

METADATA_SLICE_S = 0.5  # the first metadata request is retried in slices this long
REFUSED_GRACE_S = 1.0  # every broker refusing this long is an answer: fail without the full timeout
_AUTH_ERRORS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


class KafkaAdapter(Adapter):
    """Apache Kafka through confluent-kafka (librdkafka)."""

    name = "kafka"
    description = "Apache Kafka (or a Kafka-compatible broker) through librdkafka"
    capabilities = Capabilities(
        history=True,
        partitions=True,
        consumer_groups=True,
        offsets_reset=True,
        publisher_confirms=True,
        headers=True,
        publish_timestamp=True,
        non_destructive_tap=True,
        topic_admin=True,
    )
    options = opts.OPTIONS

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)  # types and positive numbers checked there
        self._properties = opts.client_properties(self.settings)  # types checked here
        self._secrets = opts.secret_values(self.settings)

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        return opts.options_from_url(url)

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any]) -> list[str]:
        return opts.option_warnings(options)

    def describe(self) -> str:
        return opts.describe(self.settings)

    def _scrub(self, text: str) -> str:
        return opts.scrub(text, self._secrets)

    def _base_conf(self) -> dict[str, Any]:
        """The librdkafka config shared by every client. Never shown, never put in a message."""
        timeout_ms = int(self.settings["timeout_s"] * 1000)
        conf: dict[str, Any] = {
            "client.id": "event-workbench",
            "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
            "reconnect.backoff.max.ms": 2000,
            "allow.auto.create.topics": False,
            "error_cb": _log_error,
            "logger": log,
            **opts.TLS_DEFAULTS,  # verify the broker's certificate and host name unless told otherwise
        }
        conf.update(self._properties)
        conf["bootstrap.servers"] = opts.url_host_list(self.settings)
        return conf

    async def connect(self) -> KafkaConnection:
        bootstrap = opts.url_host_list(self.settings)
        where = f"Kafka at {bootstrap}"
        timeout = self.settings["timeout_s"]
        base = self._base_conf()
        seen: deque[KafkaError] = deque(maxlen=32)  # the admin client lives on: keep it bounded

        def on_error(err: KafkaError) -> None:
            seen.append(err)
            _log_error(err)

        recorder = _FailureRecorder(log)
        try:
            # Any values: confluent_kafka's stub lists only scalars, but error_cb and logger are accepted
            admin_conf: dict[str, Any] = {**base, "error_cb": on_error, "logger": recorder}
            admin = AdminClient(admin_conf)
        except (KafkaException, ValueError, TypeError) as exc:
            err = kafka_error(exc)
            text = describe_error(err) if err is not None else str(exc)
            raise InvalidRequest(
                self._scrub(f"adapter 'kafka': bad client configuration: {text}"),
                hint="check the librdkafka properties of this profile",
            ) from None
        try:
            await self._first_metadata(admin, timeout, seen, recorder)
        except KafkaException as exc:
            admin.poll(0)  # serve error_cb: authentication and TLS failures arrive there
            raise self._connect_error(where, timeout, exc, seen, recorder.last) from None
        except _Refused as refused:
            raise Unreachable(
                self._scrub(f"{where}: connection refused ({refused.reason})"),
                hint="is the broker running on that address, and bootstrap.servers right?",
            ) from None
        finally:
            admin.poll(0)
        return KafkaConnection(
            where=where,
            base_conf=base,
            admin=admin,
            timeout_s=timeout,
            delivery_timeout_s=self.settings["delivery_timeout_s"],
            scrub=self._scrub,
        )

    async def _first_metadata(
        self, admin: AdminClient, timeout: float, seen: deque[KafkaError], recorder: _FailureRecorder
    ) -> None:
        """The first metadata request, asked in short slices of ``timeout``.

        A refused connection is an answer: when every bootstrap broker has refused for
        REFUSED_GRACE_S, that is reported at once (a port nobody listens on), while silence
        (a firewall, a frozen broker) still waits the whole timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        refused_since: float | None = None
        while True:
            remaining = deadline - loop.time()
            try:
                await asyncio.to_thread(admin.list_topics, timeout=max(min(remaining, METADATA_SLICE_S), 0.05))
                return
            except KafkaException:
                admin.poll(0)
                if loop.time() >= deadline:
                    raise
            all_down = any(err.code() == KafkaError._ALL_BROKERS_DOWN for err in seen)
            if not (all_down and recorder.last and "Connection refused" in recorder.last):
                refused_since = None
            elif refused_since is None:
                refused_since = loop.time()
            elif loop.time() - refused_since >= REFUSED_GRACE_S:
                raise _Refused(recorder.last)

    def _connect_error(
        self,
        where: str,
        timeout: float,
        exc: KafkaException,
        seen: deque[KafkaError],
        last_failure: str | None,
    ) -> BrokerError:
        errors = [e for e in [*seen, kafka_error(exc)] if e is not None]
        for err in errors:
            if err.code() in _AUTH_ERRORS:
                return AccessDenied(
                    self._scrub(f"{where}: authentication failed: {describe_error(err)}"),
                    hint="check sasl.mechanism, sasl.username and the password",
                )
        for err in errors:
            if err.code() == KafkaError._SSL:
                return Unreachable(
                    self._scrub(f"{where}: TLS handshake failed: {describe_error(err)}"),
                    hint="check security.protocol and the ssl.* properties",
                )
        for err in errors:
            if err.code() == KafkaError._RESOLVE:
                return Unreachable(self._scrub(f"{where}: cannot resolve the host name: {describe_error(err)}"))
        reason = f" (last error: {last_failure})" if last_failure else ""
        if last_failure and "SSL" in last_failure:
            hint = "check security.protocol and the ssl.* properties"
        else:
            hint = "is the broker running and bootstrap.servers right? (timeout_s sets the wait)"
        return Unreachable(self._scrub(f"{where} did not answer within {timeout:g} s{reason}"), hint=hint)


class _Refused(Exception):
    """Every bootstrap broker refused the connection: nothing listens there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _FailureRecorder:
    """The ``logger`` librdkafka writes to: forwards every line and keeps the last connection
    failure ("Connect to ... failed: Connection refused", "SSL handshake failed ...")."""

    def __init__(self, target: logging.Logger) -> None:
        self._target = target
        self.last: str | None = None

    def log(self, level: int, fmt: str, *args: Any) -> None:
        if len(args) == 3 and args[0] == "FAIL":
            text = str(args[2])
            # "ssl://host:9092/bootstrap: SSL handshake failed: ..." -> after the broker name
            head, sep, rest = text.partition("/bootstrap: ")
            text = rest if sep else text
            self.last = text.split(" (after ", 1)[0]
        self._target.log(level, fmt, *args)


@functools.cache
def _error_logger() -> logging.Logger:
    return logging.getLogger("workbench_kafka.errors")


def _log_error(err: KafkaError) -> None:
    # librdkafka retries on its own; these are informational unless fatal.
    level = logging.ERROR if err.fatal() else logging.DEBUG
    _error_logger().log(level, "librdkafka: %s", describe_error(err))
