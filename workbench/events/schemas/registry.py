"""A Confluent-compatible schema registry, through confluent-kafka's own client.

Schemas are fetched without ``?format=`` (some registries mangle the ``serialized`` form) and their
references resolved recursively, so a schema arrives as one :class:`SchemaText`. The client caches
by id for the life of the process. Every error is a typed broker error whose message names the
registry by a URL that holds no secret.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from workbench.broker import AccessDenied, BrokerError, InvalidRequest, NotFound, Timeout, Unreachable
from workbench.events.schemas.formats import FORMATS, Format, SchemaText

_TYPES: dict[str, Format] = {"AVRO": "avro", "PROTOBUF": "protobuf", "JSON": "json"}


@dataclass(frozen=True)
class RegistrySettings:
    """Where the registry is and how to authenticate (``password`` is a secret: never shown)."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: str | None = None  # a CA file (PEM) for https
    timeout_s: float = 5.0

    @property
    def shown(self) -> str:
        """The URL without any userinfo: safe in messages, logs and snapshots."""
        return _split_userinfo(self.url)[0]


def _split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return url, None
    userinfo, _, host = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    # percent-decoded, as the Kafka and RabbitMQ URLs' userinfo is (a password with "@" is written %40)
    return f"{scheme}://{host}{slash}{path}", (unquote(user), unquote(password))


def _raw_password(url: str) -> str | None:
    """The password of a URL as written (percent-encoded), to scrub from messages too."""
    authority = url.partition("://")[2].partition("/")[0]
    if "@" not in authority:
        return None
    return authority.rpartition("@")[0].partition(":")[2] or None


@dataclass(frozen=True)
class Registered:
    """A schema as registered: its id, and where it is known (subject and version; None when asked by id
    and the registry does not say)."""

    id: int
    schema: SchemaText
    subject: str | None = None
    version: int | None = None


class Registry:
    """A registry client shared by every reader of one process (thread-safe: readers run in threads)."""

    def __init__(self, settings: RegistrySettings) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.settings = settings
        url, userinfo = _split_userinfo(settings.url)
        if settings.user is not None:
            userinfo = (settings.user, settings.password or "")
        conf: dict[str, Any] = {
            "url": url,
            "timeout": settings.timeout_s,
            "max.retries": 1,
            "retries.wait.ms": 200,
            "retries.max.wait.ms": 1000,
        }
        if userinfo:
            conf["basic.auth.user.info"] = ":".join(userinfo)
        if settings.ca:
            conf["ssl.ca.location"] = settings.ca
        raw = _raw_password(settings.url)
        self._secrets = [s for s in (userinfo[1] if userinfo else None, settings.password, raw) if s]
        self._client = SchemaRegistryClient(conf)
        self._lock = threading.Lock()
        self._by_id: dict[int, Registered] = {}

    # ----------------------------------------------------------------- reads

    def by_id(self, schema_id: int) -> Registered:
        """The schema with this id, its references resolved; where it is registered when the registry says."""
        with self._lock:
            known = self._by_id.get(schema_id)
        if known is not None:
            return known
        schema = self._call(lambda: self._client.get_schema(schema_id), f"schema id {schema_id}")
        text = self._text(schema, f"schema id {schema_id}")
        subject = version = None
        try:
            places = self._client.get_schema_versions(schema_id)
            if places:
                subject, version = places[0].subject, places[0].version
        except Exception:  # noqa: BLE001 - where it is registered is a nicety; the schema is what counts
            pass
        found = Registered(schema_id, text, subject, version)
        with self._lock:
            self._by_id[schema_id] = found
        return found

    def version(self, subject: str, version: int | Literal["latest"] = "latest") -> Registered:
        what = f"subject {subject!r} version {version}"
        registered = self._call(lambda: self._client.get_version(subject, version), what)
        text = self._text(registered.schema, what)
        return Registered(registered.schema_id, text, registered.subject, registered.version)

    def subjects(self) -> list[str]:
        return sorted(self._call(self._client.get_subjects, "the subject list"))

    def versions(self, subject: str) -> list[int]:
        return list(self._call(lambda: self._client.get_versions(subject), f"subject {subject!r}"))

    def register(self, subject: str, schema: SchemaText) -> int:
        """Register a schema (tests and the demo use it); the registry's compatibility rule applies."""
        from confluent_kafka.schema_registry import Schema, SchemaReference

        references = []
        for name, ref in schema.references:
            ref_id = self.register(name, ref)  # a reference is registered under its own name as subject
            places = self._call(lambda i=ref_id: self._client.get_schema_versions(i), f"subject {name!r}")
            version = next((p.version for p in places if p.subject == name), places[0].version)
            references.append(SchemaReference(name, name, version))
        kind = next(k for k, v in _TYPES.items() if v == schema.format)
        body = Schema(schema.text, kind, references)
        return self._call(lambda: self._client.register_schema(subject, body), f"registering {subject!r}")

    # ----------------------------------------------------------------- helpers

    def _text(self, schema: Any, what: str, depth: int = 0) -> SchemaText:
        fmt = _TYPES.get((schema.schema_type or "AVRO").upper())
        if fmt not in FORMATS or fmt is None:
            raise InvalidRequest(f"schema registry {self.settings.shown}: {what} has unknown type {schema.schema_type}")
        if depth > 32:
            raise InvalidRequest(f"schema registry {self.settings.shown}: {what}: references nested too deeply")
        refs = []
        for ref in schema.references or ():
            where = f"reference {ref.name!r} (subject {ref.subject!r} version {ref.version})"
            registered = self._call(lambda r=ref: self._client.get_version(r.subject, r.version), where)
            refs.append((ref.name, self._text(registered.schema, where, depth + 1)))
        return SchemaText(fmt, schema.schema_str, tuple(refs))

    def _call(self, request: Any, what: str) -> Any:
        """Run one client request; its errors become typed broker errors that name the registry."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        where = f"schema registry {self.settings.shown}"
        try:
            return request()
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            message = self._scrub(exc.error_message or str(exc))
            if status == 404:
                raise NotFound(f"{where}: {what} not found ({message})") from None
            if status in (401, 403):
                raise AccessDenied(f"{where}: {what}: access denied ({message})") from None
            if status in (409, 422):
                raise InvalidRequest(f"{where}: {what}: refused ({message})") from None
            raise BrokerError(f"{where}: {what}: HTTP {status} ({message})") from None
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - httpx, TLS and socket errors of every kind
            name = type(exc).__name__
            message = self._scrub(str(exc)) or name
            if "timeout" in name.lower() or "timed out" in message.lower():
                raise Timeout(f"{where}: {what}: no answer within {self.settings.timeout_s:g} s") from None
            raise Unreachable(f"{where}: {what}: {message}") from None

    def _scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
