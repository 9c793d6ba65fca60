"""The ``kafka`` adapter: options, ``kafka://`` URLs and ``connect()``.

``connect()`` creates an AdminClient and asks the cluster for its metadata (bounded by
``timeout_s``). Consumers are created per read, the producer on the first publish.
librdkafka's own log lines go to the ``workbench_kafka`` logger (never straight to stderr, which
would garble the TUI).

Failing to connect is told in the user's terms, as soon as the answer is known (not after
``timeout_s``): every broker refusing the connection; the credentials refused (AccessDenied: a
wrong password and an unknown user look alike, Kafka does not say which); the broker's
certificate refused, and why (``tls.py``: a CA the profile does not trust, or a certificate not
valid for the host name), naming the broker's address and the property that fixes it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
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
from . import tls
from .connection import KafkaConnection
from .errors import describe_error, kafka_error

log = logging.getLogger("workbench_kafka")
log.addHandler(logging.NullHandler())

METADATA_SLICE_S = 0.5  # the first metadata request is retried in slices this long
REFUSED_GRACE_S = 1.0  # every broker refusing this long is an answer: fail without the full timeout
TLS_GRACE_S = 1.0  # a refused certificate, with no other broker answering meanwhile, is an answer too
TLS_CHECK_S = 5.0  # at most this long to find out why a certificate was refused
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
        except (KafkaException, _Answered) as exc:
            admin.poll(0)  # serve error_cb: authentication and TLS failures arrive there
            cause = exc if isinstance(exc, KafkaException) else None
            error = self._connect_error(where, timeout, cause, seen, recorder.last)
            if isinstance(error, Unreachable) and is_tls_refusal(error):
                told_apart = await asyncio.to_thread(self._tls_error, where, seen, recorder.last, timeout)
                error = told_apart or error
            raise error from None
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
        (a firewall, a frozen broker) still waits the whole timeout. Refused credentials are an
        answer at once (the same for every broker), a refused certificate after TLS_GRACE_S
        (another bootstrap broker may still answer).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        refused_since: float | None = None
        tls_refused_since: float | None = None
        while True:
            remaining = deadline - loop.time()
            try:
                await asyncio.to_thread(admin.list_topics, timeout=max(min(remaining, METADATA_SLICE_S), 0.05))
                return
            except KafkaException:
                admin.poll(0)
                if loop.time() >= deadline:
                    raise
            if any(err.code() in _AUTH_ERRORS for err in seen):
                raise _Answered()
            if _tls_failure(seen, recorder.last) is not None:
                tls_refused_since = tls_refused_since or loop.time()
                if loop.time() - tls_refused_since >= TLS_GRACE_S:
                    raise _Answered()
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
        exc: KafkaException | None,
        seen: deque[KafkaError],
        last_failure: str | None,
    ) -> BrokerError:
        errors = [e for e in [*seen, kafka_error(exc) if exc is not None else None] if e is not None]
        for err in errors:
            if err.code() in _AUTH_ERRORS:
                return self._auth_error(where, err)
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
            return Unreachable(
                self._scrub(f"{where}: TLS handshake failed{reason}"),
                hint="check security.protocol and the ssl.* properties",
            )
        hint = "is the broker running and bootstrap.servers right? (timeout_s sets the wait)"
        return Unreachable(self._scrub(f"{where} did not answer within {timeout:g} s{reason}"), hint=hint)

    def _auth_error(self, where: str, err: KafkaError) -> AccessDenied:
        """The credentials refused: who, how, by which broker; never the password (what comes from
        the profile or the broker is scrubbed, the sentence around it is not)."""
        settings = self.settings
        mechanism = str(settings.get("sasl.mechanism") or settings.get("sasl.mechanisms") or "PLAIN").upper()
        text = self._scrub(err.str() or "")
        broker = tls.broker_address(text)
        by = f" by broker {broker}" if broker else ""
        reason = _without_timing(text.split("SASL authentication error: ", 1)[-1])
        if mechanism == "OAUTHBEARER":
            message = f"{where}: authentication failed: the OAUTHBEARER token was refused{by}"
            hint = "check the sasl.oauthbearer.* properties of this profile (the token's principal and issuer)"
        else:
            user = settings.get("sasl.username")
            who = f"user {self._scrub(str(user))!r}" if user else "no sasl.username given"
            message = f"{where}: authentication failed for {who} with {mechanism}{by}"
            hint = "check sasl.username and sasl.password of this profile, and sasl.mechanism"
        if "invalid credentials" in reason and mechanism != "OAUTHBEARER":
            message += ": wrong password or unknown user (Kafka does not say which)"
        elif reason:
            message += f": {reason}"
        return AccessDenied(message, hint=hint)

    def _tls_error(
        self, where: str, seen: deque[KafkaError], last_failure: str | None, timeout: float
    ) -> Unreachable | None:
        """A refused certificate, told apart (tls.py): untrusted CA, wrong host name, out of date."""
        failure = _tls_failure(seen, last_failure)
        if failure is None or not tls.is_verify_failure(failure):
            return None
        address = tls.broker_address(failure) or opts.url_host_list(self.settings).split(",")[0]
        refusal = tls.diagnose(address, self.settings, min(timeout, TLS_CHECK_S))
        if refusal is None:
            return None
        ca = self.settings.get("ssl.ca.location")
        if refusal.kind == "untrusted":
            message = f"the certificate of broker {address} is not signed by a CA this profile trusts"
            now = f"now {ca}" if ca else "none set: the system's CA store is used"
            hint = f"set ssl.ca.location to the CA file (PEM) that signed the brokers' certificates ({now})"
        elif refusal.kind == "host name":
            host = address.rpartition(":")[0].strip("[]")
            message = f"the certificate of broker {address} does not match the host name {host!r}"
            hint = (
                "connect with a host name the certificate is issued for (bootstrap.servers, and the brokers' "
                "advertised listeners), or have it reissued for this name; ssl.endpoint.identification.algorithm"
                " = none turns the check off, letting any certificate of the CA pose as this broker"
            )
        elif refusal.kind == "validity":
            message = f"the certificate of broker {address} is out of its validity period"
            hint = "the broker's certificate must be renewed (or this machine's clock is wrong)"
        else:
            message = f"the certificate of broker {address} was refused"
            hint = "check ssl.ca.location and the broker's certificate"
        return Unreachable(self._scrub(f"{where}: TLS: {message} ({refusal.detail})"), hint=hint)


def is_tls_refusal(error: BrokerError) -> bool:
    return "TLS handshake failed" in str(error)


def _tls_failure(seen: deque[KafkaError], last_failure: str | None) -> str | None:
    """librdkafka's words for a failed TLS handshake, if it reported one (as _SSL, or as _TRANSPORT
    when the failure surfaced on the socket's read during the handshake), else None."""
    for err in reversed(seen):
        text = err.str() or ""
        if err.code() == KafkaError._SSL or (err.code() == KafkaError._TRANSPORT and "SSL" in text):
            return text
    if last_failure and "SSL handshake failed" in last_failure:
        return last_failure
    return None


def _without_timing(text: str) -> str:
    """librdkafka's message without its "(after 317ms in state AUTH_REQ)" tail."""
    return re.sub(r"\s*\(after \d+ms in state [A-Z_]+\)", "", text).strip()


class _Answered(Exception):
    """The cluster has answered the connection attempt with a refusal (credentials or certificate)."""


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
            # "ssl://host:9092/bootstrap: SSL handshake failed: ..." (the broker's name is kept)
            self.last = str(args[2]).split(" (after ", 1)[0]
        self._target.log(level, fmt, *args)


@functools.cache
def _error_logger() -> logging.Logger:
    return logging.getLogger("workbench_kafka.errors")


def _log_error(err: KafkaError) -> None:
    # librdkafka retries on its own; these are informational unless fatal.
    level = logging.ERROR if err.fatal() else logging.DEBUG
    _error_logger().log(level, "librdkafka: %s", describe_error(err))
