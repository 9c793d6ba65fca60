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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from workbench.broker import Event
from workbench.errors import BadInput, ConfigError, ReadOnlyError
from workbench.events.codecs import Decoded, decode

__all__ = [
    "FILTER_VIEW",
    "ORIGINAL",
    "REDACTED_HEADER",
    "filter_view_of",
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
#: Event metadata: what filters see when a rule is filterable: a callable giving the event with only the
#: other rules applied (made when a filter asks, see filter_view_of).
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
    equal values then hash equal within one run only).

    Every read a person sees goes through :meth:`redact`, so it is written for speed: rule paths and
    callables are prepared once, JSON is parsed with orjson, and a string is only rewritten by the
    patterns when one of them is found in it."""

    def __init__(self, rules: Sequence[MaskRule], salt: bytes | None = None, *, mark: bool = True) -> None:
        self.rules = tuple(rules)
        self._salt = salt or secrets.token_bytes(16)
        self._mark = mark
        self._fields = {"key": _Node(), "value": _Node()}  # the field rules of each, as one tree
        for rule in self.rules:
            if rule.kind == "field":
                root, *rest = rule.path
                self._fields[root].add(rest, functools.partial(self._mask, rule=rule))
        self._headers = {r.target.casefold(): r for r in self.rules if r.kind == "header"}
        patterns = [r for r in self.rules if r.kind == "pattern"]
        self._subs = [(re.compile(r.target).sub, functools.partial(self._replace, rule=r)) for r in patterns]
        self._found = _any_of([r.target for r in patterns])
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
            extra: dict[str, Any] = {}
            if viewer is not None:  # made only if a filter asks (filter_view_of)
                extra[FILTER_VIEW] = functools.partial(viewer.redact, event)
            if keep_original:
                extra[ORIGINAL] = event
            out.append(self.redact(event, extra))
        return out

    def redact(self, event: Event, extra: Mapping[str, Any] | None = None) -> Event:
        """The redacted copy of ``event`` (``extra``: metadata to add to it)."""
        found = event.metadata.get("decoded_key") if event.metadata else None
        key, key_decoded = self._part(found, event.key, "key")
        found = event.metadata.get("decoded_value") if event.metadata else None
        value, value_decoded = self._part(found, event.value, "value")
        headers = tuple((name, self._header(name, raw)) for name, raw in event.headers if name != REDACTED_HEADER)
        metadata = {**event.metadata, **extra} if extra else dict(event.metadata)
        for name, decoded in (("decoded_key", key_decoded), ("decoded_value", value_decoded)):
            if decoded is not None:
                metadata[name] = decoded
            else:
                metadata.pop(name, None)
        if self._mark:
            headers += (_MARK,)
        return Event(event.topic, event.partition, event.offset, event.timestamp, key, value, headers, metadata)

    # ---------------------------------------------------------------- parts

    def _part(self, decoded: Decoded | None, raw: bytes | None, root: str) -> tuple[bytes | None, Decoded | None]:
        """(bytes, the decoded value to keep in metadata) of a key or value: JSON is masked member by
        member; text and bytes by patterns (a rule on the whole key or value masks it whole).
        ``decoded``: what a schema decoded, else None (the bytes are decoded here)."""
        if raw is None and decoded is None:
            return None, None
        if decoded is None:
            decoded = _decode(raw)
        schema, fields = decoded.schema, self._fields[root]
        whole = fields.mask  # a rule on the whole key or value
        if decoded.kind == "json":
            masked = _apply(decoded.value, fields)  # field rules first (on the original values),
            if self._subs:  # then patterns on what they left
                masked = self._leaves(masked)
            if masked == decoded.value and type(masked) is type(decoded.value):
                return raw, decoded if schema else None
            return orjson.dumps(masked, default=str), Decoded("json", masked, schema) if schema else None
        if decoded.kind == "text":
            shown = str(whole(decoded.value)) if whole else self._sub(decoded.value)
            return shown.encode("utf-8"), None
        # binary (or a schema that failed): its text, surrogate-escaped, so that untouched bytes stay exact
        if whole:
            return str(whole(bytes(raw or b""))).encode(), None
        text = bytes(raw or b"").decode("utf-8", "surrogateescape")
        return self._sub(text).encode("utf-8", "surrogateescape"), None

    def _leaves(self, node: Any) -> Any:
        """Patterns applied to every string (and number) of a JSON value, but not to replacements."""
        kind = type(node)
        if kind is str:
            return self._sub(node)
        if kind is dict:
            changed = None
            for k, v in node.items():
                masked = self._leaves(v)
                if masked is not v:
                    if changed is None:
                        changed = dict(node)
                    changed[k] = masked
            return node if changed is None else changed
        if kind is list:
            items = [self._leaves(v) for v in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) else items
        if kind is int or kind is float:
            text = str(node)
            masked = self._sub(text)
            return node if masked is text else masked
        return node  # None, a bool, or a replacement already made (_Masked)

    def _header(self, name: str, raw: bytes) -> bytes:
        rule = self._headers.get(name.casefold())
        if rule is not None:
            return str(self._mask(bytes(raw), rule)).encode()
        if not self._subs:
            return raw
        text = bytes(raw).decode("utf-8", "surrogateescape")
        return self._sub(text).encode("utf-8", "surrogateescape")

    def _sub(self, text: str) -> str:
        """``text`` with every pattern's matches replaced (the same object when nothing matched)."""
        if self._found is not None and self._found(text) is None:
            return text
        for sub, replace_match in self._subs:
            text = sub(replace_match, text)
        return text

    def _replace(self, match: re.Match[str], rule: MaskRule) -> str:
        return str(self._mask(match.group(), rule))

    def _mask(self, found: Any, rule: MaskRule) -> Any:
        """The replacement of one value under ``rule``'s style (a JSON null stays null; a value an
        earlier rule replaced stays as it is: the more specific rule, or the first, wins)."""
        if found is None or type(found) is _Masked:
            return found
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


