"""What the workbench connects with: profiles (secrets masked) and installed adapters."""

from __future__ import annotations

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of
from workbench.errors import WorkbenchError


@app.command()
def profiles(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """The profiles of workbench.toml, secrets masked.

    Example: workbench profiles
    """
    try:
        cfg = config.load_config()
    except WorkbenchError as exc:
        fail(exc)
    for warning in cfg.warnings:
        output.stderr.print(output.safe(f"warning: {warning}", "yellow"))
    found = list(cfg.profiles.values()) or [config.builtin_profile()]
    default = cfg.default_profile or (found[0].name if len(found) == 1 else None)
    rows = [
        {
            "name": p.name,
            "default": p.name == default,
            "broker": p.shown_broker(),
            "schema_registry": p.shown_registry(),
            "read_only": p.read_only,
            "production": p.production,
            "redaction": "required" if p.mask_required else ("on" if cfg.mask else "off"),
            "source": p.source,
        }
        for p in found
    ]
    fmt = fmt_of(ctx, output_format)
    if fmt != "table":
        output.emit_json(rows, fmt)
        return
    registries = any(r["schema_registry"] for r in rows)  # a column only where some profile has one
    masked = cfg.mask is not None  # a column only where the file has [mask] rules
    output.print_table(
        (
            "PROFILE",
            "DEFAULT",
            "BROKER",
            *(("SCHEMA REGISTRY",) if registries else ()),
            "READ-ONLY",
            *(("REDACTION",) if masked else ()),
            "SOURCE",
        ),
        (
            (
                r["name"],
                "*" if r["default"] else "",
                r["broker"],
                *((r["schema_registry"] or "-",) if registries else ()),
                "yes" if r["read_only"] else "no",
                *((r["redaction"],) if masked else ()),
                r["source"],
            )
            for r in rows
        ),
    )


@app.command()
def adapters(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Installed broker adapters and the URL schemes they serve (none is imported).

    Example: workbench adapters
    """
    from workbench import plugins

    found = plugins.available()
    fmt = fmt_of(ctx, output_format)
    if fmt != "table":
        output.emit_json(
            [
                {"name": a.name, "schemes": list(a.schemes), "target": a.target, "distribution": a.distribution}
                for a in found
            ],
            fmt,
        )
        return
    output.print_table(("ADAPTER", "SCHEMES", "PROVIDED BY"), ((a.name, ", ".join(a.schemes), a.target) for a in found))
