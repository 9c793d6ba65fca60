"""What the saga verbs (CLI or TUI) take from the profile file: the definitions, the audit log.

The definitions are the profile file's ``[sagas.NAME]`` tables, or the built-in order saga
(:mod:`workbench.sagas.builtin`) when it has none; ``[sagas] audit_log`` says where the audit log
is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError, UsageError
from workbench.sagas.audit import AuditLog
from workbench.sagas.definitions import SagaDef, parse_sagas
from workbench.sagas.observing import Correlate

__all__ = ["SagaSettings", "audit_log_setting", "builtin_definitions", "choose", "definitions"]


@dataclass(frozen=True)
class SagaSettings:
    """What every saga verb (CLI or TUI) takes from the profile file: definitions, rules, audit log."""

    definitions: Mapping[str, SagaDef]
    rules: Any  # workbench.events.correlation.CorrelationRules
    audit: AuditLog

    @classmethod
    def load(cls, settings: Any) -> SagaSettings:
        """From a loaded :class:`workbench.config.Config`; ConfigError names what is wrong."""
        from workbench.events import correlation

        return cls(
            definitions(settings),
            correlation.rules_from_config(settings),
            AuditLog(audit_log_setting(settings)),
        )

    def correlate_for(self, definition: SagaDef) -> Correlate:
        return definition.correlator(self.rules.correlation_id)


def definitions(config: Any) -> dict[str, SagaDef]:
    """The sagas of a loaded :class:`workbench.config.Config`; the demo's order saga when it has none."""
    tables = getattr(config, "sagas", None) or {}
    path = getattr(config, "path", None)
    found = parse_sagas(tables, str(path) if path else "profile file")
    if found:
        return found
    return builtin_definitions()


def builtin_definitions() -> dict[str, SagaDef]:
    import tomllib

    from workbench.sagas.builtin import SAGA_TOML

    return parse_sagas(tomllib.loads(SAGA_TOML)["sagas"], "built-in demo saga")


def audit_log_setting(config: Any) -> str | None:
    """``[sagas] audit_log = "PATH"``, relative to the profile file; None: the default place."""
    tables = getattr(config, "sagas", None) or {}
    value = tables.get("audit_log")
    if value is None:
        return None
    path = getattr(config, "path", None)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: [sagas] audit_log must be a file path (text)")
    from pathlib import Path

    chosen = Path(value).expanduser()
    if not chosen.is_absolute() and path is not None:
        chosen = Path(path).parent / chosen
    return str(chosen)


def choose(defs: Mapping[str, SagaDef], name: str | None) -> list[SagaDef]:
    """The saga named by ``--saga`` (all when None); UsageError naming the known ones."""
    if name is None:
        return list(defs.values())
    if name not in defs:
        raise UsageError(f"--saga {name!r}: no such saga", hint=f"known sagas: {', '.join(sorted(defs)) or 'none'}")
    return [defs[name]]
