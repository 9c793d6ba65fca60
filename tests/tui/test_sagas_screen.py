"""The saga view on the demo (fixed seed and "now"): list, filter, steps, compensate with the id typed back."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from workbench import service
from workbench.sagas import audit
from workbench.tui import bindings
from workbench.tui.app import WorkbenchApp
from workbench.tui.palette import WorkbenchCommands
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.sagas import CompensateDialog, SagaScreen
from workbench.tui.screens.trace import TraceScreen

from .conftest import NOW_MS, ORDERS, SIZE, enter_text, make_app, rendered, settle


async def open_sagas(pilot, app, target) -> SagaScreen:
    await settle(pilot, lambda: app.conn is not None, "the connection")
    screen = SagaScreen(lambda: app.conn, target, now=lambda: NOW_MS)
    await app.push_screen(screen)
    await settle(pilot, lambda: screen.loaded, "the saga instances")
    return screen


async def choose(pilot, screen: SagaScreen, state: str, *, compensations: int | None = None) -> None:
    """Filter to ``state`` with f, then move the cursor to a matching instance."""
    while screen.state_filter != state:
        await pilot.press("f")
    table = screen.query_one("#saga-list", DataTable)
    for _ in range(table.row_count):
        chosen = screen.current()
        done = sum(1 for s in chosen.steps if s.kind == "compensatable" and s.done and not s.compensated)
        if compensations is None or done == compensations:
            return
        await pilot.press("down")
    raise AssertionError(f"no {state} instance with {compensations} compensation(s)")


async def topic_count(target, topic: str) -> int:
    async with service.connect(target) as conn:
        return (await conn.describe_topic(topic)).count


async def test_list_filter_and_steps(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sagas(pilot, app, target)
        assert screen.failed is None and len(screen.instances) == ORDERS
        assert {i.state for i in screen.instances} == {
            "RUNNING",
            "COMPLETED",
            "FAILED",
            "COMPENSATING",
            "COMPENSATED",
            "STUCK",
        }
        table = screen.query_one("#saga-list", DataTable)
        assert table.row_count == ORDERS
        await choose(pilot, screen, "STUCK")
        assert table.row_count == sum(i.state == "STUCK" for i in screen.instances) >= 1
        await pilot.pause()
        steps = rendered(screen.query_one("#saga-steps", Static))
        assert "STUCK" in steps and "OrderPlaced at orders/" in steps
        assert "showing: stuck" in rendered(screen.query_one("#sagas-title", Static))


async def test_compensate_dry_run_then_the_id_typed_back(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sagas(pilot, app, target)
        await choose(pilot, screen, "FAILED", compensations=2)
        corr = screen.current().correlation_id
        payments, orders = await topic_count(target, "payments"), await topic_count(target, "orders")
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompensateDialog), "the compensation dialog")
        dialog = app.screen
        plan = rendered(dialog.query_one("#compensate-plan", Static))
        assert "Dry run: 2 event(s)" in plan and "PaymentRefunded" in plan and "OrderCancelled" in plan
        assert f"correlation_id: {corr}" in plan
        assert isinstance(app.focused, Input)

        await enter_text(pilot, "not the id")
        await settle(
            pilot,
            lambda: "does not match" in rendered(dialog.query_one("#compensate-result", Static)),
            "the mismatch message",
        )
        assert (await topic_count(target, "payments"), await topic_count(target, "orders")) == (payments, orders)

        await enter_text(pilot, corr)
        await settle(pilot, lambda: dialog.result is not None and not dialog.running, "the execution", timeout=60)
        assert dialog.result.outcome == "done" and dialog.result.published == 2
        assert all(r.confirmed for r in dialog.result.results)
        assert "done: 2 published" in rendered(dialog.query_one("#compensate-result", Static))
        assert (await topic_count(target, "payments"), await topic_count(target, "orders")) == (
            payments + 1,
            orders + 1,
        )
        (record,) = audit.AuditLog().records(corr)
        assert record["outcome"] == "done" and record["published"] == 2

        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen and screen.loaded >= 2, "the refreshed list")
        assert next(i for i in screen.instances if i.correlation_id == corr).state == "COMPENSATED"


async def test_past_the_pivot_the_dialog_refuses_and_offers_no_input(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sagas(pilot, app, target)
        await choose(pilot, screen, "FAILED")
        table = screen.query_one("#saga-list", DataTable)
        for _ in range(table.row_count):
            if screen.current().past_pivot:
                break
            await pilot.press("down")
        assert screen.current().past_pivot
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompensateDialog), "the compensation dialog")
        assert "past its pivot" in rendered(app.screen.query_one("#compensate-plan", Static))
        assert not app.screen.query_one("#compensate-confirm", Input).display


async def test_the_s_key_and_the_command_palette_open_the_saga_view(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        await pilot.press("S")
        await settle(pilot, lambda: isinstance(app.screen, SagaScreen) and app.screen.loaded, "the saga view")
        assert len(app.screen.instances) == ORDERS
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, SagaScreen), "the main screen")
        assert WorkbenchCommands in app.COMMANDS  # the palette's provider lists every action
        titles = [str(hit.display) async for hit in WorkbenchCommands(app.screen).discover()]
        assert any(title.startswith("Sagas (S)") for title in titles)


async def test_the_saga_and_trace_keys_are_rebound_from_the_keys_table(target):
    keymap = bindings.keymap({"sagas": "ctrl+g", "trace": "ctrl+y", "lag": "S"}, "workbench.toml", WorkbenchApp)
    app = make_app(target, keymap=keymap)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        await pilot.press("S")  # now the lag view's key
        await settle(pilot, lambda: isinstance(app.screen, LagScreen), "the lag view on S")
        await pilot.press("escape")
        await settle(pilot, lambda: len(app.screen_stack) == 1, "the main screen")
        await pilot.press("ctrl+g")
        await settle(pilot, lambda: isinstance(app.screen, SagaScreen) and app.screen.loaded, "the saga view on ctrl+g")
        await pilot.press("escape")
        await settle(pilot, lambda: len(app.screen_stack) == 1, "the main screen")
        await pilot.press("ctrl+y")
        await settle(pilot, lambda: isinstance(app.screen, TraceScreen), "the trace view on ctrl+y")
        titles = [title for title, _, _ in app.palette_entries()]
        assert "Sagas (ctrl+g)" in titles and "Trace (ctrl+y)" in titles and "Lag (S)" in titles
        everywhere = bindings.help_sections(WorkbenchApp, app.keymap, "ctrl+p")[0][1]
        assert ("ctrl+g", "saga instances by state (failed, stuck…); compensate one after a dry run", "sagas") in (
            everywhere
        )
