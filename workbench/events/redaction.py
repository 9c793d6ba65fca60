"""Masking what must not leave the terminal: the ``[mask]`` rules of workbench.toml, applied to events.

One place does it: :meth:`Redactor.redact` turns an event into its redacted copy (key, value and
headers masked) that carries the header ``workbench-redacted: true``, and every read a person or a
file sees goes through it (``service.connect`` wraps the connection). The marker travels with the
event into JSONL, saved and captured files; ``publish --file``, ``replay`` and the publish engine
refuse an event that carries it, so a redacted copy is never sent as if it were the original.

Rules (one ``[mask]`` table for every profile)::

    [mask]
    style = "fixed"                          # fixed (****), last4 (****1234), hash (equal stays equal)
    salt = "${WORKBENCH_MASK_SALT}"          # the hash's key: equal hashes across runs and files
    fields = ["value.customer.email", "value.card.*", "key.ssn"]
    headers = ["authorization"]
    patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']

    [[mask.rules]]                           # one rule with its own style, or filterable
    field = "value.customer.id"
    style = "hash"
    filterable = true

A field path starts at ``value`` or ``key`` (``headers.NAME`` is a header rule); ``*`` (or
``[*]``) is every member of an object or item of a list, and a list met on the way is walked item by
item. Patterns are regular expressions on text: every JSON string (and number), text values, keys
and header values. Filters see what a rule allows: a masked field is not ``filterable`` unless the
rule says so, so nobody can probe a masked value by filtering on it.

Pure: no broker library, no Textual.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from workbench.broker import Event
from workbench.errors import BadInput, ConfigError, ReadOnlyError
from workbench.events.codecs import Decoded, decoded_key, decoded_value

__all__ = [
    "FILTER_VIEW",
    "ORIGINAL",
    "REDACTED_HEADER",
    "MaskRule",
    "MaskRules",
    "Redactor",
    "is_redacted",
    "parse_mask",
    "refuse_redacted",
]

#: The header a redacted event carries (and that a redacted envelope keeps): never published.
REDACTED_HEADER = "workbench-redacted"
_MARK = (REDACTED_HEADER, b"true")
#: Event metadata: what filters see when a rule is filterable (the event with only the other rules applied).
FILTER_VIEW = "filter_view"
#: Event metadata: the original event, kept where the profile does not require redaction (TUI copy original).
ORIGINAL = "original"

Style = Literal["fixed", "last4", "hash"]
STYLES: tuple[str, ...] = ("fixed", "last4", "hash")
FIXED = "****"
_RULE_KINDS = ("field", "header", "pattern")


@dataclass(frozen=True)
class MaskRule:
    """One rule: a field path, a header name or a pattern, with its style."""

    kind: Literal["field", "header", "pattern"]
    target: str  # as written: the path, the header name or the expression
    style: Style = "fixed"
    filterable: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        """``value.card[*].number`` -> ``("value", "card", "*", "number")``."""
        return tuple(self.target.replace("[*]", ".*").split("."))

    def describe(self) -> str:
        return f"{self.kind} {self.target!r} ({self.style}{', filterable' if self.filterable else ''})"


@dataclass(frozen=True)
class MaskRules:
    """The ``[mask]`` table, checked; ``salt`` still holds ``${ENV}`` references (expanded when used)."""

    rules: tuple[MaskRule, ...]
    salt: str | None = None
    where: str = "[mask]"

    def redactor(self, salt: str | None = None) -> Redactor:
        """``salt``: this table's salt with its ``${ENV}`` references expanded (config does that)."""
        return Redactor(self.rules, salt.encode() if salt else None)


