"""The dead-letter view, driven with Pilot in the real app on the demo event log (local adapter)."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from workbench.demo import dead_letters
from workbench.tui.screens.dlq import DeadLetterScreen

from .conftest import SIZE, make_app, open_topic, rendered, settle


async def test_d_on_a_topic_opens_its_dead_letters_grouped_by_cause(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, dead_letters.SPRING_DLT)
        view = rendered(app.main.query_one("#topic-view"))
        assert "d dead letters" in view
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, DeadLetterScreen), "the dead-letter view")
        screen = app.screen
        assert isinstance(screen, DeadLetterScreen)
        await settle(pilot, lambda: screen.reads == 1, "the dead letters read")
        table = screen.query_one("#dlq-causes", DataTable)
        rows = [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]
        # The demo's Spring DLT: 4 deserialization failures and 2 listener failures, from orders.
        assert [(r[0], r[1], r[2].rsplit(".", 1)[-1], r[3]) for r in rows] == [
            ("4", "spring", "DeserializationException", "orders"),
            ("2", "spring", "ListenerExecutionFailedException", "orders"),
        ]
        assert rows[0][6] == f"{dead_letters.SPRING_DLT}/0/0"
        status = rendered(screen.query_one("#dlq-status", Static))
        assert "6 dead letter(s), 2 cause(s)" in status
        assert f"workbench replay {dead_letters.SPRING_DLT} --to-origin" in status
        await pilot.press("r")
        await settle(pilot, lambda: screen.reads == 2, "the dead letters read again")
        assert table.row_count == 2
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is app.main, "back to the main screen")


async def test_a_topic_without_dead_letters_says_so_and_d_needs_a_topic(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.main.topics, "the topic list")
        await pilot.press("d")  # no topic chosen yet: a notice, no screen
        await pilot.pause()
        assert app.screen is app.main
        await open_topic(pilot, "payments")
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, DeadLetterScreen), "the dead-letter view")
        screen = app.screen
        assert isinstance(screen, DeadLetterScreen)
        await settle(pilot, lambda: screen.reads == 1, "the topic read")
        assert screen.query_one("#dlq-causes", DataTable).row_count == 0
        status = rendered(screen.query_one("#dlq-status", Static))
        assert "No dead letters in payments" in status
        assert "without dead-letter headers" in status
