"""filters: the named filters of the profile file, each checked, for `--filter @name`."""

from __future__ import annotations

import typer

from workbench import config
from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of, globals_of
from workbench.errors import ExitCode, WorkbenchError


@app.command()
def filters(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """The named filters ([filters] in workbench.toml, and a profile's own), each checked.

    Use one as `--filter @NAME`, alone or in an expression (`@failed and partition == 3`).
    A profile's [profiles.NAME.filters] adds to the file's [filters] and wins on the same name.
    Exits 2 when a filter does not compile (each is named, with the column).

    Example: workbench --profile prod filters
    """
    from workbench.events.filters import FilterError, compile_filter, expand_named

    try:
        g = globals_of(ctx)
        profile = config.url_profile(g.broker) if g.broker else config.load_config().profile(g.profile)
        named = config.named_filters(profile)
    except WorkbenchError as exc:
        fail(exc)
    expressions = {name: f.expression for name, f in named.items()}
    rows = []
    for name in sorted(named):
        item = named[name]
        try:
            compile_filter(expand_named(item.expression, expressions))
            problem = None
        except FilterError as exc:
            problem = f"column {exc.column}: {exc.reason}"
        rows.append(
            {
                "name": name,
                "filter": item.expression,
                "defined_in": item.where,
                "valid": problem is None,
                "error": problem,
            }
        )
    fmt = fmt_of(ctx, output_format)
    if fmt != "table":
        output.emit_json(rows, fmt)
    elif not rows:
        output.stderr.print(
            "no named filters: add a [filters] table to workbench.toml, e.g. failed = 'type == \"PaymentFailed\"'"
        )
    else:
        output.print_table(
            ("NAME", "FILTER", "DEFINED IN", "PROBLEM"),
            ((f"@{r['name']}", r["filter"], r["defined_in"], r["error"] or "") for r in rows),
        )
    if any(not r["valid"] for r in rows):
        raise typer.Exit(int(ExitCode.USAGE))
