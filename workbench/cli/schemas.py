"""schemas: what the profile's schema registry holds, and whether a file of events fits a subject."""

from __future__ import annotations

import fnmatch
import json
from typing import Annotated, Any

import typer

from workbench.broker import BrokerError
from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of, target_of
from workbench.errors import BadInput, UsageError, WorkbenchError


@app.command()
def schemas(
    ctx: typer.Context,
    subject: Annotated[
        str | None, typer.Argument(help="A subject to show (its versions and schema); none: list the subjects.")
    ] = None,
    version: Annotated[
        str, typer.Option("--version", "-V", help="The version to show or check against: a number or latest.")
    ] = "latest",
    match: Annotated[str | None, typer.Option("--match", help="List only subjects matching this glob.")] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="Check every value of this JSONL file (as publish reads it; - for stdin) against the "
            "subject's schema, without publishing.",
        ),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option("--schema-message", help="Protobuf: the message to check against (default: the first)."),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """The profile's schema registry: subjects, versions and types; one schema; a file checked against it.

    Examples:
      workbench schemas
      workbench schemas orders-value
      workbench schemas orders-value --check orders.jsonl
    """
    from workbench import service
    from workbench.events.schemas.encoder import SchemaEncoder, parse_spec

    target = target_of(ctx)
    fmt = fmt_of(ctx, output_format)
    try:
        if target.registry is None:
            raise UsageError(
                f"profile {target.profile.name!r} names no schema registry",
                hint='set schema_registry = "http://..." in the profile, or add ?schema_registry=URL to --broker',
            )
        registry = service.registry(target.registry)
        if subject is None:
            if check is not None:
                raise UsageError("--check needs a SUBJECT to check against")
            _list(registry, match, fmt)
            return
        spec = f"{subject}:{version}"
        parse_spec(spec, "--version")
        encoder = SchemaEncoder.lookup(registry, spec, "SUBJECT", message)
        if check is not None:
            _check(encoder, check, fmt)
            return
        _show(registry, encoder, fmt)
    except (WorkbenchError, BrokerError) as exc:
        fail(exc)


def _list(registry: Any, match: str | None, fmt: output.Format) -> None:
    names = [s for s in registry.subjects() if match is None or fnmatch.fnmatchcase(s, match)]
    rows = []
    for name in names:
        latest = registry.version(name, "latest")
        rows.append(
            {
                "subject": name,
                "versions": registry.versions(name),
                "latest": latest.version,
                "id": latest.id,
                "format": latest.schema.format,
                "references": [ref for ref, _ in latest.schema.references],
            }
        )
    if fmt != "table":
        output.emit_json(rows, fmt)
        return
    if not rows:
        output.stderr.print(f"no subjects{'' if match is None else f' match {match!r}'} in {registry.settings.shown}")
        return
    output.print_table(
        ("SUBJECT", "FORMAT", "LATEST", "VERSIONS", "ID", "REFERENCES"),
        (
            (
                r["subject"],
                r["format"],
                r["latest"],
                len(r["versions"]),
                r["id"],
                ", ".join(r["references"]) or "-",
            )
            for r in rows
        ),
    )


def _show(registry: Any, encoder: Any, fmt: output.Format) -> None:
    registered = encoder.registered
    document = {
        "subject": registered.subject,
        "version": registered.version,
        "versions": registry.versions(registered.subject),
        "id": registered.id,
        "format": registered.schema.format,
        "schema": registered.schema.text,
        "references": {name: ref.text for name, ref in registered.schema.references},
        "template": encoder.codec.template(encoder.message),
    }
    if fmt != "table":
        output.emit_json(document, fmt)
        return
    output.stdout.print(
        output.safe(
            f"{registered.subject} v{registered.version} of {document['versions']}: "
            f"{registered.schema.format}, id {registered.id}",
            "bold",
        )
    )
    _print_lines(_pretty(registered.schema))
    for name, ref in registered.schema.references:
        output.stdout.print(output.safe(f"reference {name}:", "bold"))
        _print_lines(_pretty(ref))
    output.stdout.print(output.safe("an event that fits (publish --value-schema takes JSON like this):", "bold"))
    output.stdout.print(output.safe(json.dumps(document["template"], ensure_ascii=False)))


def _print_lines(text: str) -> None:
    """A schema's text, line by line (each line terminal-safe: a schema is registry data, not ours)."""
    for line in text.splitlines():
        output.stdout.print(output.safe(line))


def _pretty(schema: Any) -> str:
    if schema.format == "protobuf":
        return schema.text
    try:
        return json.dumps(json.loads(schema.text), indent=2, ensure_ascii=False)
    except ValueError:
        return schema.text


def _check(encoder: Any, file: str, fmt: output.Format) -> None:
    """Every line parsed as publish parses it, then encoded: the lines that do not fit, named."""
    from workbench.cli.publish import _line_parser, _read_input

    def encode(origin: str, event: Any) -> Any:
        from workbench.events.schemas.formats import Mismatch

        try:
            encoder.encode(event.value)
        except Mismatch as exc:
            where = f"value.{exc.field}" if exc.field else "value"
            problems.append({"origin": origin, "field": where, "message": str(exc)})
        return event

    problems: list[dict[str, str]] = []
    parse = _line_parser(file, None, [], False, True, encode)
    checked = 0
    for lineno, line in enumerate(_read_input(file).decode("utf-8", "surrogateescape").split("\n"), start=1):
        if parse(lineno, line.removesuffix("\r")) is not None:
            checked += 1
    if fmt != "table":
        output.emit_json({"schema": encoder.describe(), "checked": checked, "problems": problems}, fmt)
    else:
        for p in problems[:20]:
            output.stderr.print(output.safe(f"{p['origin']}: field {p['field']!r}: {p['message']}", "red"))
        if len(problems) > 20:
            output.stderr.print(f"... and {len(problems) - 20:,} more")
        output.stdout.print(
            output.safe(f"{checked:,} event(s) checked against the {encoder.describe()}: {len(problems):,} do not fit")
        )
    if problems:
        raise BadInput(f"{len(problems):,} of {checked:,} event(s) do not fit the {encoder.describe()}")
