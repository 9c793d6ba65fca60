"""What every schema format shares: a schema as text (with its references), the errors, the codec interface."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["avro", "protobuf", "json"]
FORMATS: tuple[Format, ...] = ("avro", "protobuf", "json")


class SchemaError(ValueError):
    """A schema cannot be parsed, or a payload does not decode with it; the message says why."""


class Mismatch(ValueError):
    """A JSON value does not fit a schema: ``field`` is where (``customer.email``), or None for the whole."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SchemaText:
    """A schema as a registry or a file gives it: its format, its text, and what it references
    (``(name, schema)`` pairs: the name is the import path of a ``.proto``, the full name of an Avro
    type, or the ``$ref`` of a JSON schema)."""

    format: Format
    text: str
    references: tuple[tuple[str, SchemaText], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """A plain form for capture files (the schemas an incident file needs to decode offline)."""
        return {
            "format": self.format,
            "text": self.text,
            "references": [[name, ref.to_json()] for name, ref in self.references],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SchemaText:
        fmt = data.get("format")
        if fmt not in FORMATS or not isinstance(data.get("text"), str):
            raise SchemaError(f"not a stored schema: format {fmt!r}")
        refs = tuple((str(name), cls.from_json(ref)) for name, ref in data.get("references") or ())
        return cls(fmt, data["text"], refs)


def flatten(references: Iterable[tuple[str, SchemaText]]) -> list[tuple[str, SchemaText]]:
    """Every referenced schema once, dependencies before their users."""
    seen: dict[str, SchemaText] = {}

    def visit(name: str, schema: SchemaText) -> None:
        if name in seen:
            return
        for ref_name, ref in schema.references:
            visit(ref_name, ref)
        seen[name] = schema

    for name, schema in references:
        visit(name, schema)
    return list(seen.items())


class Codec:
    """A parsed schema."""

    format: Format

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        """``(plain JSON value, message type name or None)``; raises :class:`SchemaError`."""
        raise NotImplementedError

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        """``(payload, Protobuf message indexes or None)``; raises :class:`Mismatch`."""
        raise NotImplementedError

    def template(self, message: str | None = None) -> Any:
        """A sample value with every field, for a publish form to start from."""
        raise NotImplementedError


def join_path(path: str, name: str) -> str:
    """``total`` + ``amount`` -> ``total.amount`` (the field paths mismatches name)."""
    return f"{path}.{name}" if path else name
