"""JSON Schema through jsonschema: payloads are JSON; encoding validates (references resolved by name)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workbench.events.schemas.base import Codec, Format, Mismatch, SchemaError, SchemaText, flatten

# --------------------------------------------------------------------------- JSON Schema


class JsonSchemaCodec(Codec):
    format: Format = "json"

    def __init__(self, schema: SchemaText) -> None:
        try:
            self.raw = json.loads(schema.text)
            self._refs = [(name, json.loads(ref.text)) for name, ref in flatten(schema.references)]
        except ValueError as exc:
            raise SchemaError(f"invalid JSON Schema: {exc}") from None
        self._validator: Any = None

    def validator(self) -> Any:
        if self._validator is None:
            import jsonschema
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            registry: Registry = Registry().with_resources(
                (name, Resource.from_contents(body, default_specification=DRAFT202012)) for name, body in self._refs
            )
            cls = jsonschema.validators.validator_for(self.raw)
            try:
                cls.check_schema(self.raw)
            except jsonschema.SchemaError as exc:
                raise SchemaError(f"invalid JSON Schema: {exc.message}") from None
            self._validator = cls(self.raw, registry=registry)
        return self._validator

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        try:
            return json.loads(bytes(payload), parse_constant=_reject_constant), None
        except (ValueError, RecursionError) as exc:
            raise SchemaError(f"not valid JSON: {exc}") from None

    def encode(self, value: Any, message: str | None = None) -> tuple[bytes, list[int] | None]:
        import jsonschema

        try:
            error = jsonschema.exceptions.best_match(self.validator().iter_errors(value))
        except jsonschema.exceptions.RefResolutionError as exc:  # pragma: no cover - depends on the schema
            raise Mismatch(f"the JSON Schema has a reference that does not resolve: {exc}") from None
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or None
            raise Mismatch(error.message, where)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), None

    def template(self, message: str | None = None) -> Any:
        return _json_sample(self.raw, dict(self._refs))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_sample(schema: Any, refs: Mapping[str, Any], depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > 20:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.partition("#")[0] in refs and ref.partition("#")[2] in ("", "/"):
        return _json_sample(refs[ref.partition("#")[0]], refs, depth + 1)  # "money.json" or "money.json#"
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: _json_sample(sub, refs, depth + 1) for name, sub in schema.get("properties", {}).items()}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}.get(str(kind))
