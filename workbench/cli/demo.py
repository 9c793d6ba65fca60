"""demo: seed the order-platform scenario, or keep it live."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workbench.cli import output
from workbench.cli.base import OutputOption, app, fmt_of, run, target_of

# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    ctx: typer.Context,
    live: Annotated[bool, typer.Option("--live", help="Keep producing and consuming until Ctrl-C.")] = False,
    rate: Annotated[float, typer.Option("--rate", min=0.1, help="Events per second with --live.")] = 20.0,
    orders: Annotated[int, typer.Option("--orders", min=1, help="Number of order sagas to seed.")] = 200,
    force: Annotated[
        bool, typer.Option("--force", help="Seed again even if the demo topics already hold events.")
    ] = False,
    output_format: OutputOption = None,
) -> None:
    """Seed an order-platform scenario: orders, payments, inventory, shipping; sagas; lagging groups.

    Where the profile names a schema registry, the orders and payments are also published as Avro
    (orders.avro) and Protobuf (payments.proto), to show decoding at work.

    Example: workbench demo && workbench lag
    """
    target = target_of(ctx, creates=True)
    fmt = fmt_of(ctx, output_format)
    from workbench import service
    from workbench.demo import live as live_demo
    from workbench.demo import seeding

    async def body() -> None:
        target.profile.ensure_writable("seed the demo")
        async with service.connect(target) as conn:
            summary = await seeding.seed(conn, orders=orders, force=force)
            typed_topics: dict[str, int] = {}
            if target.registry is not None:  # the same orders and payments, as Avro and Protobuf
                from workbench.demo import typed

                typed_topics = await typed.seed(conn, service.registry(target.registry), orders=orders, force=force)
            if fmt != "table":
                output.emit_json({**summary_dict(summary), "typed_topics": typed_topics}, fmt)
            else:
                for line in seeding.describe(summary).splitlines():
                    output.stderr.print(output.safe(line))
                if typed_topics:
                    output.stderr.print(output.safe(typed.describe(typed_topics)))
            if live:
                output.stderr.print("producing live events; Ctrl-C to stop")
                await live_demo.run_live(conn, rate=rate)

    run(body)


def summary_dict(summary: Any) -> dict[str, Any]:
    """What the demo seeded, for -o json/jsonl."""
    return {
        "published": summary.published,
        "already_seeded": summary.already_seeded,
        "topics": dict(summary.topics),
        "sagas": dict(summary.sagas),
        "group_lag": dict(summary.groups),
        "failed_example": summary.failed_example,
    }
