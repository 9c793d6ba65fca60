"""Options of the ``rabbitmq`` adapter, ``amqp://`` / ``amqps://`` URLs, and where things are.

The AMQP URL carries user, password, host, port and vhost (the path: ``amqp://host/orders``,
``amqp://host/%2F`` or ``amqp://host/`` for the default vhost ``/``). :func:`options_from_url`
moves a password out of the URL into the secret ``password`` option, so a profile shown with
its options never shows it.

TLS (``amqps://`` and an ``https`` management API) verifies the broker's certificate and host
name against the system CAs or ``ca_file``; ``tls_verify = false`` turns that off, and the
option's ``warning`` is shown each time the profile is used.

The management HTTP API URL defaults to ``http://HOST:15672`` for ``amqp://`` and to
``https://HOST:15671`` for ``amqps://`` (a password is never sent in clear by guess); its user
and password default to the AMQP ones.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from workbench.broker import InvalidRequest, Option

SCHEMES = {"amqp": 5672, "amqps": 5671}
MANAGEMENT_PORTS = {"amqp": ("http", 15672), "amqps": ("https", 15671)}
DEFAULT_URL = "amqp://localhost:5672/"
DEFAULT_USER = "guest"
DEFAULT_PASSWORD = "guest"
DEFAULT_VHOST = "/"
#: RabbitMQ's own default ``max_message_size`` (128 MiB up to 3.13; 4.x lowers it to 16 MiB).
DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024

OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        str,
        DEFAULT_URL,
        secret=True,
        help="amqp:// or amqps:// URL: [user[:password]@]host[:port][/vhost] (%2F for the vhost '/')",
    ),
    Option("password", str, None, secret=True, help="AMQP password (instead of putting it in the URL)"),
    Option(
        "management_url",
        str,
        None,
        help="management HTTP API (default http://HOST:15672, or https://HOST:15671 for amqps)",
    ),
    Option("management_user", str, None, help="management API user (default: the AMQP user)"),
    Option("management_password", str, None, secret=True, help="management API password (default: the AMQP one)"),
    Option("timeout_s", float, 10.0, positive=True, help="connect / request timeout (seconds)"),
    Option(
        "delivery_timeout_s", float, 30.0, positive=True, help="how long a published event may wait for its confirm"
    ),
    Option("ca_file", str, None, help="CA certificate(s) to verify the broker (PEM), for amqps and https"),
    Option(
        "tls_verify",
        bool,
        True,
        help="verify the broker's TLS certificate and host name (amqps, https); false warns each time",
        warning="TLS verification is off (tls_verify = false): the broker's certificate and host name are not "
        "checked, so anyone on the network path can pose as the broker",
    ),
    Option("cert_file", str, None, help="client certificate (mutual TLS, PEM)"),
    Option("key_file", str, None, help="client private key (mutual TLS, PEM)"),
    Option("connection_name", str, "event-workbench", help="connection name shown in the management UI"),
    Option(
        "tap_max_length",
        int,
        10_000,
        positive=True,
        help="cap of a tap queue: beyond it the oldest unread events are dropped (x-overflow drop-head)",
    ),
    Option("publish_window", int, 1000, positive=True, help="published events awaiting their confirm at once"),
    Option(
        "max_message_bytes",
        int,
        DEFAULT_MAX_MESSAGE_BYTES,
        positive=True,
        help="largest body accepted (the broker's max_message_size); larger events fail alone",
    ),
)
OWN_OPTIONS = {o.name for o in OPTIONS}
#: URL query keys that become options (anything else in the query is an error).
_QUERY_FLOATS = {"timeout_s", "delivery_timeout_s"}
_QUERY_INTS = {"tap_max_length", "publish_window", "max_message_bytes"}
_QUERY_STRS = {"management_url", "management_user", "ca_file", "cert_file", "key_file", "connection_name"}
_QUERY_SECRETS = {"password", "management_password"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything needed to reach one vhost. ``repr`` never shows a password."""

    scheme: str
    host: str
    port: int
    vhost: str
    user: str
    management_url: str
    management_user: str

    @property
    def tls(self) -> bool:
        return self.scheme == "amqps"

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def where(self) -> str:
        """What every AMQP message starts with: ``RabbitMQ AMQP at host:5672``."""
        return f"RabbitMQ AMQP at {self.hostport}"

    @property
    def management_where(self) -> str:
        return f"RabbitMQ management API at {self.management_url}"

    def display(self) -> str:
        vhost = quote(self.vhost, safe="")
        return f"{self.scheme}://{quote(self.user, safe='')}@{self.hostport}/{vhost}"


@dataclass(frozen=True, slots=True)
class Secrets:
    """The passwords, kept apart from :class:`Endpoint` so that nothing prints them by accident."""

    password: str
    management_password: str

    def __repr__(self) -> str:
        return "Secrets(***)"

    def values(self) -> list[str]:
        return [s for s in (self.password, self.management_password) if s and len(s) >= 3]


