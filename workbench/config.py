"""Profiles: which broker to talk to, with which options, and whether changes are allowed.

The profile file is TOML, looked up as ``./workbench.toml`` then ``<user config dir>/workbench.toml``
(``WORKBENCH_CONFIG`` names another file). Secrets come from the environment through ``${NAME}``,
which is expanded only for the profile actually used, so listing profiles never needs them.
No file at all means the embedded ``local`` adapter on the default file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.broker import InvalidRequest, check_options
from workbench.errors import ConfigError, ReadOnlyError
from workbench.events.redaction import MaskRules, Redactor, parse_mask
from workbench.events.schemas.files import FileRule
from workbench.events.schemas.registry import RegistrySettings

APP_NAME = "event-workbench"
CONFIG_NAME = "workbench.toml"
DEFAULT_ADAPTER = "local"
BUILTIN_SOURCE = "built-in default"
URL_SOURCE = "--broker"  # a profile made from a URL on the command line
MASK = "***"

_PROFILE_KEYS = {
    "broker": str,
    "adapter": str,
    "read_only": bool,
    "production": bool,
    "description": str,
    "mask_required": bool,
}
#: Profile fields about decoding (the app's, not the adapter's): kept raw until the profile is used.
_SCHEMA_KEYS: dict[str, type | tuple[type, ...]] = {
    "schema_registry": str,
    "schema_registry_user": str,
    "schema_registry_password": str,
    "schema_registry_ca": str,
    "schema_registry_timeout_s": (int, float),
    "schemas": list,
}
#: A quick-connect URL may name the registry: kafka://host:9092?schema_registry=http://registry:8081
URL_REGISTRY_PARAM = "schema_registry"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|credential|api[_.-]?key|private|\.pem$|oauthbearer\.config|jaas", re.IGNORECASE
)


def user_config_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def default_local_path() -> Path:
    """The embedded event log used when nothing is configured (its directory is created)."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, ensure_exists=True) / "events.db"


@dataclass(frozen=True)
class Profile:
    """A named connection. ``options`` still hold ``${ENV}`` references until :meth:`resolve`."""

    name: str
    adapter: str | None
    broker: str | None = field(default=None, repr=False)  # may hold a password
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    schemas: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the _SCHEMA_KEYS fields, raw
    read_only: bool = False
    production: bool = False
    description: str = ""
    #: Every event shown or written is redacted by the file's [mask] rules; originals are refused.
    mask_required: bool = False
    source: str = BUILTIN_SOURCE
    warnings: tuple[str, ...] = field(default=(), repr=False, compare=False)  # about the file it came from
    #: Named filters (``--filter @name``): the file's [filters], then [profiles.NAME.filters] over them.
    filters: Mapping[str, NamedFilter] = field(default_factory=dict, repr=False, compare=False)
    #: [profiles.NAME.dead_letters] GROUP = "TOPIC-OR-QUEUE": where the group's failures go (`lag explain`).
    dead_letters: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: The file's [mask] rules (the same for every profile of the file).
    mask: MaskRules | None = field(default=None, repr=False, compare=False)

    def shown_broker(self) -> str:
        """Where this profile points, secrets masked."""
        if self.broker:
            return mask_url(self.broker)
        shown = ", ".join(f"{k}={v}" for k, v in mask_options(self.options).items())
        return f"{self.adapter}({shown})"

    def shown_registry(self) -> str | None:
        """The schema registry this profile decodes with, secrets masked (from the URL too)."""
        url = self.schemas.get("schema_registry")
        if url is None and self.broker:
            url = _url_param(self.broker, URL_REGISTRY_PARAM)
        return None if url is None else mask_url(url)

    def ensure_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"profile {self.name!r} is read-only: refusing to {action}",
                hint=f"use a profile without read_only = true ({self.source})",
            )


