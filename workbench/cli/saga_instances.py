"""saga list and saga show: saga instances reconstructed from the events, in a table or as JSON."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from workbench.cli import output
from workbench.cli.base import OutputOption, fmt_of, run, scan_progress
from workbench.cli.saga import SagaOption, Setup, SinceOption, StateChoice, find_saga, saga_app, shown_time

#: What a partial instance (its start before the window) shows for its state and unseen steps.
PARTIAL = "PARTIAL"
UNKNOWN_MARK = "?"


def _steps_text(instance: Any) -> Text:
    from workbench.sagas.instances import STEP_MARKS

    text = Text()
    for n, step in enumerate(instance.steps):
        if n:
            text.append(" ")
        style = {"failed": "red", "compensated": "yellow", "done": "green"}.get(step.status, "dim")
        unseen = instance.partial and step.status == "pending"  # maybe done before the window
        text.append(output.safe(f"{step.name}{UNKNOWN_MARK if unseen else STEP_MARKS[step.status]}", style))
    return text


def shown_state(instance: Any) -> str:
    """The state, or PARTIAL when the window cut the instance's start off (its state is unknown)."""
    return PARTIAL if instance.partial else instance.state


def instance_dict(instance: Any) -> dict[str, Any]:
    return {
        "saga": instance.saga,
        "correlation_id": instance.correlation_id,
        "state": shown_state(instance),
        "partial": instance.partial,
        **({"observed_state": instance.state} if instance.partial else {}),
        "started": None if instance.partial else shown_time(instance.started),
        "first_seen": shown_time(instance.started),
        "last": shown_time(instance.last),
        "past_pivot": instance.past_pivot,
        "fingerprint": instance.fingerprint,
        "failure": None if instance.failure is None else instance.failure.as_dict(),
        "steps": [
            {
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                **{
                    role: (None if getattr(s, role) is None else getattr(s, role).as_dict())
                    for role in ("done", "failed", "compensated")
                },
            }
            for s in instance.steps
        ],
        "events": [e.as_dict() for e in instance.events],
    }


@saga_app.command("list")
def saga_list(
    ctx: typer.Context,
    state: Annotated[StateChoice | None, typer.Option("--state", help="Only instances in this state.")] = None,
    saga: SagaOption = None,
    since: SinceOption = None,
    output_format: OutputOption = None,
) -> None:
    """Saga instances reconstructed from the events of the saga's topics, oldest first.

    States: RUNNING, COMPLETED, FAILED (a step failed, nothing compensated yet), COMPENSATING (partly
    compensated), COMPENSATED, STUCK (no new event for longer than the saga's stuck_after). Steps:
    ✓ done, ✗ failed, ↺ compensated, · pending.

    With --since, an instance whose first step falls before the window is read again from further
    back (as far back as the window is long, at least the saga's stuck_after); one whose start is
    still not found is PARTIAL: its state is unknown and unseen steps show ? (--state never lists it).

    Examples:
      workbench saga list --state failed
      workbench saga list --since 2h -o jsonl
    """
    setup = Setup(ctx, saga, since)
    fmt = fmt_of(ctx, output_format)
    from workbench import service
    from workbench.sagas import observing
    from workbench.sagas.instances import STATE_STYLES, count_by_state

    widened: list[int] = []  # instances read again from before the window

    async def body() -> None:
        async with service.connect(setup.target) as conn:
            total = None if setup.since_ms is not None else await observing.expected_events(conn, setup.chosen)
            found = []
            with scan_progress(total, minimum=20_000) as progress:
                for definition in setup.chosen:
                    correlate = setup.sagas.correlate_for(definition)
                    seen = await observing.observe(
                        conn, definition, correlate, now=setup.now, since_ms=setup.since_ms, on_scanned=progress
                    )
                    if setup.since_ms is not None:
                        seen = await _widened(
                            conn, definition, correlate, seen, now=setup.now, since_ms=setup.since_ms, widened=widened
                        )
                    found += seen
        partial = sum(1 for i in found if i.partial)
        counts = count_by_state(i for i in found if not i.partial)
        shown = [i for i in found if state is None or (not i.partial and i.state == state.value.upper())]
        if fmt != "table":
            output.emit_json([instance_dict(i) for i in shown], fmt)
        else:
            output.print_table(
                ("SAGA", "CORRELATION ID", "STATE", "STEPS", "STARTED", "LAST EVENT"),
                [
                    (
                        i.saga,
                        i.correlation_id,
                        output.safe(shown_state(i), STATE_STYLES.get(shown_state(i), "yellow")),
                        _steps_text(i),
                        f"before {shown_time(i.started)}" if i.partial else shown_time(i.started),
                        shown_time(i.last),
                    )
                    for i in shown
                ],
            )
        summary = ", ".join(f"{k.lower()} {output.count(v)}" for k, v in counts.items() if v)
        if partial:
            summary += f"{', ' if summary else ''}partial {output.count(partial)}"
        output.stderr.print(
            output.safe(f"{output.count(len(shown))} of {output.count(len(found))} instances ({summary or 'none'})")
        )
        if widened:
            output.stderr.print(
                output.safe(
                    f"note: {output.count(sum(widened))} instance(s) began before --since {since}: their earlier events "
                    f"were read from further back{f'; {partial} still begin earlier (PARTIAL)' if partial else ''}"
                )
            )
        if shown and state in (StateChoice.failed, StateChoice.stuck, StateChoice.compensating):
            output.stderr.print(output.safe(f"next: workbench saga compensate {shown[0].correlation_id}"))

    run(body)


