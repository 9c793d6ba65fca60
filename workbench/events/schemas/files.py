"""Local schema files mapped to topics: raw Avro, Protobuf or JSON values without the wire header.

In a profile::

    [[profiles.legacy.schemas]]
    topic = "legacy.orders*"        # a topic name or a glob pattern
    file = "schemas/order.avsc"     # .avsc, .proto, .json (JSON Schema), or .desc/.pb (a descriptor set)
    message = "shop.Order"          # the Protobuf message (for .proto: the first message by default)
    part = "value"                  # or "key"

A relative ``file`` is read beside the profile file.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.events.schemas.formats import Codec, Mismatch, ProtobufCodec, SchemaError, SchemaText, parse

_FORMAT_BY_SUFFIX = {".avsc": "avro", ".proto": "protobuf", ".json": "json"}
_DESCRIPTOR_SUFFIXES = (".desc", ".pb", ".protoset", ".binpb")
_KEYS = {"topic", "file", "message", "part"}


@dataclass(frozen=True)
class FileRule:
    """One ``[[profiles.NAME.schemas]]`` entry."""

    topic: str
    file: Path
    message: str | None = None
    part: str = "value"

    def matches(self, topic: str, part: str) -> bool:
        return part == self.part and (topic == self.topic or fnmatch.fnmatchcase(topic, self.topic))

    def load(self) -> tuple[Codec, list[int] | None]:
        """The codec, and the Protobuf message indexes to decode with (None for other formats)."""
        suffix = self.file.suffix.lower()
        where = f"schema file {self.file}"
        try:
            if suffix in _DESCRIPTOR_SUFFIXES:
                if not self.message:
                    raise ConfigError(f'{where}: a descriptor set needs message = "package.Message"')
                return ProtobufCodec.from_descriptor_set(self.file.read_bytes(), self.message)
            fmt = _FORMAT_BY_SUFFIX.get(suffix)
            if fmt is None:
                raise ConfigError(
                    f"{where}: unknown kind of schema file",
                    hint="use .avsc (Avro), .proto (Protobuf), .json (JSON Schema) or .desc (descriptor set)",
                )
            codec = parse(SchemaText(fmt, self.file.read_text(encoding="utf-8")), name=self.file.name)  # type: ignore[arg-type]
            if isinstance(codec, ProtobufCodec):
                return codec, codec._indexes_of(self.message)
            return codec, None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
        except (SchemaError, Mismatch) as exc:  # Mismatch: the message is not in the .proto
            raise ConfigError(f"{where}: {exc}") from None


def parse_rules(raw: Any, base: Path | None, where: str) -> tuple[FileRule, ...]:
    """The ``schemas`` list of a profile, checked (``where`` names the file and profile in errors)."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'schemas' must be a list of tables ([[profiles.NAME.schemas]])")
    rules = []
    for n, entry in enumerate(raw, 1):
        at = f"{where}, schemas entry {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a table")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(
                f"{at}: unknown field {sorted(unknown)[0]!r}", hint=f"expected: {', '.join(sorted(_KEYS))}"
            )
        for key in ("topic", "file"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError(f"{at}: field {key!r} must be a non-empty string")
        if entry.get("part", "value") not in ("value", "key"):
            raise ConfigError(f'{at}: field \'part\' must be "value" or "key"')
        if "message" in entry and not isinstance(entry["message"], str):
            raise ConfigError(f"{at}: field 'message' must be a string")
        path = Path(entry["file"]).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        rules.append(FileRule(entry["topic"], path, entry.get("message"), entry.get("part", "value")))
    return tuple(rules)
