"""Why a broker's certificate was refused: not signed by a CA the profile trusts, not valid for the
host name connected to, or out of its validity period.

librdkafka reports all of these with one message ("certificate verify failed: broker certificate
could not be verified, verify that ssl.ca.location is correctly configured ..."): OpenSSL's verify
result, which tells them apart, is not in it. So once librdkafka has refused a certificate, the
same check is made again with Python's ``ssl`` module (the same OpenSSL), against the same
address, with the same CA and the same host name rule, and its verify code says which it was.
One TLS handshake, bounded by a timeout; no SASL, no Kafka request.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: OpenSSL's X509_V_ERR_* codes, by what they mean to the user.
_UNTRUSTED = {
    2,  # unable to get issuer certificate
    18,  # self-signed certificate
    19,  # self-signed certificate in certificate chain
    20,  # unable to get local issuer certificate
    21,  # unable to verify the first certificate
}
_WRONG_NAME = {62, 64}  # host name mismatch, IP address mismatch
_OUT_OF_DATE = {9, 10}  # not yet valid, expired

#: "sasl_ssl://127.0.0.1:19192/bootstrap: SSL handshake failed ..." -> 127.0.0.1:19192
_BROKER_NAME = re.compile(r"\b[a-z_]+://(?P<address>[^/\s]+)/(?:bootstrap|\d+)\b", re.IGNORECASE)


def is_verify_failure(text: str | None) -> bool:
    """librdkafka's words for a certificate it refused (OpenSSL 3 names the error by its code)."""
    return bool(text) and ("certificate verify failed" in str(text) or "0A000086" in str(text))


def broker_address(text: str | None) -> str | None:
    """The ``host:port`` of the broker a librdkafka message is about, if it names one."""
    found = _BROKER_NAME.search(text or "")
    return found.group("address") if found else None


@dataclass(frozen=True)
class Refusal:
    """Why the certificate of ``address`` was refused, in the user's terms."""

    address: str
    kind: str  # "untrusted" | "host name" | "validity" | "other"
    detail: str  # OpenSSL's own words, e.g. "Hostname mismatch, certificate is not valid for '127.0.0.1'."


def diagnose(address: str, settings: Mapping[str, Any], timeout: float) -> Refusal | None:
    """Handshake with ``address`` as the profile would (its CA, its host name rule) and say why the
    certificate is refused; None when it is not (then librdkafka refused it for another reason) or
    when the broker cannot be reached for the check."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        context = _context(settings)
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
        kind = (
            "untrusted"
            if code in _UNTRUSTED
            else "host name"
            if code in _WRONG_NAME
            else "validity"
            if code in _OUT_OF_DATE
            else "other"
        )
        return Refusal(address, kind, str(exc.verify_message).rstrip("."))
    except (OSError, ValueError):
        return None


def _context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    """An SSL context that verifies like librdkafka configured with ``settings``."""
    location = settings.get("ssl.ca.location")
    pem = settings.get("ssl.ca.pem")
    if isinstance(location, str) and location and location != "probe":
        if os.path.isdir(location):
            context = ssl.create_default_context(capath=location)
        else:
            context = ssl.create_default_context(cafile=location)
    elif isinstance(pem, str) and pem:
        context = ssl.create_default_context(cadata=pem)
    else:
        context = ssl.create_default_context()  # the system's CA store, as librdkafka uses it
    algorithm = str(settings.get("ssl.endpoint.identification.algorithm", "https")).strip().lower()
    context.check_hostname = algorithm != "none"
    return context
