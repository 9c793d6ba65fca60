"""Encode JSON input with a registered schema, into the Confluent wire format (``publish --value-schema``).

The schema is chosen once, before the input is read (``SUBJECT``, ``SUBJECT:VERSION`` or
``SUBJECT:latest``); each event is checked against it while the whole input is checked, so a line
that does not fit is named (file, line, field) and nothing is published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from workbench.errors import UsageError
from workbench.events.schemas import wire
from workbench.events.schemas.formats import Codec, Mismatch, parse
from workbench.events.schemas.registry import Registered, Registry


def parse_spec(spec: str, option: str) -> tuple[str, int | Literal["latest"]]:
    """``orders-value`` / ``orders-value:3`` / ``orders-value:latest`` -> (subject, version)."""
    subject, colon, version = spec.rpartition(":")
    if not colon or not (version == "latest" or version.isdigit()):
        subject, version = spec, "latest"
    if not subject:
        raise UsageError(f"{option} {spec!r}: no subject", hint=f"e.g. {option} orders-value:latest")
    return subject, (version if version == "latest" else int(version))  # type: ignore[return-value]


@dataclass(frozen=True)
class SchemaEncoder:
    """One registered schema, ready to encode JSON values (``message``: the Protobuf message)."""

    registered: Registered
    codec: Codec
    message: str | None = None

    @classmethod
    def lookup(cls, registry: Registry, spec: str, option: str, message: str | None = None) -> SchemaEncoder:
        subject, version = parse_spec(spec, option)
        registered = registry.version(subject, version)
        codec = parse(registered.schema, name=subject)
        encoder = cls(registered, codec, message)
        if message is not None:
            codec.template(message)  # an unknown message name fails now, before any input is read
        return encoder

    def encode(self, data: bytes | None) -> bytes:
        """JSON text -> wire bytes; raises :class:`Mismatch` (with the field) when it does not fit."""
        if data is None:
            raise Mismatch("null cannot be encoded with a schema")
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise Mismatch(f"not JSON, so it cannot be encoded with the schema: {exc}") from None
        payload, indexes = self.codec.encode(value, self.message)
        return wire.frame(self.registered.id, payload, indexes)

    def describe(self) -> str:
        r = self.registered
        return f"{self.codec.format} schema {r.subject} v{r.version} (id {r.id})"