@dataclass(frozen=True, slots=True)
class _ParsedUrl:
    scheme: str
    host: str
    port: int
    vhost: str
    user: str | None
    password: str | None
    query: list[tuple[str, str]]


def _parse(url: str) -> _ParsedUrl:
    if not isinstance(url, str):
        raise InvalidRequest("a RabbitMQ URL must be a string")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidRequest("RabbitMQ URL: bad host or port (expected amqp://host:5672/vhost)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidRequest("not a RabbitMQ URL (expected amqp://[user[:password]@]host[:port][/vhost])")
    host = parts.hostname or "localhost"
    path = parts.path
    if path in ("", "/"):
        vhost = DEFAULT_VHOST
    else:
        raw = path[1:]
        if "/" in raw:
            raise InvalidRequest("RabbitMQ URL: the vhost is one path segment; write '/' as %2F")
        vhost = unquote(raw)
    return _ParsedUrl(
        scheme=scheme,
        host=host,
        port=port or SCHEMES[scheme],
        vhost=vhost,
        user=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        query=parse_qsl(parts.query, keep_blank_values=True),
    )


def options_from_url(url: str) -> dict[str, Any]:
    """``amqp[s]://[user[:password]@]host[:port][/vhost][?option=value&...]`` -> options.

    The password moves to the ``password`` option (the URL kept in ``url`` has none). Query keys
    are options of this adapter (``management_url``, ``timeout_s`` ...).
    """
    parsed = _parse(url)
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostpart = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostpart}" if user else hostpart
    options: dict[str, Any] = {"url": urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))}
    if parsed.password is not None:
        options["password"] = parsed.password
    for key, value in parsed.query:
        if key in _QUERY_FLOATS:
            try:
                options[key] = float(value)
            except ValueError:
                raise InvalidRequest(f"RabbitMQ URL: {key} must be a number of seconds") from None
        elif key in _QUERY_INTS:
            try:
                options[key] = int(value)
            except ValueError:
                raise InvalidRequest(f"RabbitMQ URL: {key} must be an integer") from None
        elif key in _QUERY_STRS or key in _QUERY_SECRETS:
            options[key] = value
        else:
            known = ", ".join(sorted(_QUERY_FLOATS | _QUERY_INTS | _QUERY_STRS))
            raise InvalidRequest(f"RabbitMQ URL: unknown query parameter {key!r} (known: {known})")
    return options


def endpoint(settings: Mapping[str, Any]) -> tuple[Endpoint, Secrets]:
    """The endpoint and the passwords for checked settings; raises InvalidRequest."""
    parsed = _parse(settings.get("url") or DEFAULT_URL)
    if parsed.query:
        raise InvalidRequest("adapter 'rabbitmq': the 'url' option takes no query string; give the other options apart")
    if parsed.user is None and parsed.password is None and settings.get("password") is None:
        user, password = DEFAULT_USER, DEFAULT_PASSWORD  # the AMQP URI spec's defaults
    else:
        user = parsed.user if parsed.user is not None else DEFAULT_USER
        given = settings.get("password")
        password = given if given is not None else (parsed.password or "")
    management_url = settings.get("management_url")
    if management_url:
        try:
            mparts = urlsplit(management_url)
            mparts.port  # noqa: B018  (validates the port)
        except ValueError:
            raise InvalidRequest("adapter 'rabbitmq': bad management_url") from None
        if mparts.scheme not in ("http", "https") or not mparts.hostname:
            raise InvalidRequest("adapter 'rabbitmq': management_url must be http(s)://host:port")
        if mparts.username or mparts.password:
            raise InvalidRequest(
                "adapter 'rabbitmq': give the management user and password as options, not in management_url"
            )
        management_url = management_url.rstrip("/")
    else:
        scheme, port = MANAGEMENT_PORTS[parsed.scheme]
        host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
        management_url = f"{scheme}://{host}:{port}"
    management_user = settings.get("management_user") or user
    management_password = settings.get("management_password")
    if management_password is None:
        management_password = password
    ep = Endpoint(
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        vhost=parsed.vhost,
        user=user,
        management_url=management_url,
        management_user=management_user,
    )
    return ep, Secrets(password=password, management_password=management_password)


def ssl_context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    """A verifying client context (the system CAs, or ``ca_file``), with a client cert if given;
    one that verifies nothing only with ``tls_verify = false``."""
    try:
        context = ssl.create_default_context(cafile=settings.get("ca_file") or None)
        if settings.get("tls_verify") is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if settings.get("cert_file"):
            context.load_cert_chain(settings["cert_file"], settings.get("key_file") or None)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidRequest(f"adapter 'rabbitmq': cannot load the TLS files: {exc}") from None
    return context


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def describe(settings: Mapping[str, Any]) -> str:
    """``amqp://guest@host:5672/%2F (management http://host:15672)``: never a password."""
    try:
        ep, _ = endpoint(settings)
    except InvalidRequest:
        return "amqp://(invalid URL)"
    return f"{ep.display()} (management {ep.management_url})"
