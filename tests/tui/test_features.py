"""Issue #5's actions, driven with Pilot on demo data: publish, palette, keys, theme, lag trends,
profile switch, save and copy."""

from __future__ import annotations

import dataclasses
import json

from textual.command import CommandList, CommandPalette
from textual.widgets import Input, Static, TextArea

from workbench import config, service
from workbench.events.envelope import dumps_event
from workbench.tui.screens.confirm import ConfirmDialog
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.profiles import ProfilePicker
from workbench.tui.screens.publish import PublishDialog
from workbench.tui.screens.save import SaveDialog
from workbench.tui.widgets.group_table import GroupTable

from .conftest import (
    NOW_MS,
    SIZE,
    enter_text,
    make_app,
    open_events,
    open_topic,
    publish,
    rendered,
    settle,
)

NOW = NOW_MS / 1000


def fixed_ids():
    counter = iter(range(1, 1000))
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def with_profile(target, **changes):
    return dataclasses.replace(target, profile=dataclasses.replace(target.profile, **changes))


async def topic_events(target, topic):
    """(how many events the topic holds, all of them)."""
    async with service.connect(target) as conn:
        info = await conn.describe_topic(topic)
        events = [e async for batch in conn.read(topic, service.Position.beginning()) for e in batch]
    return info.count, events


async def open_publish(pilot, topic="orders"):
    app = pilot.app
    await open_topic(pilot, topic)
    await pilot.press("p")
    await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the publish dialog")
    return app.screen


async def test_publish_n_copies_of_a_cloudevent_and_see_where_each_landed(target, counts):
    app = make_app(target, now=lambda: NOW, make_id=fixed_ids())
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_publish(pilot)
        assert dialog.query_one("#publish-topic", Input).value == "orders"
        assert dialog.query_one("#publish-value", TextArea).text == "{}"
        await pilot.press("ctrl+t")  # next template: the CloudEvent
        headers = dialog.query_one("#publish-headers", TextArea)
        await settle(pilot, lambda: "ce_id=" in headers.text, "the CloudEvents template")
        assert "ce_id=00000000-0000-4000-8000-000000000001" in headers.text
        assert "ce_time=2027-01-15T08:00:00.000Z" in headers.text
        assert "correlation_id=00000000-0000-4000-8000-000000000002" in headers.text
        dialog.query_one("#publish-key", Input).value = "ORD-X"
        dialog.query_one("#publish-copies", Input).value = "3"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: dialog.published == 1, "the publish worker")
        shown = rendered(dialog.query_one("#publish-result"))
        assert "✓ 3 of 3 confirmed on orders" in shown
        assert shown.count("copy ") == 3 and "copy 3: partition" in shown and "· offset" in shown
        count, events = await topic_events(target, "orders")
        mine = [e for e in events if e.key == b"ORD-X"]
        assert count == counts["orders"] + 3 and len(mine) == 3
        event = mine[0]
        assert dict(event.headers)["ce_type"] == b"com.example.SomethingHappened"
        assert json.loads(event.value) == {"message": "hello"}
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, PublishDialog), "the dialog to close")


async def test_invalid_json_is_shown_with_line_and_column_and_nothing_is_published(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_publish(pilot)
        dialog.query_one("#publish-value", TextArea).load_text('{\n  "a": 1\n  "b": 2\n}')
        check = dialog.query_one("#publish-check", Static)
        await settle(pilot, lambda: "line 3, column 3" in rendered(check), "the live JSON check")
        assert "✗" in rendered(check) and "Expecting ','" in rendered(check)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "not published" in rendered(dialog.query_one("#publish-result")), "the refusal")
        assert "value: line 3, column 3" in rendered(dialog.query_one("#publish-result"))
        dialog.query_one("#publish-value", TextArea).load_text('{"a": 1}')
        await settle(pilot, lambda: "valid JSON" in rendered(check), "the check to pass")
    assert (await topic_events(target, "orders"))[0] == counts["orders"]


async def test_a_read_only_profile_refuses_before_opening_the_dialog(target):
    app = make_app(with_profile(target, read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        await pilot.press("p")
        await settle(pilot, lambda: app._notifications, "the notification")
        note = list(app._notifications)[-1]
        assert note.title == "Publish refused" and "is read-only" in note.message and "read_only = true" in note.message
        assert not isinstance(app.screen, PublishDialog)


async def test_a_production_profile_asks_before_publishing(target, counts):
    app = make_app(with_profile(target, production=True))
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_publish(pilot)
        assert "PRODUCTION" in rendered(dialog.query_one("#publish-title"))
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        assert "on the production profile" in rendered(app.screen.query_one("#confirm-question"))
        await pilot.press("n")
        result = dialog.query_one("#publish-result")
        await settle(pilot, lambda: "declined" in rendered(result), "the declined note")
        assert (await topic_events(target, "orders"))[0] == counts["orders"]
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation again")
        await pilot.press("y")
        await settle(pilot, lambda: dialog.published == 1, "the publish")
        assert "✓ 1 of 1 confirmed" in rendered(result)
    assert (await topic_events(target, "orders"))[0] == counts["orders"] + 1


async def test_the_command_palette_runs_every_action_by_name(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        titles = [title for title, _, _ in app.palette_entries()]
        for name in (
            "Events (e)",
            "From… (o)",
            "Lag (l)",
            "Publish (p)",
            "Save (s)",
            "Help (?)",
            "Theme (t)",
            "Reload (r)",
            "Profile (P)",
            "Find topic (f)",
            "Copy value (c)",
            "Quit (q)",
        ):
            assert name in titles
        assert any(t.startswith("Pause / resume") for t in titles) and any(t.startswith("Filter") for t in titles)
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"publish")
        commands = app.screen.query_one(CommandList)
        await settle(
            pilot,
            lambda: commands.option_count > 0 and "Publish" in str(commands.get_option_at_index(0).prompt),
            "the palette's match",
        )
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the dialog, from the palette")


async def test_keys_from_the_profile_file_rebind_the_actions_and_the_help_shows_them(target):
    app = make_app(target, keymap={"lag": "L"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        await pilot.press("l")
        await pilot.pause()
        assert not isinstance(app.screen, LagScreen)
        await pilot.press("L")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen), "the lag view on L")
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, LagScreen), "back")
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        shown = rendered(app.screen.query_one("#help"))
        assert "L    consumer lag" in shown.replace("  ", "  ") or "L " in shown
        assert "publish events" in shown.lower() and "ctrl+p" in shown and "ctrl+t" in shown