def _decode(raw: bytes | None) -> Decoded:
    """:func:`~workbench.events.codecs.decode` of a key or value, JSON parsed by orjson first (the
    common case, several times faster); anything orjson refuses is judged by ``decode`` itself."""
    if raw and raw[:1] in b'{["':
        try:
            return Decoded("json", orjson.loads(raw))
        except orjson.JSONDecodeError:
            pass
    return decode(raw)


def _any_of(patterns: list[str]) -> Callable[[str], re.Match[str] | None] | None:
    """One search for "does any pattern occur?" (None: no patterns, or they do not combine)."""
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns)).search
    except re.error:  # e.g. a global flag inside one of them: each is tried on its own then
        return None


class _Node:
    """The field rules of a key or value as one tree of path parts, applied in one walk: ``mask``
    where a rule ends here, ``star`` for ``*``, ``named`` for the other parts."""

    __slots__ = ("mask", "named", "star")

    def __init__(self) -> None:
        self.mask: Callable[[Any], Any] | None = None
        self.star: _Node | None = None
        self.named: dict[str, _Node] = {}

    def add(self, path: Sequence[str], mask: Callable[[Any], Any]) -> None:
        node = self
        for part in path:
            if part == "*":
                node.star = node.star or _Node()
                node = node.star
            else:
                node = node.named.setdefault(part, _Node())
        node.mask = node.mask or mask


def _apply(value: Any, node: _Node, *, star: bool = True) -> Any:
    """``value`` with the rules of ``node`` applied (the same object where nothing changed). A list
    met where the path goes on is walked item by item; ``*`` is every member or item."""
    if node.mask is not None:
        return node.mask(value)
    kind = type(value)
    if kind is dict:
        changed = None
        for part, child in node.named.items():
            if part in value:
                old = value[part]
                new = _apply(old, child)
                if new is not old:
                    changed = changed or dict(value)
                    changed[part] = new
        result = value if changed is None else changed
        if star and node.star is not None:
            each = node.star
            return {k: _apply(v, each) for k, v in result.items()}
        return result
    if kind is list:
        items = []
        for item in value:
            if node.named:
                item = _apply(item, node, star=False)
            if star and node.star is not None:
                item = _apply(item, node.star)
            items.append(item)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


# --------------------------------------------------------------------------- the marker


def filter_view_of(event: Event) -> Event:
    """What filters see of an event: its filter view where a rule is filterable, else the event."""
    view = event.metadata.get(FILTER_VIEW) if event.metadata else None
    return event if view is None else view()


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
