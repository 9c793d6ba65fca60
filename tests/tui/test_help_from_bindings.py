"""The help screen lists the bindings themselves: nothing to keep in step by hand (no app needed)."""

from __future__ import annotations

from textual.binding import Binding

from workbench.tui import keys
from workbench.tui.screens.help import _views, binding_rows, sections


def _bindings():
    for title, owners in _views():
        for owner in owners:
            for item in owner.BINDINGS:
                assert isinstance(item, Binding), (owner, item)
                yield title, owner, item


def test_every_key_of_every_view_is_in_the_help_under_its_view():
    listed = dict(sections(keys.effective({}))[1:])
    for title, owner, binding in _bindings():
        what = binding.tooltip or binding.description[:1].lower() + binding.description[1:]
        shown = next((row_keys for row_keys, row_what in listed[title] if row_what == what), None)
        assert shown is not None and keys.display(binding.key.split(",")[0]) in shown.split(", "), (owner, binding)


def test_every_binding_of_a_view_has_an_id_for_the_keymap():
    ids = [binding.id for _, _, binding in _bindings()]
    assert all(ids), ids
    assert not set(ids) & set(keys.BY_NAME)  # never an app action's name


def test_a_key_changed_by_binding_id_is_the_one_the_help_shows():
    from workbench.tui.screens.lag import LagScreen

    rows = dict((what, key) for key, what in binding_rows((LagScreen,), {"lag.refresh": "f5"}))
    assert rows["refresh now (it also refreshes by itself; the interval is in the title)"] == "f5"
    assert rows["filter the groups by name"] == "/"