@saga_app.command("show")
def saga_show(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Argument(metavar="ID", help="The saga's correlation id.")],
    saga: SagaOption = None,
    since: SinceOption = None,
    output_format: OutputOption = None,
) -> None:
    """One saga instance: its state and each step with the events behind it (topic/partition/offset).

    Example: workbench saga show 6a52ce18-21c8-4e28-b24e-3a02a5956772
    """
    setup = Setup(ctx, saga, since)
    fmt = fmt_of(ctx, output_format)
    from workbench import service

    async def body() -> None:
        async with service.connect(setup.target) as conn:
            _, instance = await find_saga(conn, setup, correlation_id)
        if fmt != "table":
            output.emit_json(instance_dict(instance), fmt)
            return
        _print_instance(instance)

    run(body)


async def _widened(
    conn: Any, definition: Any, correlate: Any, found: list[Any], *, now: int, since_ms: int, widened: list[int]
) -> list[Any]:
    """The instances of a ``--since`` window, those whose first step falls before it read again.

    A saga's events seldom span long, so the window is widened for those ids only, back by as long
    as it is (at least the saga's stuck_after), not to the beginning: a bounded scan stays bounded.
    What still lacks its first step is marked partial (its state and start are unknown).
    """
    from workbench import service
    from workbench.broker import Position
    from workbench.sagas.instances import Collector, marked_partial, starts_observed

    cut = {i.correlation_id for i in found if not starts_observed(definition, i)}
    if not cut:
        return found
    widened.append(len(cut))
    earlier = since_ms - max(now - since_ms, definition.stuck_after_ms)
    start = Position.at_time(earlier) if earlier > 0 else Position.beginning()
    collector = Collector(definition, correlate, only=cut)
    for topic in definition.topics:
        async for batch in service.tail(conn, topic, start):
            collector.add(batch)
    again = {i.correlation_id: i for i in collector.instances(now)}
    result = []
    for instance in found:
        instance = again.get(instance.correlation_id, instance)
        result.append(instance if starts_observed(definition, instance) else marked_partial(instance))
    return sorted(result, key=lambda i: (i.started or 0, i.correlation_id))


def _print_instance(instance: Any) -> None:
    from workbench.sagas.instances import STATE_STYLES

    title = Text()
    title.append(output.safe(f"saga {instance.saga} {instance.correlation_id}: "))
    title.append(output.safe(instance.state, STATE_STYLES.get(instance.state, "")))
    title.append(
        output.safe(
            f"  (started {shown_time(instance.started)}, last event {shown_time(instance.last)}"
            f"{', past the pivot' if instance.past_pivot else ''})"
        )
    )
    rows: list[tuple[object, ...]] = []
    for step in instance.steps:
        facts = [(role, getattr(step, role)) for role in ("done", "failed", "compensated") if getattr(step, role)]
        status = output.safe(step.status, STATE_STYLES.get(step.status.upper(), "") or "dim")
        if not facts:
            rows.append((step.name, step.kind, status, None, None, None, None))
        for n, (role, seen) in enumerate(facts):
            rows.append(
                (
                    "" if n else step.name,
                    "" if n else step.kind,
                    "" if n else status,
                    role,
                    seen.type,
                    seen.position,
                    shown_time(seen.timestamp),
                )
            )
    output.stdout.print(title)
    output.print_table(("STEP", "KIND", "STATUS", "EVENT ROLE", "TYPE", "AT", "TIME"), rows)