@dataclass(frozen=True)
class Config:
    profiles: Mapping[str, Profile]
    default_profile: str | None
    path: Path | None  # None: no file, the built-in default
    warnings: tuple[str, ...] = ()  # e.g. a password in a file other users can read
    # Tables that their own modules validate (with this file's path in every error):
    sagas: Mapping[str, Any] = field(default_factory=dict)  # [sagas.NAME] -> workbench.sagas.definitions
    correlation: Mapping[str, Any] = field(default_factory=dict)  # [correlation] -> workbench.events.correlation
    keys: Mapping[str, Any] = field(default_factory=dict)  # [keys] -> the TUI's key bindings
    filters: Mapping[str, NamedFilter] = field(default_factory=dict)  # [filters]: named filters for every profile
    mask: MaskRules | None = None  # [mask]: what is redacted, for every profile

    def profile(self, name: str | None) -> Profile:
        chosen = name or self.default_profile
        if chosen is None:
            if not self.profiles:
                return builtin_profile()
            if len(self.profiles) == 1:
                return next(iter(self.profiles.values()))
            raise ConfigError(
                f"{self.path}: several profiles and no default_profile",
                hint=f"pass --profile with one of: {', '.join(sorted(self.profiles))}",
            )
        if chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            where = self.path or "no profile file"
            raise ConfigError(f"unknown profile {chosen!r} ({where})", hint=f"known profiles: {known}")
        return self.profiles[chosen]


def builtin_profile() -> Profile:
    return Profile(name="default", adapter=DEFAULT_ADAPTER, options={"path": str(default_local_path())})


def url_profile(url: str) -> Profile:
    """A profile for ``--broker URL`` (quick connect, no file)."""
    return Profile(name="(--broker)", adapter=None, broker=url, source=URL_SOURCE)


