"""The main screen: the topics on the left, the chosen topic and its events on the right, the status
line under them. Its keys are its own (BINDINGS, each with an id the ``[keys]`` table rebinds by).

It reaches the app through :class:`Host` only (the connection, reports, the views the app opens), so
this module does not import the app; the app makes it its default screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, cast

from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from workbench import service
from workbench.broker import Capabilities, Connection, Event, GroupLag, Position, TopicInfo, Unsupported
from workbench.errors import WorkbenchError
from workbench.events import codecs
from workbench.tui import masking
from workbench.tui.connection import Keeper
from workbench.tui.failures import describe_error, is_loss
from workbench.tui.supervisor import State, Supervisor
from workbench.tui.widgets.event_list import EventList
from workbench.tui.widgets.status_line import StatusLine
from workbench.tui.widgets.stream_view import StreamView
from workbench.tui.widgets.topic_list import TopicList
from workbench.tui.widgets.topic_view import TopicView

_WAITING = (State.CONNECTING, State.RECONNECTING)


class Host(Protocol):
    """What the main screen asks of the app."""

    conn: Connection | None
    capabilities: Capabilities
    supervisor: Supervisor
    keeper: Keeper
    groups_cache: tuple[float, list[GroupLag]] | None

    @property
    def connection_state(self) -> State: ...
    def report(self, exc: BaseException, doing: str, hint: str | None = None) -> None: ...
    def broker_lost(self, exc: BaseException) -> None: ...
    def bulk_request_failed(self, exc: BaseException, what: str) -> bool: ...


class MainScreen(Screen[None]):
    DEFAULT_CSS = """
    MainScreen #body { height: 1fr; }
    MainScreen #main { width: 1fr; }
    """
    #: The app's help key comes first here too (the same id: one [keys] line moves both), so the footer
    #: starts with it; then the main screen's keys (lag, publish and profile open views: the app's actions).
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", id="help", tooltip="show every key"),
        Binding("f", "find_topic", "Find topic", id="find_topic", tooltip="filter the topic list by typing"),
        Binding(
            "e",
            "events",
            "Events",
            id="events",
            tooltip="events of the chosen topic: the last 200 per partition, then follow",
        ),
        Binding(
            "o",
            "events_from",
            "From…",
            id="events_from",
            tooltip="events of the chosen topic from a position (beginning, offset, time…)",
        ),
        Binding(
            "l", "app.lag", "Lag", id="lag", tooltip="consumer lag of every group: verdicts, sparklines, drill-down"
        ),
        Binding(
            "p",
            "app.publish",
            "Publish",
            id="publish",
            tooltip="publish events to a topic (templates, headers, N copies)",
        ),
        Binding(
            "s",
            "save_events",
            "Save",
            show=False,
            id="save_events",
            tooltip="save the events in the list (as filtered) to a JSONL file",
        ),
        Binding("r", "reload", "Reload", id="reload", tooltip="reload the topic list (reconnects after an error)"),
        Binding(
            "P",
            "app.switch_profile",
            "Profile",
            show=False,
            id="switch_profile",
            tooltip="switch to another profile of the profile file",
        ),
    ]
    #: Seconds the lag of every group read for one topic's overview serves the next ones opened.
    GROUPS_FRESH_S = 10.0

    _NEED_CONN = frozenset({"events", "events_from"})

    def __init__(
        self,
        *,
        capacity: int,
        clock: Callable[[], float],
        default_position: Position,
        now: Callable[[], float],
    ) -> None:
        super().__init__()
        self.capacity = capacity
        self.clock = clock
        self.default_position = default_position
        self.now = now
        self.topics: list[TopicInfo] = []
        self.topic: str | None = None
        self.saved: Path | None = None  # the last file events were saved to
        self._resume: tuple[str, Position] | None = None  # the read to start again after a reconnect
        self._groups_fetching = False  # one fetch of every group's lag at a time

    @property
    def host(self) -> Host:
        return cast(Host, self.app)

    def compose(self):
        yield Header()
        with Horizontal(id="body"):
            yield TopicList(id="sidebar")
            with TabbedContent(id="main", initial="tab-topic"):
                with TabPane("Topic", id="tab-topic"):
                    yield TopicView(id="topic-view")
                with TabPane("Events", id="tab-events"):
                    yield StreamView(capacity=self.capacity, clock=self.clock, id="stream")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#topics").focus()
        self.refresh_status()

    @property
    def stream(self) -> StreamView:
        return self.query_one(StreamView)

    # ------------------------------------------------------------------ which keys apply

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows only the keys that apply now; over another screen none does (the
        command palette runs them here)."""
        if self.app.screen is not self:
            return False
        host = self.host
        if action in self._NEED_CONN and host.conn is None and host.connection_state not in _WAITING:
            return False  # while a connection is being made they stay: they run once it is
        if action in ("events", "events_from") and self.topic is None:
            return False
        try:
            if action == "save_events" and not len(self.stream.buffer):
                return False
        except NoMatches:  # asked while the views are gone (at exit)
            return False
        return True

    # ------------------------------------------------------------------ the connection, as the app tells it

    async def connected(self) -> None:
        """Connected (again): list the topics."""
        await self.load_topics()

    async def resume(self, conn: Connection) -> None:
        """Read the open topic again from where a loss stopped it."""
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == self.topic:
            await self.stream.start(conn, *resume)
            self.refresh_status()

    def remember_read(self) -> None:
        """The broker is lost: the open read starts again from its position once reconnected."""
        stream = self.stream
        if stream.topic is not None and stream.position is not None:
            self._resume = (stream.topic, stream.position)

    def read_rides_out_outage(self) -> bool:
        """The open read lost the broker and its adapter is retrying (it resumes with no gap)."""
        try:
            pump = self.stream.pump
        except NoMatches:  # at exit
            return False
        return pump is not None and pump.active and pump.outage is not None

    def topics_seen(self, topics: list[TopicInfo]) -> None:
        """The periodic check listed the topics: refill the list when topics came or went."""
        if [t.name for t in topics] != [t.name for t in self.topics]:
            self.topics = topics
            self._fill_topics()

    def reset(self) -> None:
        """Another profile: nothing of the last broker's stays."""
        self.topic, self.topics, self._resume = None, [], None
        self.query_one(TopicView).reset()
        self.query_one(TabbedContent).active = "tab-topic"
        self._fill_topics()

    def refresh_status(self) -> None:
        try:
            status = self.query_one("#status", StatusLine)
            stream = self.stream
        except Exception:  # not mounted yet, or shutting down
            return
        status.show_status(self.host.supervisor, stream, self.host.keeper.draining)

    # ------------------------------------------------------------------ topics

    async def load_topics(self) -> None:
        conn = self.host.conn
        if conn is None:
            return
        try:
            self.topics = await conn.list_topics()
        except Exception as exc:
            if is_loss(exc):
                self.host.broker_lost(exc)
            else:
                self.host.report(exc, "list the topics")
            return
        self._fill_topics()

    def _fill_topics(self) -> None:
        self.query_one(TopicList).show_topics(self.topics, self.topic)

    def on_topic_list_chosen(self, message: TopicList.Chosen) -> None:
        self.open_topic(message.name)

    def open_topic(self, name: str) -> None:
        if name != self.topic:
            self.topic = self.query_one(TopicList).current = name
            self.run_worker(self.stream.close(), group="stream")
            self.app.refresh_bindings()
            self.query_one(TopicView).reading(name, self.kind(name))  # never the previous topic's figures
        self.query_one(TabbedContent).active = "tab-topic"
        self.run_worker(self._load_topic(name), group="topic", exclusive=True)

    def kind(self, name: str) -> str:
        return next((t.kind for t in self.topics if t.name == name), "topic")

    async def _load_topic(self, name: str) -> None:
        """The topic's figures first (one cheap call); its groups come from the lag of every group,
        a bulk request read in the background (one at a time) and kept a few seconds."""
        host = self.host
        if host.conn is None:
            return
        try:
            info = await host.conn.describe_topic(name)
        except Exception as exc:
            if is_loss(exc):
                host.broker_lost(exc)
            else:
                host.report(exc, f"describe {name!r}")
            return
        view = self.query_one(TopicView)
        if not host.capabilities.consumer_groups:
            view.show(info, None)
            return
        cached = host.groups_cache
        fresh = cached is not None and time.monotonic() - cached[0] < self.GROUPS_FRESH_S
        view.show(info, cached[1] if fresh and cached is not None else TopicView.LOADING)
        if not fresh and not self._groups_fetching:
            self.run_worker(self._fetch_groups(host.conn), group="topic-groups")

    async def _fetch_groups(self, conn: Connection) -> None:
        host = self.host
        self._groups_fetching = True
        try:
            groups: list[GroupLag] | None = await service.lag(conn)
        except Unsupported:
            groups = None
        except Exception as exc:
            if conn is host.conn and not host.bulk_request_failed(exc, "reading the consumer groups"):
                host.report(exc, "read the consumer groups")
            with contextlib.suppress(NoMatches):
                self.query_one(TopicView).groups_failed(exc)
            return
        finally:
            self._groups_fetching = False
        if conn is not host.conn:
            return
        if groups is not None:
            host.groups_cache = (time.monotonic(), groups)
        with contextlib.suppress(NoMatches):  # at exit
            self.query_one(TopicView).show_groups(groups)

    def action_find_topic(self) -> None:
        self.query_one(TopicList).focus_filter()

    def action_reload(self) -> None:
        if self.host.conn is None:
            self.host.keeper.start()
            return
        self.run_worker(self.load_topics(), group="topics", exclusive=True)
        if self.topic is not None:
            self.run_worker(self._load_topic(self.topic), group="topic", exclusive=True)

    # ------------------------------------------------------------------ events

    def _need_topic(self) -> bool:
        if self.host.conn is None:
            self.notify("Not connected to the broker: press r to retry.", severity="warning", markup=False)
            return False
        if self.topic is None:
            self.notify(
                "Choose a topic first (up/down and enter in the list on the left).", severity="warning", markup=False
            )
            return False
        return True

    async def action_events(self) -> None:
        await self.show_events()

    async def show_events(
        self,
        position: Position | None = None,
        *,
        focus_filter: bool = False,
        until: Position | None = None,
        key: str | None = None,
    ) -> None:
        """The events tab of the chosen topic, read from ``position`` (else the read going on); with
        ``until`` a bounded window, with ``key`` only that key's events (see StreamView.start)."""
        if not self._need_topic():
            return
        # the read first: the tab's activation (its handler keeps a read going) then finds it
        await self._ensure_stream(position, until=until, key=key)
        self.query_one(TabbedContent).active = "tab-events"
        if focus_filter:
            self.stream.action_focus_filter()
        else:
            self.stream.event_list.focus()

    def is_reading(self) -> bool:
        return self.stream.pump is not None

    def toggle_pause(self) -> None:
        self.stream.action_toggle_pause()

    def action_events_from(self) -> None:
        if not self._need_topic():
            return
        assert self.topic is not None
        from workbench.tui.screens.position import PositionDialog, ReadWindow

        async def chosen(window: ReadWindow | None) -> None:
            if window is not None:
                await self.show_events(window.start, until=window.until, key=window.key)

        self.app.push_screen(PositionDialog(self.topic, str(self.start_of(self.topic))), chosen)

    async def _ensure_stream(
        self, position: Position | None = None, *, until: Position | None = None, key: str | None = None
    ) -> None:
        """Read the chosen topic: from ``position`` (restart), else keep a read already going."""
        stream, conn = self.stream, self.host.conn
        if conn is None or self.topic is None:
            return
        if (
            position is None
            and stream.topic == self.topic
            and stream.pump is not None
            and (stream.pump.active or stream.until is not None or stream.key is not None)
        ):
            return  # already reading it, or a window / key search stays shown (after an error, e reads again)
        await stream.start(conn, self.topic, position or self.start_of(self.topic), until=until, key=key)
        self.refresh_status()

    def start_of(self, topic: str) -> Position:
        """Where ``e`` reads from: an exchange keeps no history, so a live tap from the end (as
        `workbench tail EXCHANGE --follow`); anything else the last events, then follow."""
        return Position.end() if self.kind(topic) == "exchange" else self.default_position

    async def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id != "tab-events" or self.topic is None or self.host.conn is None:
            return
        try:
            await self._ensure_stream()
        except NoMatches:  # an activation still queued when the app quit: the view is gone already
            return

    def on_stream_view_updated(self) -> None:
        self.refresh_status()

    def on_stream_view_outage(self, message: StreamView.Outage) -> None:
        topic = codecs.safe_text(message.topic)
        if message.error is not None:
            what, _ = describe_error(message.error)
            self.notify(
                codecs.safe_text(what[:400]) + f"\nThe read of {topic} goes on where it was once the broker "
                "is back (the status line says when).",
                title="Lost the broker",
                severity="warning",
                timeout=10,
                markup=False,
            )
        else:
            self.notify(
                f"Reading {topic} again, from where it was: no event missed.", title="Reconnected", markup=False
            )
        self.refresh_status()

    def on_stream_view_failed(self, message: StreamView.Failed) -> None:
        if is_loss(message.error):
            self.host.keeper.lose(message.error)  # a read is not a bulk request: read again once reconnected
        else:
            self.host.report(message.error, f"read {message.topic!r}")
        self.refresh_status()

    def on_event_list_selected(self, message: EventList.Selected) -> None:
        from workbench.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(message.event))

    def selected_event(self) -> Event | None:
        """The event under the cursor of the event list (None on the topic tab)."""
        if self.query_one(TabbedContent).active != "tab-events":
            return None
        return self.stream.event_list.selected

    # ------------------------------------------------------------------ save

    def action_save_events(self) -> None:
        stream = self.stream
        events = list(stream.buffer)  # what is shown: the filter's matches, up to the buffer's size
        if not events or stream.topic is None:
            self.notify("No events to save: open a topic's events (e) first.", severity="warning", markup=False)
            return
        stamp = datetime.fromtimestamp(self.now(), UTC).strftime("%Y%m%d-%H%M%S")
        safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in stream.topic)[:80]
        what = f"of {stream.topic}" + (" (filtered)" if stream.filter_text else "")

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.run_worker(self._save(path, events), group="save")

        from workbench.tui.screens.save import SaveDialog

        redacted = masking.summary(stream.conn)
        self.app.push_screen(SaveDialog(len(events), f"{safe_name}-{stamp}.jsonl", what, redacted), chosen)

    async def _save(self, path: Path, events: list[Event]) -> None:
        try:
            from workbench.tui.screens.save import write_jsonl

            count = await asyncio.to_thread(write_jsonl, path, events)
        except WorkbenchError as exc:
            self.host.report(exc, "save the events")
            return
        self.notify(codecs.safe_text(f"Saved {count:,} events to {path}"), title="Saved", markup=False)
        self.saved = path
