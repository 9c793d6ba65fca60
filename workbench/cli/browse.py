"""Browse verbs: topics (create, delete), describe, groups."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workbench.cli import output
from workbench.cli.base import OutputOption, app, fail, fmt_of, run, target_of
from workbench.errors import UsageError, WorkbenchError

topics_app = typer.Typer(
    help="List topics with partition and event counts; create and delete them.\n\n"
    "Examples:\n  workbench topics -o json\n  workbench topics create orders --partitions 3",
    rich_markup_mode=None,
)
app.add_typer(topics_app, name="topics")


@topics_app.callback(invoke_without_command=True)
def topics(
    ctx: typer.Context,
    internal: Annotated[bool, typer.Option("--internal", help="Also show the broker's internal topics.")] = False,
    output_format: OutputOption = None,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            found = [t for t in await conn.list_topics() if internal or not t.internal]
        output.render_topics(found, fmt_of(ctx, output_format))

    run(body)


@topics_app.command("create")
def topics_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    partitions: Annotated[int, typer.Option("--partitions", min=1, help="Number of partitions.")] = 1,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            "--replication-factor", "-r", min=1, help="Copies of each partition (Kafka; default: the broker's)."
        ),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-C",
            help="KEY=VALUE, a topic setting of the broker (repeatable), e.g. min.insync.replicas=2, "
            "cleanup.policy=compact, retention.ms=86400000.",
        ),
    ] = None,
    output_format: OutputOption = None,
) -> None:
    """Create a topic (a local event log file is created with it when missing).

    Examples:
      workbench topics create orders --partitions 3
      workbench topics create payments --partitions 6 -r 3 --config min.insync.replicas=2
    """
    target = target_of(ctx, creates=True)
    from workbench import service

    try:
        settings = dict(_setting(item) for item in config or ())
    except UsageError as exc:
        fail(exc)

    async def body() -> None:
        target.profile.ensure_writable(f"create topic {name!r}")
        async with service.connect(target) as conn:
            info = await conn.create_topic(name, partitions, settings or None, replication_factor=replication_factor)
        fmt = fmt_of(ctx, output_format)
        if fmt != "table":
            output.emit_json({"created": True, **output.topic_dict(info)}, fmt)
        output.stderr.print(output.safe(f"created {info.name} with {len(info.partitions)} partition(s)"))

    run(body)


def _setting(item: str) -> tuple[str, str]:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise UsageError(f"--config {item!r}: expected KEY=VALUE", hint="e.g. --config min.insync.replicas=2")
    return key.strip(), value


@topics_app.command("delete")
def topics_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    output_format: OutputOption = None,
) -> None:
    """Delete a topic and every event in it (asks first).

    Example: workbench topics delete scratch --yes
    """
    target = target_of(ctx)
    from workbench import service

    try:
        target.profile.ensure_writable(f"delete topic {name!r}")
    except WorkbenchError as exc:
        fail(exc)
    if not yes:
        if not sys.stdin.isatty():
            fail(UsageError(f"deleting {name!r} needs confirmation", hint="pass --yes in scripts"))
        typer.confirm(f"Delete topic {name!r} and all its events?", abort=True, err=True)

    async def body() -> None:
        async with service.connect(target) as conn:
            await conn.delete_topic(name)
        fmt = fmt_of(ctx, output_format)
        if fmt != "table":
            output.emit_json({"name": name, "deleted": True}, fmt)
        output.stderr.print(output.safe(f"deleted {name}"))

    run(body)


@app.command()
def describe(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic name.")],
    output_format: OutputOption = None,
) -> None:
    """Partitions with first/last offsets and event counts, and the topic's configuration.

    Example: workbench describe orders
    """
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            info = await conn.describe_topic(topic)
        output.render_describe(info, fmt_of(ctx, output_format))

    run(body)


@app.command()
def groups(ctx: typer.Context, output_format: OutputOption = None) -> None:
    """Consumer groups with state, protocol and members.

    Example: workbench groups
    """
    target = target_of(ctx)
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            found = sorted(await conn.groups(), key=lambda g: g.group_id)
        output.render_groups(found, fmt_of(ctx, output_format))

    run(body)