def find_config_file() -> Path | None:
    explicit = os.environ.get("WORKBENCH_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"WORKBENCH_CONFIG names {explicit!r}, which is not a file")
        return path
    for candidate in (Path.cwd() / CONFIG_NAME, user_config_dir() / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None) -> Config:
    path = path or find_config_file()
    if path is None:
        return Config(profiles={}, default_profile=None, path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    parsed = parse_config(data, path)
    warnings = tuple(file_warnings(path, data))
    if not warnings:
        return parsed
    profiles = {name: replace(p, warnings=warnings) for name, p in parsed.profiles.items()}
    return replace(parsed, profiles=profiles, warnings=warnings)


def file_warnings(path: Path, data: Mapping[str, Any]) -> list[str]:
    """A file that other users can read must not hold a literal secret (``${ENV}`` is fine)."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return []
    if os.name != "posix" or not mode & 0o077:
        return []
    profiles = data.get("profiles")
    found = [
        f"[profiles.{name}] {key}"
        for name, body in (profiles.items() if isinstance(profiles, dict) else ())
        if isinstance(body, dict)
        for key in _literal_secrets(body)
    ]
    if not found:
        return []
    return [
        f"{path} holds a password or secret ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}) and other "
        f"users can read it (mode {mode:o}): run `chmod 600 {path}`, or use ${{ENV}} references instead"
    ]


def _literal_secrets(body: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Names of the fields of a profile that hold a secret written in the file, not read from the environment."""
    found = []
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += _literal_secrets(value, f"{name}.")
        elif isinstance(value, str) and (_is_literal(value) if is_secret_name(key) else _url_has_literal_secret(value)):
            found.append(name)
    return found


def _is_literal(value: str) -> bool:
    return bool(_ENV_REF.sub("", value).strip())


def _url_has_literal_secret(url: str) -> bool:
    """A password in the userinfo, or a secret-named query value, that is not only ``${ENV}``."""
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    authority = rest.split("?", 1)[0]
    if "@" in authority:
        _, colon, password = authority[: authority.rfind("@")].partition(":")
        if colon and _is_literal(password):
            return True
    query = rest.partition("?")[2]
    return any(is_secret_name(k) and _is_literal(v) for k, _, v in (p.partition("=") for p in query.split("&") if p))


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    known_top = {"default_profile", "profiles", "sagas", "correlation", "keys", "filters", "mask"}
    for key in data:
        if key not in known_top:
            raise ConfigError(
                f"{path}: unknown top-level key {key!r}", hint=f"expected: {', '.join(sorted(known_top))}"
            )
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table ([profiles.NAME])")
    shared = _parse_filters(data.get("filters", {}), f"{path}: [filters]")
    mask = parse_mask(data["mask"], f"{path}: [mask]") if "mask" in data else None
    profiles = {name: _parse_profile(name, body, path, shared, mask) for name, body in raw_profiles.items()}
    default = data.get("default_profile")
    if default is not None and (not isinstance(default, str) or default not in profiles):
        raise ConfigError(
            f"{path}: default_profile = {default!r} names no profile",
            hint=f"known profiles: {', '.join(sorted(profiles)) or 'none'}",
        )
    tables = {}
    for name in ("sagas", "correlation", "keys"):
        tables[name] = data.get(name, {})
        if not isinstance(tables[name], dict):
            raise ConfigError(f"{path}: {name!r} must be a table ([{name}])")
    return Config(profiles=profiles, default_profile=default, path=path, filters=shared, mask=mask, **tables)


@dataclass(frozen=True)
class NamedFilter:
    """A filter expression saved under a name in the profile file; ``where`` names its table."""

    name: str
    expression: str
    where: str


FILTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _parse_filters(raw: Any, where: str) -> dict[str, NamedFilter]:
    """``name = 'expression'`` pairs (checked as filters when used, or by `workbench filters`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table of name = 'filter expression'")
    named: dict[str, NamedFilter] = {}
    for name, expression in raw.items():
        if not FILTER_NAME.match(name):
            raise ConfigError(
                f"{where}: filter name {name!r} is not a name",
                hint="letters, digits and _, not starting with a digit (used as --filter @name)",
            )
        if not isinstance(expression, str) or not expression.strip():
            raise ConfigError(f"{where}: filter {name!r} must be a non-empty string (a filter expression)")
        named[name] = NamedFilter(name, expression, where)
    return named


def named_filters(profile: Profile) -> dict[str, NamedFilter]:
    """The named filters a profile sees. A profile made from ``--broker`` or the built-in default
    has none of its own: it sees the profile file's [filters], when there is a file."""
    if profile.source in (BUILTIN_SOURCE, URL_SOURCE):
        return dict(load_config().filters)
    return dict(profile.filters)


def mask_rules(profile: Profile) -> MaskRules | None:
    """The [mask] rules a profile sees (a profile made from ``--broker`` or the built-in default:
    those of the profile file, when there is one)."""
    if profile.source in (BUILTIN_SOURCE, URL_SOURCE):
        return load_config().mask
    return profile.mask


def redactor_of(profile: Profile, environ: Mapping[str, str] | None = None) -> Redactor | None:
    """The redactor of the profile's [mask] rules (its salt's ``${ENV}`` expanded), or None."""
    rules = mask_rules(profile)
    if rules is None:
        return None
    salt = _expand(rules.salt, os.environ if environ is None else environ, f"{rules.where}: salt")
    return rules.redactor(salt)


def _parse_profile(
    name: str,
    body: Any,
    path: Path,
    shared: Mapping[str, NamedFilter] | None = None,
    mask: MaskRules | None = None,
) -> Profile:
    where = f"{path}: [profiles.{name}]"
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a table")
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    filters = dict(shared or {})
    dead_letters: dict[str, str] = {}
    for key, value in body.items():
        if key == "filters":
            filters.update(_parse_filters(value, f"{path}: [profiles.{name}.filters]"))
            continue
        if key == "dead_letters":
            dead_letters = _parse_dead_letters(value, f"{path}: [profiles.{name}.dead_letters]")
            continue
        if key in _SCHEMA_KEYS:
            kind = _SCHEMA_KEYS[key]
            if key != "schemas" and (not isinstance(value, kind) or isinstance(value, bool)):  # schemas: below
                wanted = "a number" if isinstance(kind, tuple) else getattr(kind, "__name__", str(kind))
                raise ConfigError(f"{where}: field {key!r} must be {wanted}, got {type(value).__name__}")
            schemas[key] = value
            continue
        expected = _PROFILE_KEYS.get(key)
        if expected is None:
            options[key] = value  # an adapter option, checked by the adapter itself
        elif not isinstance(value, expected):
            raise ConfigError(f"{where}: field {key!r} must be {expected.__name__}, got {type(value).__name__}")
        else:
            fields[key] = value
    if "broker" not in fields and "adapter" not in fields:
        raise ConfigError(f'{where}: needs broker = "URL" or adapter = "NAME"')
    if fields.get("mask_required") and mask is None:
        raise ConfigError(
            f"{where}: mask_required = true, but the file has no [mask] rules",
            hint='add a [mask] table, e.g. fields = ["value.customer.email"]',
        )
    if "schemas" in schemas:
        from workbench.events.schemas.files import parse_rules

        parse_rules(schemas["schemas"], path.parent, where)  # checked now: a typo is found at load time
    return Profile(
        name=name,
        options=options,
        schemas=schemas,
        source=str(path),
        filters=filters,
        dead_letters=dead_letters,
        mask=mask,
        **{"adapter": None, **fields},
    )


def _parse_dead_letters(raw: Any, where: str) -> dict[str, str]:
    """``GROUP = "TOPIC-OR-QUEUE"`` pairs: the dead-letter topic or queue of each consumer group."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be a table of GROUP = "dead-letter topic or queue"')
    for group, target in raw.items():
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"{where}: {group!r} must name a topic or queue (a non-empty string)")
    return dict(raw)


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Target:
    """A profile made concrete: the adapter to load and its options, secrets expanded."""

    profile: Profile
    adapter: str
    options: Mapping[str, Any] = field(repr=False)  # secrets expanded: never shown
    #: To tell the user each time the profile is used: a readable file with a password, options the
    #: adapter does not know (ignored), TLS verification turned off. Never a secret value.
    warnings: tuple[str, ...] = ()
    registry: RegistrySettings | None = field(default=None, repr=False)  # secrets expanded: never shown
    schema_files: tuple[FileRule, ...] = ()


def resolve(profile: Profile, environ: Mapping[str, str] | None = None) -> Target:
    """Expand ``${ENV}``, pick the adapter (from ``adapter`` or the URL scheme), merge URL options."""
    from workbench import plugins

    environ = os.environ if environ is None else environ
    where = f"{profile.source}: profile {profile.name!r}"
    options = {k: _expand(v, environ, f"{where}, field {k!r}") for k, v in profile.options.items()}
    adapter = profile.adapter
    schemas = {k: _expand(v, environ, f"{where}, field {k!r}") for k, v in profile.schemas.items()}
    if profile.broker:
        url = _expand(profile.broker, environ, f"{where}, field 'broker'")
        url, from_url = _pop_url_param(url, URL_REGISTRY_PARAM)
        if from_url and "schema_registry" not in schemas:
            schemas["schema_registry"] = from_url
        scheme = url.split(":", 1)[0] if ":" in url else ""
        if not scheme:
            raise ConfigError(
                f"{where}: broker {mask_url(url)!r} has no scheme",
                hint="e.g. kafka://host:9092, amqp://host, local:PATH",
            )
        adapter = adapter or plugins.adapter_for_scheme(scheme)
        options = {**plugins.load(adapter).options_from_url(url), **options}
    assert adapter is not None
    adapter_class = plugins.load(adapter)
    try:  # types checked here too, so that an error names the file and the profile
        check_options(adapter_class.options, options, where=where)
    except InvalidRequest as exc:
        raise ConfigError(str(exc)) from None
    warnings = profile.warnings + tuple(
        f"profile {profile.name!r}: {w}" for w in adapter_class.option_warnings(options)
    )
    if adapter == DEFAULT_ADAPTER:
        path = options.get("path")
        if not path:
            options["path"] = str(default_local_path())
        elif profile.source.endswith(".toml") and not Path(path).expanduser().is_absolute():
            options["path"] = str(Path(profile.source).parent / path)  # beside the profile file
        else:
            options["path"] = str(Path(path).expanduser())
    return Target(
        profile=profile,
        adapter=adapter,
        options=options,
        warnings=warnings,
        registry=_registry_settings(schemas, where),
        schema_files=_schema_files(schemas, profile, where),
    )


def _registry_settings(schemas: Mapping[str, Any], where: str) -> RegistrySettings | None:
    url = schemas.get("schema_registry")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: schema_registry {mask_url(url)!r} must be an http:// or https:// URL")
    return RegistrySettings(
        url=url,
        user=schemas.get("schema_registry_user"),
        password=schemas.get("schema_registry_password"),
        ca=schemas.get("schema_registry_ca"),
        timeout_s=float(schemas.get("schema_registry_timeout_s", 5.0)),
    )


def _schema_files(schemas: Mapping[str, Any], profile: Profile, where: str) -> tuple[FileRule, ...]:
    if "schemas" not in schemas:
        return ()
    from workbench.events.schemas.files import parse_rules

    base = Path(profile.source).parent if profile.source.endswith(".toml") else Path.cwd()
    return parse_rules(schemas["schemas"], base, where)


def _url_param(url: str, name: str) -> str | None:
    return _pop_url_param(url, name)[1]


def _pop_url_param(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without the query parameter ``name``, and its (percent-decoded) value."""
    from urllib.parse import unquote

    base, qmark, query = url.partition("?")
    if not qmark:
        return url, None
    found = None
    kept = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            found = unquote(value)
        elif pair:
            kept.append(pair)
    return (base + ("?" + "&".join(kept) if kept else "")), found


def without_creating(target: Target) -> Target:
    """The target for a verb that only reads: a missing ``--broker local:PATH`` file is then NotFound
    ("no such file") instead of a new empty log, so a path mistyped on the command line is caught.

    Verbs that make something (``topics create``, ``demo``) keep creating the file. So do logs that
    are configured rather than typed: the built-in default (a newcomer's first ``workbench topics``
    should say "no topics, seed the demo", not fail) and a profile's ``path``, created on first use
    unless the profile says ``create = false``.
    """
    if target.adapter != DEFAULT_ADAPTER or target.profile.source != URL_SOURCE or "create" in target.options:
        return target
    return replace(target, options={**target.options, "create": False})


def _expand(value: Any, environ: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"{where}: environment variable {name} is not set", hint=f"export {name}=...")
            return environ[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, list):
        return [_expand(v, environ, where) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, environ, f"{where}.{k}") for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- masking


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_url(url: str) -> str:
    """``amqps://ops:hunter2@host/`` -> ``amqps://ops:***@host/``; secret query values masked too.

    The userinfo is found by hand (up to the last ``@`` of the authority), so a password holding
    an unencoded ``#``, ``?`` or ``/`` is masked whole instead of confusing a URL parser. A query
    that holds a URL (``?schema_registry=http://u:pw@registry``) is cut off first and masked on its own.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base, qmark, query = url.partition("?")
    if qmark and "://" in query and "://" in base:
        return mask_url(base) + "?" + "&".join(_mask_pair(pair) for pair in query.split("&"))
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        prefix = f"{scheme}://{user}:{MASK}@" if colon else f"{scheme}://{userinfo}@"
    else:
        prefix = f"{scheme}://"
    location, qmark, query = rest.partition("?")
    if qmark:
        query = "&".join(_mask_pair(pair) for pair in query.split("&"))
    return prefix + location + (f"?{query}" if qmark else "")


def _mask_pair(pair: str) -> str:
    """One ``key=value`` of a query: a secret-named value masked whole, a URL value (``schema_registry=
    http://u:pw@host``, percent-encoded or not) keeps all but its password."""
    from urllib.parse import quote, unquote

    key, eq, value = pair.partition("=")
    if is_secret_name(key):
        return f"{key}={MASK}"
    plain = unquote(value)
    if "://" in plain and "@" in plain:
        masked = mask_url(plain)
        return f"{key}{eq}{masked if plain == value else quote(masked, safe=':/*@')}"
    return pair


def mask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Secret-looking names masked whole; URL values (``url = "amqp://u:pw@h"``) keep all but the
    password; nested tables masked the same way."""
    return {k: _mask_value(k, v) for k, v in options.items()}


def _mask_value(name: str, value: Any) -> Any:
    if is_secret_name(name):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, Mapping):
        return mask_options(value)
    return value