def parse_mask(raw: Any, where: str) -> MaskRules | None:
    """The ``[mask]`` table of a profile file, every mistake named with ``where`` and the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    known = {"style", "salt", "fields", "headers", "patterns", "rules"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}: unknown field {key!r}", hint=f"expected: {', '.join(sorted(known))}")
    style = _style(raw.get("style", "fixed"), f"{where}: style")
    salt = raw.get("salt")
    if salt is not None and (not isinstance(salt, str) or not salt):
        raise ConfigError(f'{where}: salt must be a non-empty string (e.g. salt = "${{WORKBENCH_MASK_SALT}}")')
    rules: list[MaskRule] = []
    for plural, kind in (("fields", "field"), ("headers", "header"), ("patterns", "pattern")):
        items = raw.get(plural, [])
        if not isinstance(items, list):
            raise ConfigError(f"{where}: {plural} must be a list of strings")
        for i, item in enumerate(items):
            rules.append(_rule(kind, item, style, False, f"{where}: {plural}[{i}]"))
    entries = raw.get("rules", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: rules must be an array of tables ([[mask.rules]])")
    for i, entry in enumerate(entries):
        rules.append(_rule_table(entry, style, f"{where}: rules[{i}]"))
    return MaskRules(tuple(rules), salt, where) if rules else None


def _rule_table(entry: Any, default_style: Style, where: str) -> MaskRule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table with one of field, header or pattern")
    unknown = set(entry) - {*_RULE_KINDS, "style", "filterable"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {sorted(unknown)[0]!r}", hint="expected: field|header|pattern, style, filterable"
        )
    kinds = [k for k in _RULE_KINDS if k in entry]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: needs exactly one of field, header or pattern, got {len(kinds)}")
    filterable = entry.get("filterable", False)
    if not isinstance(filterable, bool):
        raise ConfigError(f"{where}: filterable must be true or false")
    style = _style(entry.get("style", default_style), f"{where}: style")
    return _rule(kinds[0], entry[kinds[0]], style, filterable, where)


def _rule(kind: str, target: Any, style: Style, filterable: bool, where: str) -> MaskRule:
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"{where}: {kind} must be a non-empty string")
    if kind == "field" and target.startswith("headers."):
        kind, target = "header", target.removeprefix("headers.")
    if kind == "field":
        root, *_ = target.split(".")
        if root not in ("value", "key") or any(not part for part in target.replace("[*]", ".*").split(".")):
            raise ConfigError(
                f"{where}: field {target!r} is not a path",
                hint="start with value or key, parts joined by dots, * for every member: value.card.*",
            )
    if kind == "pattern":
        try:
            re.compile(target)
        except re.error as exc:
            raise ConfigError(f"{where}: pattern {target!r} is not a regular expression: {exc}") from None
    return MaskRule(kind, target, style, filterable)  # type: ignore[arg-type]


def _style(value: Any, where: str) -> Style:
    if value not in STYLES:
        raise ConfigError(f"{where}: {value!r} is not a mask style", hint=f"one of: {', '.join(STYLES)}")
    return value


# --------------------------------------------------------------------------- applying


class Redactor:
    """Applies rules to events. ``salt`` keys the hash style (a random one per process without it:
    equal values then hash equal within one run only)."""

    def __init__(self, rules: Sequence[MaskRule], salt: bytes | None = None, *, mark: bool = True) -> None:
        self.rules = tuple(rules)
        self._salt = salt or secrets.token_bytes(16)
        self._mark = mark
        self._fields = {
            root: [r for r in rules if r.kind == "field" and r.path[0] == root] for root in ("key", "value")
        }
        self._headers = {r.target.casefold(): r for r in rules if r.kind == "header"}
        self._patterns = [(re.compile(r.target), r) for r in rules if r.kind == "pattern"]
        self._unfilterable: Redactor | None = None

    def for_filters(self) -> Redactor | None:
        """What filters see: None when every rule is unfilterable (the redacted event itself),
        else a redactor of the unfilterable rules only (no marker)."""
        if not any(r.filterable for r in self.rules):
            return None
        if self._unfilterable is None:
            self._unfilterable = Redactor([r for r in self.rules if not r.filterable], self._salt, mark=False)
        return self._unfilterable

    def redact_all(self, events: Iterable[Event], *, keep_original: bool = False) -> list[Event]:
        """Redacted copies; each carries its filter view where a rule is filterable, and the
        original when ``keep_original`` (never where the profile requires redaction)."""
        viewer = self.for_filters()
        out = []
        for event in events:
            redacted = self.redact(event)
            extra: dict[str, Any] = {}
            if viewer is not None:
                extra[FILTER_VIEW] = viewer.redact(event)
            if keep_original:
                extra[ORIGINAL] = event
            out.append(replace(redacted, metadata={**redacted.metadata, **extra}) if extra else redacted)
        return out

    def redact(self, event: Event) -> Event:
        key, key_decoded = self._part(decoded_key(event), event.key, self._fields["key"])
        value, value_decoded = self._part(decoded_value(event), event.value, self._fields["value"])
        headers = tuple((name, self._header(name, raw)) for name, raw in event.headers if name != REDACTED_HEADER)
        metadata = dict(event.metadata)
        for name, found in (("decoded_key", key_decoded), ("decoded_value", value_decoded)):
            if found is not None:
                metadata[name] = found
            else:
                metadata.pop(name, None)
        return replace(
            event, key=key, value=value, headers=headers + (_MARK,) if self._mark else headers, metadata=metadata
        )

    # ---------------------------------------------------------------- parts

    def _part(self, decoded: Decoded, raw: bytes | None, rules: list[MaskRule]) -> tuple[bytes | None, Decoded | None]:
        """(bytes, the decoded value to keep in metadata) of a key or value: JSON is masked member by
        member; text and bytes by patterns (a rule on the whole key or value masks it whole)."""
        schema = decoded.schema
        if decoded.kind == "null":
            return raw, None
        whole = next((r for r in rules if len(r.path) == 1), None)
        if decoded.kind == "json":
            masked = self._json(decoded.value, rules)
            if masked == decoded.value and type(masked) is type(decoded.value):
                return raw, decoded if schema else None
            return orjson.dumps(masked, default=str), Decoded("json", masked, schema) if schema else None
        if decoded.kind == "text":
            shown = str(self._mask(decoded.value, whole)) if whole else self._sub(decoded.value)
            return shown.encode("utf-8"), None
        # binary (or a schema that failed): its text, surrogate-escaped, so that untouched bytes stay exact
        if whole:
            return str(self._mask(bytes(raw or b""), whole)).encode(), None
        text = bytes(raw or b"").decode("utf-8", "surrogateescape")
        return self._sub(text).encode("utf-8", "surrogateescape"), None

    def _json(self, node: Any, rules: list[MaskRule]) -> Any:
        """Field rules first (on the original values), then patterns on what they left."""
        for rule in rules:
            node = _at(node, rule.path[1:], functools.partial(self._mask, rule=rule))
        return self._leaves(node) if self._patterns else node

    def _leaves(self, node: Any) -> Any:
        """Patterns applied to every string (and number) of a JSON value, but not to replacements."""
        if isinstance(node, _Masked):
            return node
        if isinstance(node, str):
            return self._sub(node)
        if isinstance(node, dict):
            return {k: self._leaves(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._leaves(v) for v in node]
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            text = str(node)
            masked = self._sub(text)
            return node if masked == text else masked
        return node

    def _header(self, name: str, raw: bytes) -> bytes:
        rule = self._headers.get(name.casefold())
        if rule is not None:
            return self._mask(bytes(raw), rule).encode()
        if not self._patterns:
            return raw
        text = bytes(raw).decode("utf-8", "surrogateescape")
        return self._sub(text).encode("utf-8", "surrogateescape")

    def _sub(self, text: str) -> str:
        for pattern, rule in self._patterns:
            text = pattern.sub(functools.partial(self._replace, rule=rule), text)
        return text

    def _replace(self, match: re.Match[str], rule: MaskRule) -> str:
        return str(self._mask(match.group(), rule))

    def _mask(self, found: Any, rule: MaskRule) -> Any:
        """The replacement of one value under ``rule``'s style (a JSON null stays null)."""
        if found is None:
            return None
        if isinstance(found, bytes):
            text = found.decode("utf-8", "surrogateescape")
            data = found
        else:
            text = found if isinstance(found, str) else json.dumps(found, sort_keys=True, default=str)
            data = text.encode("utf-8", "surrogateescape")
        if rule.style == "hash":
            return _Masked("hash:" + hmac.new(self._salt, data, hashlib.sha256).hexdigest()[:16])
        if rule.style == "last4" and isinstance(found, (str, int, bytes)) and len(text) > 4:
            return _Masked(FIXED + text[-4:])
        return _Masked(FIXED)


