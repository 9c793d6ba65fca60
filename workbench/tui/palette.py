"""The command palette (ctrl+p): every action of the app and of the main screen by name, with the
key in force (read from their bindings), and a few more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from workbench.broker import Position
from workbench.tui import bindings

Entry = tuple[str, str, Callable[[], object]]


class Main(Protocol):
    def is_reading(self) -> bool: ...
    def toggle_pause(self) -> None: ...
    async def show_events(self, position: Position | None = None, *, focus_filter: bool = False) -> None: ...


class Host(Protocol):
    @property
    def keymap(self) -> Mapping[str, str]: ...  # the checked [keys] table (read only: a dict fits)
    @property
    def main(self) -> Main: ...

    def run_action(self, action: str, default_namespace: Any = ...) -> Awaitable[bool]: ...
    def notify(self, message: str, *, severity: Any = ..., markup: bool = ...) -> None: ...


def entries(app: Host) -> list[Entry]:
    """(title, help, callback) of every action, for the command palette: the main screen's bindings,
    then the app's (an action once), each run where it is bound."""
    found: list[Entry] = []
    seen: set[str] = set()
    for node in (app.main, app):
        for binding in bindings.own(cast(DOMNode, node).__class__):
            action = binding.action.removeprefix("app.")
            if binding.id is None or binding.id in seen or action in seen:
                continue
            seen |= {binding.id, action}
            title = f"{binding.description} ({bindings.key_of(binding, app.keymap).split(', ')[0]})"
            found.append(
                (
                    title,
                    binding.tooltip[:1].upper() + binding.tooltip[1:],
                    partial(app.run_action, binding.action, node),
                )
            )
    main = app.main
    found += [
        ("Pause / resume reading (space)", "Stop showing new events of the stream, or catch up", partial(_pause, app)),
        (
            "Filter events (/)",
            "A filter expression over the events, as workbench tail --filter",
            partial(main.show_events, focus_filter=True),
        ),
        (
            "Events from the beginning",
            "Read the chosen topic from its first event, then follow",
            partial(main.show_events, Position.beginning()),
        ),
        ("Events from now on", "Only new events of the chosen topic", partial(main.show_events, Position.end())),
    ]
    return found


def _pause(app: Host) -> None:
    if not app.main.is_reading():
        app.notify("Nothing is being read: choose a topic and press e first.", severity="warning", markup=False)
        return
    app.main.toggle_pause()


class WorkbenchCommands(Provider):
    """The entries above, listed before anything is typed and matched as it is."""

    def _entries(self) -> list[Entry]:
        return entries(cast(Host, self.app))

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
