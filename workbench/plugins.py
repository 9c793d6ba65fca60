"""Adapter discovery through entry points: list them without importing, load exactly one.

Group ``workbench.adapters`` names adapters; group ``workbench.schemes`` maps the URL schemes of
``--broker`` to the same objects (``amqp`` and ``amqps`` both point at the RabbitMQ adapter).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.broker import Adapter

ADAPTERS_GROUP = "workbench.adapters"
SCHEMES_GROUP = "workbench.schemes"


@dataclass(frozen=True)
class AdapterEntry:
    name: str
    target: str  # "package.module:Class", not imported
    distribution: str
    schemes: tuple[str, ...]


@functools.cache
def _group(name: str) -> tuple[EntryPoint, ...]:
    """The entry points of a group, read once per process: scanning every installed distribution's
    metadata takes tens of milliseconds, and resolving a profile then connecting asks several times."""
    return tuple(entry_points(group=name))


def _adapter_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in _group(ADAPTERS_GROUP)}


def available() -> list[AdapterEntry]:
    """Every installed adapter, sorted by name. Imports none of them."""
    schemes: dict[str, list[str]] = {}
    for ep in _group(SCHEMES_GROUP):
        schemes.setdefault(ep.value, []).append(ep.name)
    return [
        AdapterEntry(
            name=ep.name,
            target=ep.value,
            distribution=ep.dist.name if ep.dist else "",
            schemes=tuple(sorted(schemes.get(ep.value, ()))),
        )
        for ep in sorted(_adapter_points().values(), key=lambda ep: ep.name)
    ]


def adapter_for_scheme(scheme: str) -> str:
    """The adapter name that serves a ``--broker`` URL scheme."""
    by_value = {ep.value: ep.name for ep in _adapter_points().values()}
    for ep in _group(SCHEMES_GROUP):
        if ep.name == scheme.lower() and ep.value in by_value:
            return by_value[ep.value]
    known = sorted({ep.name for ep in _group(SCHEMES_GROUP)})
    raise ConfigError(
        f"no adapter serves URLs starting with '{scheme}:'",
        hint=f"known schemes: {', '.join(known) or 'none'} (see `workbench adapters`)",
    )


def load(name: str) -> type[Adapter]:
    """Import and return one adapter class by name."""
    point = _adapter_points().get(name)
    if point is None:
        known = ", ".join(sorted(_adapter_points())) or "none"
        raise ConfigError(f"unknown adapter {name!r}", hint=f"installed adapters: {known}")
    return point.load()
