"""Options of the Kafka adapter: the profile's keys, ``kafka://`` URLs, librdkafka client configs.

Everything here is pure (no client is created) so it can be unit-tested without a broker.

Profile options
    ``bootstrap.servers``  ``host:port[,host:port...]`` (default ``localhost:9092``)
    ``timeout_s``          connection / metadata / admin request timeout in seconds (default 10)
    ``delivery_timeout_s`` how long a published event may take to be confirmed (default 30)
    any librdkafka property, passed through to every client: a key that contains a dot
    (``security.protocol``, ``sasl.mechanism``, ``ssl.ca.location``, ``linger.ms`` ...) or one of
    :data:`DOTLESS_PROPERTIES`. Other keys are tolerated and ignored.

Secrets (:data:`SECRET_PROPERTIES`, and any property whose name says password/secret/token/key
material) are never shown by :func:`describe` and are scrubbed from error messages.

TLS: the broker's certificate and host name are verified (:data:`TLS_DEFAULTS`, librdkafka's own
defaults made explicit). Turning that off takes an explicit property
(``enable.ssl.certificate.verification = false`` or ``ssl.endpoint.identification.algorithm =
"none"``), and :func:`option_warnings` says so each time the profile is used, as it does for a key
that is neither an option nor a librdkafka property (ignored, probably a typo).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from workbench.broker import InvalidRequest, Option

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_PORT = 9092

#: librdkafka properties without a dot that may still be passed through.
DOTLESS_PROPERTIES = frozenset({"debug", "acks", "partitioner"})

#: librdkafka properties that hold secrets.
SECRET_PROPERTIES = frozenset(
    {
        "sasl.password",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl_key",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
    }
)
_SECRET_NAME = re.compile(r"pass(word|wd|phrase)?|secret|token|credential|private", re.IGNORECASE)

#: Our own options (never sent to librdkafka).
OWN_OPTIONS = frozenset({"timeout_s", "delivery_timeout_s"})

OPTIONS: tuple[Option, ...] = (
    Option("bootstrap.servers", str, DEFAULT_BOOTSTRAP, help="host:port[,host:port...]"),
    Option("timeout_s", float, 10.0, positive=True, help="connect / metadata / admin request timeout (seconds)"),
    Option("delivery_timeout_s", float, 30.0, positive=True, help="how long a published event may wait for its ack"),
    Option("security.protocol", str, None, help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    Option("sasl.mechanism", str, None, help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER ..."),
    Option("sasl.username", str, None, help="SASL user"),
    Option("sasl.password", str, None, secret=True, help="SASL password"),
    Option("ssl.ca.location", str, None, help="CA certificate(s) file (PEM)"),
    Option("ssl.certificate.location", str, None, help="client certificate (mTLS, PEM)"),
    Option("ssl.key.location", str, None, help="client private key (mTLS, PEM)"),
    Option("ssl.key.password", str, None, secret=True, help="passphrase of the client key"),
    Option("sasl.oauthbearer.client.secret", str, None, secret=True, help="OIDC client secret"),
    Option("client.id", str, None, help="client id shown to the broker (default event-workbench)"),
)


#: Verify the broker's certificate and that it names the host connected to. Profile properties
#: override these (and :func:`option_warnings` then warns).
TLS_DEFAULTS: dict[str, Any] = {
    "enable.ssl.certificate.verification": True,
    "ssl.endpoint.identification.algorithm": "https",
}


def option_warnings(options: Mapping[str, Any]) -> list[str]:
    """Keys that are ignored (probably typos) and TLS verification turned off; never a value."""
    warnings = []
    known = sorted({o.name for o in OPTIONS} | OWN_OPTIONS)
    for name in options:
        if isinstance(name, str) and name not in known and not is_client_property(name):
            close = difflib.get_close_matches(name, known, n=1)
            warnings.append(
                f"option {name!r} is neither a Kafka adapter option nor a librdkafka property (those have a "
                f"dot): ignored{f' (did you mean {close[0]!r}?)' if close else ''}"
            )
    if _is_false(options.get("enable.ssl.certificate.verification")):
        warnings.append(
            "TLS certificate verification is off (enable.ssl.certificate.verification = false): "
            "anyone on the network path can pose as the broker"
        )
    algorithm = options.get("ssl.endpoint.identification.algorithm")
    if isinstance(algorithm, str) and algorithm.strip().lower() == "none":
        warnings.append(
            "TLS host name verification is off (ssl.endpoint.identification.algorithm = none): "
            "any certificate the CA signed is accepted for this broker"
        )
    return warnings


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"))


def is_secret(name: str) -> bool:
    return name in SECRET_PROPERTIES or bool(_SECRET_NAME.search(name))


def is_client_property(name: str) -> bool:
    """A key that is handed to librdkafka as it is."""
    return name not in OWN_OPTIONS and ("." in name or name in DOTLESS_PROPERTIES)


def client_properties(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The librdkafka properties among ``settings`` (unset ones left out)."""
    props: dict[str, Any] = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not is_client_property(key) or value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise InvalidRequest(
                f"adapter 'kafka': option {key!r} must be a string, number or boolean, got {type(value).__name__}"
            )
        props[key] = value
    return props