async def test_t_toggles_the_light_and_the_dark_theme(target):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.main.topics, "the topic list")
        assert app.theme == "textual-dark"
        await pilot.press("t")
        assert app.theme == "textual-light"
        await pilot.press("t")
        assert app.theme == "textual-dark"


async def test_the_lag_view_draws_a_trend_per_group_and_says_which_rule_fired(target):
    app = make_app(target, lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")
        screen = app.screen
        assert "auto-refresh every 3600 s" in rendered(screen.query_one("#lag-title"))
        table = screen.query_one("#lag-groups", GroupTable)
        for n in (2, 3):
            await publish(target, "orders", [service.OutgoingEvent(value=b"{}", key=b"k")] * 10)
            await pilot.press("r")
            await settle(pilot, lambda n=n: screen.loaded == n, f"refresh {n}")
        rows = {key: [cell.plain for cell in table.get_row(key)] for key in table.row_keys}
        trend = rows["inventory-service"][5]
        assert len(trend) == 3 and trend[0] < trend[-1]  # lag grew with each publish: rising bars
        assert rows["billing-service"][5] == "▁▁▁" or len(rows["billing-service"][5]) == 3
        for row in rows.values():
            label, _, rule = row[6].partition(" · ")
            assert label in {"OK", "WARN", "STALL", "STOP", "REWIND", "UNKNOWN"} and rule
        assert rows["inventory-service"][6].split(" · ")[0] in {"STALL", "STOP"}  # lag grows, no commits
        totals = [int(row[3].replace(",", "")) for row in rows.values()]
        assert totals == sorted(totals, reverse=True)  # sorted by lag
        # the history stays with the app: leaving and coming back keeps the trend
        await pilot.press("escape")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view again")
        again = app.screen.query_one("#lag-groups", GroupTable)
        assert len(again.get_row("inventory-service")[5].plain) == 4


async def test_switching_profile_reconnects_without_a_restart(target, isolated_home):
    other = config.resolve(config.url_profile("local:other.db"))
    async with service.connect(other) as conn:
        await conn.create_topic("solo", 1)
    (isolated_home / "workbench.toml").write_text(
        '[profiles.demo]\nbroker = "local:events.db"\n\n'
        '[profiles.other]\nbroker = "local:other.db"\ndescription = "the other log"\n'
    )
    settings = config.load_config(isolated_home / "workbench.toml")
    app = make_app(config.resolve(settings.profile("demo")), settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_topic(pilot, "orders")
        await pilot.press("P")
        await settle(pilot, lambda: isinstance(app.screen, ProfilePicker), "the profile picker")
        shown = rendered(app.screen.query_one("#profile-list"))
        assert "demo" in shown and "the other log" in shown
        await pilot.press("down", "enter")
        await settle(
            pilot,
            lambda: app.connection_state == "connected" and [t.name for t in app.main.topics] == ["solo"],
            "the other profile's topics",
        )
        assert app.target.profile.name == "other" and "other" in app.sub_title and app.main.topic is None


async def test_save_the_listed_events_to_a_jsonl_file(target, counts, isolated_home):
    app = make_app(target, now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SaveDialog), "the save dialog")
        field = app.screen.query_one(Input)
        assert field.value == "orders-20270115-080000.jsonl"
        await pilot.press("enter")
        await settle(pilot, lambda: app.main.saved is not None, "the file")
        lines = (isolated_home / "orders-20270115-080000.jsonl").read_text().splitlines()
        assert len(lines) == counts["orders"] and lines[0] == dumps_event(app.main.stream.buffer[0])
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SaveDialog), "the save dialog again")
        await pilot.press("enter")  # the same name: refused inline, nothing overwritten
        error = app.screen.query_one("#save-error", Static)
        await settle(pilot, lambda: error.display, "the inline error")
        assert "already exists" in rendered(error)
        await enter_text(pilot, "no/such/dir/x.jsonl")
        await settle(pilot, lambda: "does not exist" in rendered(error), "the directory error")
        await pilot.press("escape")


async def test_copy_the_value_or_the_envelope_of_the_selected_event(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        selected = app.main.stream.event_list.selected
        await pilot.press("c")
        assert app.clipboard == selected.value.decode()
        await pilot.press("C")
        assert app.clipboard == dumps_event(selected)
        await pilot.press("enter")  # from the detail pane too
        await settle(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", "the detail pane")
        app.copy_to_clipboard("")
        await pilot.press("c")
        assert app.clipboard == selected.value.decode()
