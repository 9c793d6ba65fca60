"""The command palette (ctrl+p): every app action by name, with the key in force, and a few more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from workbench.broker import Position
from workbench.tui import keys

Entry = tuple[str, str, Callable[[], object]]


class Host(Protocol):
    @property
    def keys(self) -> Mapping[str, str]: ...  # read only: the app's dict[str, str] fits

    def run_action(self, action: str) -> Awaitable[bool]: ...
    def notify(self, message: str, *, severity: Any = ..., markup: bool = ...) -> None: ...
    def is_reading(self) -> bool: ...
    def toggle_pause(self) -> None: ...
    async def show_events(self, position: Position | None = None, *, focus_filter: bool = False) -> None: ...


def entries(app: Host) -> list[Entry]:
    """(title, help, callback) of every action, for the command palette."""
    found: list[Entry] = []
    for action in keys.ACTIONS:
        shown = keys.display(app.keys[action.name])
        found.append((f"{action.label} ({shown})", action.help, partial(app.run_action, action.name)))
    found += [
        ("Pause / resume reading (space)", "Stop showing new events of the stream, or catch up", partial(_pause, app)),
        (
            "Filter events (/)",
            "A filter expression over the events, as workbench tail --filter",
            partial(app.show_events, focus_filter=True),
        ),
        (
            "Events from the beginning",
            "Read the chosen topic from its first event, then follow",
            partial(app.show_events, Position.beginning()),
        ),
        ("Events from now on", "Only new events of the chosen topic", partial(app.show_events, Position.end())),
    ]
    return found


def _pause(app: Host) -> None:
    if not app.is_reading():
        app.notify("Nothing is being read: choose a topic and press e first.", severity="warning", markup=False)
        return
    app.toggle_pause()


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