def secret_values(settings: Mapping[str, Any]) -> list[str]:
    """The secret values to scrub from any text shown to the user."""
    return [
        str(v)
        for k, v in settings.items()
        if isinstance(k, str) and is_secret(k) and v not in (None, "") and len(str(v)) >= 3
    ]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def options_from_url(url: str) -> dict[str, Any]:
    """``kafka://[user[:password]@]host[:port][,host[:port]...][/][?property=value&...]``.

    User and password become ``sasl.username`` / ``sasl.password``; with credentials and no
    ``security.protocol`` the protocol defaults to ``SASL_SSL`` (never send a password in clear by
    guess) and ``sasl.mechanism`` to ``PLAIN``. Query keys are librdkafka properties (or
    ``timeout_s`` / ``delivery_timeout_s``, converted to float).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "kafka":
        raise InvalidRequest("not a Kafka URL (expected kafka://host:9092[,host2:9092][?property=value])")
    # urlsplit cannot parse a comma-separated host list with ports: split by hand.
    netloc, _, query = rest.partition("?")
    netloc = netloc.split("#", 1)[0].rstrip("/")
    if "/" in netloc:
        raise InvalidRequest("a Kafka URL has no path: kafka://host:9092[,host2:9092][?property=value]")
    options: dict[str, Any] = {}
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, has_password, password = userinfo.partition(":")
        if user:
            options["sasl.username"] = unquote(user)
        if has_password:
            options["sasl.password"] = unquote(password)
    hosts = []
    for host in filter(None, (h.strip() for h in netloc.split(","))):
        if host.startswith("["):  # [ipv6]:port
            if "]:" not in host:
                host = f"{host}:{DEFAULT_PORT}"
        elif ":" not in host:
            host = f"{host}:{DEFAULT_PORT}"
        _check_port(host)
        hosts.append(host)
    if hosts:
        options["bootstrap.servers"] = ",".join(hosts)
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in OWN_OPTIONS:
            try:
                options[key] = float(value)
            except ValueError:
                raise InvalidRequest(f"Kafka URL: {key} must be a number of seconds") from None
        else:
            options[key] = value
    if "sasl.username" in options or "sasl.password" in options:
        options.setdefault("security.protocol", "SASL_SSL")
        options.setdefault("sasl.mechanism", "PLAIN")
    return options


def _check_port(host: str) -> None:
    port = host.rsplit(":", 1)[1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"Kafka URL: bad port in {host.split('@')[-1]!r}")


def describe(settings: Mapping[str, Any]) -> str:
    """``kafka://host:9092 (SASL_SSL, SCRAM-SHA-512 as alice)``: never a secret."""
    text = f"kafka://{settings.get('bootstrap.servers') or DEFAULT_BOOTSTRAP}"
    details = []
    protocol = settings.get("security.protocol")
    if protocol and str(protocol).upper() != "PLAINTEXT":
        details.append(str(protocol))
    mechanism = settings.get("sasl.mechanism") or settings.get("sasl.mechanisms")
    user = settings.get("sasl.username")
    if mechanism or user:
        details.append(f"{mechanism or 'SASL'}{f' as {user}' if user else ''}")
    return f"{text} ({', '.join(details)})" if details else text


def url_host_list(settings: Mapping[str, Any]) -> str:
    return str(settings.get("bootstrap.servers") or DEFAULT_BOOTSTRAP)
