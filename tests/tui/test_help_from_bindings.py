"""The help screen lists the bindings themselves: nothing to keep in step by hand (no app needed)."""

from __future__ import annotations

from textual.binding import Binding

from workbench.tui import bindings, keys
from workbench.tui.app import WorkbenchApp

PALETTE = WorkbenchApp.COMMAND_PALETTE_BINDING


def _bindings():
    for place, owner, binding in bindings.every(bindings.places(WorkbenchApp)):
        yield place.title, owner, binding


def _listed(overrides=None) -> dict[str, list[tuple[str, str, str]]]:
    return {title: list(rows) for title, rows in bindings.help_sections(WorkbenchApp, overrides or {}, PALETTE)}


def test_every_binding_is_in_the_help_under_where_it_applies_with_its_id():
    listed = _listed()
    by_id = {name: title for title, rows in listed.items() for _, _, ids in rows for name in ids.split(", ") if name}
    for title, owner, binding in _bindings():
        assert isinstance(binding, Binding) and binding.id, (owner, binding)
        shown_under = by_id.get(binding.id)
        assert shown_under is not None, (owner, binding)
        row = next(row for row in listed[shown_under] if binding.id in row[2].split(", "))
        assert keys.display(binding.key.split(",")[0]) in row[0].split(", "), (owner, binding, row)
        if shown_under != title:  # one more place of a binding of the app's or the main screen's (same id)
            assert list(listed).index(shown_under) < list(listed).index(title), (owner, binding)


def test_the_screens_own_bindings_are_under_their_own_heading():
    listed = _listed()
    lag = {what: (key, ids) for key, what, ids in listed["Lag view"]}
    assert lag["refresh now (it also refreshes by itself; the interval is in the title)"] == ("r", "lag.refresh")
    assert lag["filter the groups by name"] == ("/", "lag.filter")
    assert ("g, home", "top of the detail", "detail.top") in listed["Event detail"]
    assert ("ctrl+s", "publish (a confirmation first on a production profile)", "publish.publish") in listed[
        "Publish dialog"
    ]
    everywhere = {what: key for key, what, _ in listed["Everywhere"]}
    assert everywhere["command palette: every action by name"] == "ctrl+p"
    assert everywhere["move between the topic list, filters and views"] == "tab / shift+tab"


def test_ids_shared_by_two_bindings_are_one_binding_shown_twice():
    seen: dict[str, Binding] = {}
    for _, owner, binding in _bindings():
        first = seen.setdefault(binding.id, binding)
        assert (first.key, first.action.removeprefix("app.")) == (binding.key, binding.action.removeprefix("app.")), (
            owner,
            binding,
        )
    assert bindings.defaults(bindings.places(WorkbenchApp))  # raises on a binding without an id or other keys


def test_the_help_shows_a_rebound_key_of_a_screen_and_of_the_app():
    listed = _listed({"lag.refresh": "f5", "lag": "L"})
    lag = {ids: key for key, _, ids in listed["Lag view"]}
    assert lag["lag.refresh"] == "f5" and lag["lag.sort"] == "s"
    main = {ids: key for key, _, ids in listed["Main screen"]}
    assert main["lag"] == "L"
