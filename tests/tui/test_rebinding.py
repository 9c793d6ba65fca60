"""The [keys] table rebinds any binding by its id, a screen's and a widget's too (Pilot presses the
new key), the help lists the key in force, and an unknown id stops the start naming it."""

from __future__ import annotations

import pytest

from workbench import config
from workbench.errors import ConfigError
from workbench.tui import bindings
from workbench.tui.app import WorkbenchApp, run_app
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.lag import LagScreen

from .conftest import SIZE, make_app, open_events, rendered, settle


def checked(raw: dict[str, str]) -> dict[str, str]:
    """The table as run_app checks it before the app starts."""
    return bindings.keymap(raw, "workbench.toml", WorkbenchApp)


async def test_a_screen_binding_rebound_in_the_keys_table_answers_to_the_new_key_only(target):
    app = make_app(target, keymap=checked({"lag.sort": "o"}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded, "the lag view")
        lag = app.screen
        assert isinstance(lag, LagScreen) and lag.by_lag
        await pilot.press("s")  # the old key does nothing now
        await pilot.pause()
        assert lag.by_lag
        await pilot.press("o")
        await settle(pilot, lambda: not lag.by_lag, "the sort by name on o")
        shown = {b.binding.key: b.binding.description for b in lag.active_bindings.values() if b.binding.show}
        assert shown.get("o") == "Sort by lag/name" and "s" not in shown  # the footer says the new key


async def test_a_widget_binding_of_the_main_screen_is_rebound_too(target, counts):
    app = make_app(target, keymap=checked({"events.toggle_pause": "x"}))
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        pump = app.main.stream.pump
        assert pump is not None
        await settle(pilot, lambda: pump.state == "running", "the follow read")
        await pilot.press("space")  # no longer pauses
        await pilot.pause()
        assert pump.state == "running"
        await pilot.press("x")
        await settle(pilot, lambda: pump.state == "paused", "the pause on x")


async def test_the_help_lists_the_rebound_keys_with_their_ids(target):
    app = make_app(target, keymap=checked({"lag.refresh": "f5", "help": "h"}))
    async with app.run_test(size=(180, 60)) as pilot:
        await settle(pilot, lambda: app.conn is not None, "the connection")
        await pilot.press("question_mark")  # the old key
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("h")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen), "the help on h")
        lines = rendered(app.screen.query_one("#help")).splitlines()
        refresh = next(line for line in lines if "lag.refresh" in line)
        assert refresh.split()[0] == "f5" and "refresh now" in refresh, refresh
        help_line = next(line for line in lines if line.rstrip().endswith(" help"))
        assert help_line.split()[0] == "h", help_line


def test_an_unknown_id_stops_the_start_naming_it(target, tmp_path):
    path = tmp_path / "workbench.toml"
    path.write_text('[profiles.dev]\nbroker = "local:events.db"\n\n[keys]\n"lag.refesh" = "f5"\n')
    settings = config.load_config(path)
    with pytest.raises(ConfigError) as caught:
        run_app(target, settings)  # stops before the app runs
    assert str(caught.value) == f"{path}: [keys] field 'lag.refesh': no key binding has the id 'lag.refesh'"
    assert caught.value.hint is not None and "lag.refresh" in caught.value.hint.split(": ", 1)[1].split(", ")