class _Masked(str):
    """A replacement already made: patterns leave it alone (orjson writes it as the string it is)."""

    __slots__ = ()


def _at(node: Any, path: tuple[str, ...], mask: Callable[[Any], Any]) -> Any:
    """``node`` with ``mask`` applied at ``path`` (a copy where something changed)."""
    if not path:
        return mask(node)
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        return [_at(item, rest if head == "*" else path, mask) for item in node]
    if isinstance(node, dict):
        if head == "*":
            return {k: _at(v, rest, mask) for k, v in node.items()}
        if head in node:
            return {**node, head: _at(node[head], rest, mask)}
    return node


# --------------------------------------------------------------------------- the marker


def is_redacted(headers: Iterable[tuple[str, Any]]) -> bool:
    return any(name == REDACTED_HEADER for name, _ in headers)


def refuse_redacted(events: Iterable[Any], where: Callable[[int], str]) -> None:
    """Raise BadInput naming the first event (``where(i)``) that is a redacted copy."""
    for i, event in enumerate(events):
        if is_redacted(event.headers):
            raise BadInput(
                f"{where(i)}: a redacted copy (header {REDACTED_HEADER}), not the original event: not published",
                hint="publish from an unredacted source (tail -o jsonl without --redact, capture without --redact)",
            )


def required_refusal(profile_name: str, action: str, source: str) -> ReadOnlyError:
    """The error of an action that would show or write original values under ``mask_required``."""
    return ReadOnlyError(
        f"profile {profile_name!r} requires redaction (mask_required = true): refusing to {action}",
        hint=f"add --redact (the [mask] rules of {source} are applied), or use a profile without mask_required",
    )
