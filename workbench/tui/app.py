"""The workbench app: topics on the left, the topic and its events on the right, lag on a key.

Built from a :class:`workbench.config.Target`; it connects through :func:`workbench.service.connect`
(the adapter is loaded by name, never imported here) and keeps one connection while it runs.
Every failure becomes a notification that says what happened and what to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, TabbedContent, TabPane

from workbench import config, service
from workbench.broker import (
    BrokerError,
    Capabilities,
    Connection,
    Event,
    GroupLag,
    Position,
    TopicInfo,
    Unsupported,
)
from workbench.config import Config, Target
from workbench.errors import WorkbenchError
from workbench.events import codecs
from workbench.pump import DEFAULT_CAPACITY
from workbench.tui import drafts, keys
from workbench.tui.connection import Keeper
from workbench.tui.failures import BrokerTrouble, describe_error, is_loss
from workbench.tui.palette import WorkbenchCommands
from workbench.tui.supervisor import RETRY_DELAYS, State, Supervisor
from workbench.tui.widgets.event_list import EventList
from workbench.tui.widgets.status_line import StatusLine
from workbench.tui.widgets.stream_view import StreamView
from workbench.tui.widgets.topic_list import TopicList
from workbench.tui.widgets.topic_view import TopicView

if TYPE_CHECKING:  # the screens and dialogs are imported when first opened (start-up time)
    from workbench.tui.screens.lag import LagHistory

DEFAULT_POSITION = Position.last(200)
THEMES = ("textual-dark", "textual-light")


class WorkbenchApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Event Workbench"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    #: Every app action has an id (its name in keys.ACTIONS): the [keys] table of the profile file
    #: rebinds it through Textual's keymap.
    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        *(Binding(a.key, a.name, a.label, show=a.show, id=a.name) for a in keys.ACTIONS),
    ]

    def __init__(
        self,
        target: Target,
        *,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        lag_interval: float = 5.0,
        default_position: Position = DEFAULT_POSITION,
        settings: Config | None = None,
        keymap: Mapping[str, str] | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        health_interval: float = 10.0,
        now: Callable[[], float] = time.time,
        make_id: Callable[[], str] = drafts.new_id,
    ) -> None:
        """``settings``: the profile file (profiles to switch to); ``keymap``: validated ``[keys]``
        overrides (keys.keymap); ``now``/``make_id``: wall clock and ids for templates and file names."""
        super().__init__()
        self.target = target
        self.capacity = capacity
        self.clock = clock
        self.lag_interval = lag_interval
        self.default_position = default_position
        self.settings = settings
        self.keys = keys.effective(keymap or {})
        self.retry_delays = retry_delays
        self.health_interval = health_interval
        self.now = now
        self.make_id = make_id
        self.supervisor = Supervisor(retry_delays)
        self.keeper = Keeper(self, self.supervisor)
        self.groups_cache: tuple[float, list[GroupLag]] | None = None  # the last lag of every group
        self._groups_fetching = False  # one fetch of every group's lag at a time
        self.capabilities = Capabilities()
        self.topics: list[TopicInfo] = []
        self.topic: str | None = None
        self.lag_history: LagHistory | None = None  # made when the lag view first opens
        self._resume: tuple[str, Position] | None = None  # the read to start again after a reconnect
        self._when_connected: Callable[[], object] | None = None  # an action asked for while connecting
        self.saved: Path | None = None  # the last file events were saved to
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------ layout

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

    @property
    def stream(self) -> StreamView:
        return self.query_one(StreamView)

    @property
    def conn(self) -> Connection | None:
        """The connection (None while there is none); a reconnect replaces it."""
        return self.keeper.conn

    @conn.setter
    def conn(self, conn: Connection | None) -> None:
        self.keeper.conn = conn

    @property
    def connection_state(self) -> State:
        return self.supervisor.state

    @property
    def attempt(self) -> int:
        return self.supervisor.attempt

    def on_mount(self) -> None:
        profile = self.target.profile
        self.sub_title = codecs.safe_text(f"{profile.name} · {self.where()}")
        self.query_one("#topics").focus()
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status, name="status")
        self.set_interval(self.health_interval, self.keeper.check_health, name="health")
        # The first frame comes first: loading the adapter, connecting and listing topics wait for it.
        self.call_after_refresh(self._after_first_frame)

    def where(self) -> str:
        """Where the profile points (secrets masked); a local event log by its path, not ``local()``."""
        profile = self.target.profile
        if self.target.adapter == config.DEFAULT_ADAPTER and not profile.broker:
            return f"local:{self.target.options.get('path', '')}"
        return profile.shown_broker()

    def _after_first_frame(self) -> None:
        if self.conn is None and self.connection_state == State.CONNECTING:
            self.keeper.start()

    # ------------------------------------------------------------------ connection

    async def connected(self, conn: Connection, again: bool) -> None:
        """The keeper connected (``again``: after a loss): topics, then the read the loss stopped."""
        self.capabilities = service.capabilities(self.target)
        self.groups_cache = None
        self.refresh_bindings()
        self.refresh_status()
        if again:
            self.notify("Connected to the broker again.", title="Reconnected", markup=False)
        await self._load_topics()
        pending, self._when_connected = self._when_connected, None
        if pending is not None:
            pending()
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == self.topic:
            await self.stream.start(conn, *resume)
            self.refresh_status()

    def remember_read(self) -> None:
        """The broker is lost: the open read starts again from its position once reconnected."""
        stream = self.stream
        if stream.topic is not None and stream.position is not None:
            self._resume = (stream.topic, stream.position)

    async def stop_reading(self) -> None:
        await self.stream.stop()

    def topics_seen(self, topics: list[TopicInfo]) -> None:
        """The periodic check listed the topics: refill the list when topics came or went."""
        if [t.name for t in topics] != [t.name for t in self.topics]:
            self.topics = topics
            self._fill_topics()

    def read_rides_out_outage(self) -> bool:
        """The open read lost the broker and its adapter is retrying (it resumes with no gap)."""
        try:
            pump = self.stream.pump
        except NoMatches:  # at exit
            return False
        return pump is not None and pump.active and pump.outage is not None

    def broker_lost(self, exc: BaseException) -> None:
        """Something said the broker is gone: reconnect (see connection.Keeper.failed)."""
        self.keeper.failed(exc)

    def bulk_request_failed(self, exc: BaseException, what: str) -> bool:
        """A bulk request failed. True when the app took it on; False: the caller reports it."""
        return self.keeper.bulk_failed(exc, what)

    def on_broker_trouble(self, message: BrokerTrouble) -> None:
        """A screen's request failed in a way that may mean the broker is gone."""
        if message.bulk is None:
            self.broker_lost(message.error)
        else:
            self.bulk_request_failed(message.error, message.bulk)

    async def action_quit(self) -> None:
        await self.keeper.release()
        self.exit()

    async def on_unmount(self) -> None:
        await self.keeper.release()

    def report(self, exc: BaseException, doing: str, hint: str | None = None) -> None:
        what, known = describe_error(exc)
        hint = hint or known
        message = "\n".join(codecs.safe_text(part[:400]) for part in (what, hint) if part)
        self.notify(message, title=codecs.safe_text(f"Could not {doing}"), severity="error", timeout=10, markup=False)

    # ------------------------------------------------------------------ topics

    async def _load_topics(self) -> None:
        if self.conn is None:
            return
        try:
            self.topics = await self.conn.list_topics()
        except Exception as exc:
            if is_loss(exc):
                self.broker_lost(exc)
            else:
                self.report(exc, "list the topics")
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
            self.refresh_bindings()
            self.query_one(TopicView).reading(name, self._kind(name))  # never the previous topic's figures
        self.query_one(TabbedContent).active = "tab-topic"
        self.run_worker(self._load_topic(name), group="topic", exclusive=True)

    def _kind(self, name: str) -> str:
        return next((t.kind for t in self.topics if t.name == name), "topic")

    #: Seconds the lag of every group read for one topic's overview serves the next ones opened.
    GROUPS_FRESH_S = 10.0

    async def _load_topic(self, name: str) -> None:
        """The topic's figures first (one cheap call); its groups come from the lag of every group,
        a bulk request read in the background (one at a time) and kept a few seconds."""
        if self.conn is None:
            return
        try:
            info = await self.conn.describe_topic(name)
        except Exception as exc:
            if is_loss(exc):
                self.broker_lost(exc)
            else:
                self.report(exc, f"describe {name!r}")
            return
        view = self.query_one(TopicView)
        if not self.capabilities.consumer_groups:
            view.show(info, None)
            return
        cached = self.groups_cache
        fresh = cached is not None and time.monotonic() - cached[0] < self.GROUPS_FRESH_S
        view.show(info, cached[1] if fresh and cached is not None else TopicView.LOADING)
        if not fresh and not self._groups_fetching:
            self.run_worker(self._fetch_groups(self.conn), group="topic-groups")

    async def _fetch_groups(self, conn: Connection) -> None:
        self._groups_fetching = True
        try:
            groups: list[GroupLag] | None = await service.lag(conn)
        except Unsupported:
            groups = None
        except Exception as exc:
            if conn is self.conn and not self.bulk_request_failed(exc, "reading the consumer groups"):
                self.report(exc, "read the consumer groups")
            with contextlib.suppress(NoMatches):
                self.query_one(TopicView).groups_failed(exc)
            return
        finally:
            self._groups_fetching = False
        if conn is not self.conn:
            return
        if groups is not None:
            self.groups_cache = (time.monotonic(), groups)
        with contextlib.suppress(NoMatches):  # at exit
            self.query_one(TopicView).show_groups(groups)

    # ------------------------------------------------------------------ events

    def _connected_or_later(self, action: Callable[[], object]) -> bool:
        """True when connected. While the connection is being made, ``action`` runs once it is (a
        key pressed as the app opens is not lost); when it cannot be made, say how to retry."""
        if self.conn is not None:
            return True
        if self.connection_state in self._WAITING:
            self._when_connected = action
            self.notify("Connecting to the broker: this opens once connected.", markup=False)
        else:
            self.notify("Not connected to the broker: press r to retry.", severity="warning", markup=False)
        return False

    def _need_topic(self) -> bool:
        if self.conn is None:
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

    async def show_events(self, position: Position | None = None, *, focus_filter: bool = False) -> None:
        """The events tab of the chosen topic, read from ``position`` (else the read going on)."""
        if not self._need_topic():
            return
        self.query_one(TabbedContent).active = "tab-events"
        await self._ensure_stream(position)
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

        async def chosen(position: Position | None) -> None:
            if position is not None:
                await self.show_events(position)

        from workbench.tui.screens.position import PositionDialog

        self.push_screen(PositionDialog(self.topic, str(self.start_of(self.topic))), chosen)

    async def _ensure_stream(self, position: Position | None = None) -> None:
        """Read the chosen topic: from ``position`` (restart), else keep a read already going."""
        stream = self.stream
        if self.conn is None or self.topic is None:
            return
        if position is None and stream.topic == self.topic and stream.pump is not None and stream.pump.active:
            return  # already reading it (after an error, e reads again)
        await stream.start(self.conn, self.topic, position or self.start_of(self.topic))
        self.refresh_status()

    def start_of(self, topic: str) -> Position:
        """Where ``e`` reads from: an exchange keeps no history, so a live tap from the end (as
        `workbench tail EXCHANGE --follow`); anything else the last events, then follow."""
        return Position.end() if self._kind(topic) == "exchange" else self.default_position

    async def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id != "tab-events" or self.topic is None or self.conn is None:
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
            self.keeper.lose(message.error)  # a read is not a bulk request: read again once reconnected
        else:
            self.report(message.error, f"read {message.topic!r}")
        self.refresh_status()

    def on_event_list_selected(self, message: EventList.Selected) -> None:
        from workbench.tui.screens.detail import DetailScreen

        self.push_screen(DetailScreen(message.event))

    # ------------------------------------------------------------------ which keys apply

    #: Actions of the main screen (not over the detail, lag or a dialog).
    _MAIN_ONLY = frozenset(
        {"events", "events_from", "find_topic", "reload", "lag", "publish", "save_events", "switch_profile"}
    )
    _NEED_CONN = frozenset({"events", "events_from", "lag", "publish"})

    _WAITING = (State.CONNECTING, State.RECONNECTING)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows only the keys that apply now."""
        if action in self._MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        if action in self._NEED_CONN and self.conn is None and self.connection_state not in self._WAITING:
            return False  # while a connection is being made they stay: they run once it is
        if action in ("events", "events_from") and self.topic is None:
            return False
        try:
            if action == "save_events" and not len(self.stream.buffer):
                return False
            if action in ("copy_value", "copy_envelope") and self.selected_event() is None:
                return False
        except NoMatches:  # asked while the views are gone (at exit)
            return False
        return True

    def palette_entries(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(title, help, callback) of every action, for the command palette (ctrl+p)."""
        from workbench.tui.palette import entries

        return entries(self)

    # ------------------------------------------------------------------ other keys

    def action_help(self) -> None:
        from workbench.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.keys))

    async def _lag_of_every_group(self) -> list[GroupLag]:
        """What the lag view refreshes, on the current connection (a reconnect replaces it)."""
        conn = self.conn
        if conn is None:
            raise ConnectionError("not connected: the workbench is reconnecting")
        groups = await service.lag(conn)
        if conn is self.conn:
            self.groups_cache = (time.monotonic(), groups)
        return groups

    def action_lag(self) -> None:
        if not self._connected_or_later(self.action_lag):
            return
        fetch = self._lag_of_every_group if self.capabilities.consumer_groups else None
        from workbench.tui.screens.lag import LagHistory, LagScreen

        if self.lag_history is None:
            self.lag_history = LagHistory()
        self.push_screen(LagScreen(fetch, interval=self.lag_interval, history=self.lag_history))

    def action_trace(self) -> None:
        """The trace view, on the selected event's correlation id when there is one."""
        if not self._connected_or_later(self.action_trace):
            return
        from workbench.events.correlation import rules_from_config

        try:
            rules = rules_from_config(self.settings)
        except WorkbenchError as exc:
            self.notify(codecs.safe_text(str(exc)), severity="error", markup=False)
            return
        event = self.selected_event()
        wanted = rules.correlation_id(event) if event is not None else None
        from workbench.tui.screens.trace import TraceScreen

        self.push_screen(
            TraceScreen(lambda: self.conn, correlation_id=wanted, rules=rules, profile=self.target.profile.name)
        )

    def action_sagas(self) -> None:
        """The saga view (workbench.tui.screens.sagas): instances, steps, compensation."""
        if not self._connected_or_later(self.action_sagas):
            return
        from workbench.tui.screens.sagas import SagaScreen

        self.push_screen(SagaScreen(lambda: self.conn, self.target))

    def action_find_topic(self) -> None:
        self.query_one(TopicList).focus_filter()

    def action_reload(self) -> None:
        if self.conn is None:
            self.keeper.start()
            return
        self.run_worker(self._load_topics(), group="topics", exclusive=True)
        if self.topic is not None:
            self.run_worker(self._load_topic(self.topic), group="topic", exclusive=True)

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme != THEMES[1] else THEMES[0]
        self.notify(f"Theme: {self.theme} ({keys.display(self.keys['toggle_theme'])} toggles)", timeout=3, markup=False)

    def action_publish(self) -> None:
        profile = self.target.profile
        if profile.read_only:
            self.notify(
                f"Profile {codecs.safe_text(profile.name)!r} is read-only, so publishing is refused. "
                f"Switch to a writable profile ({keys.display(self.keys['switch_profile'])}) or remove "
                f"read_only = true from it ({codecs.safe_text(profile.source)}).",
                title="Publish refused",
                severity="warning",
                timeout=10,
                markup=False,
            )
            return
        if not self._connected_or_later(self.action_publish):
            return
        from workbench.tui.screens.publish import PublishDialog

        self.push_screen(
            PublishDialog(
                lambda: self.conn,
                profile,
                topic=self.topic or "",
                kinds={t.name: t.kind for t in self.topics},
                now=self.now,
                make_id=self.make_id,
            )
        )

    def action_switch_profile(self) -> None:
        settings = self.settings
        if settings is None or not settings.profiles:
            self.notify(
                "No profile file with profiles: add [profiles.NAME] tables to workbench.toml "
                "(README: Connecting), then start the workbench again.",
                title="Switch profile",
                severity="warning",
                timeout=10,
                markup=False,
            )
            return

        def chosen(name: str | None) -> None:
            if name is not None and name != self.target.profile.name:
                self.switch_profile(name)

        from workbench.tui.screens.profiles import ProfilePicker

        self.push_screen(
            ProfilePicker(list(settings.profiles.values()), self.target.profile.name, str(settings.path)), chosen
        )

    def switch_profile(self, name: str) -> None:
        """Leave the current broker and connect to profile ``name`` (no restart)."""
        assert self.settings is not None
        try:
            target = config.resolve(self.settings.profile(name))
        except (WorkbenchError, BrokerError) as exc:  # e.g. a ${SECRET} that is not set
            self.report(exc, f"switch to profile {name!r}")
            return
        self.target = target
        self.topic, self.topics, self._resume = None, [], None
        self.lag_history = None
        profile = target.profile
        self.sub_title = codecs.safe_text(f"{profile.name} · {self.where()}")
        self.query_one(TopicView).reset()
        self.query_one(TabbedContent).active = "tab-topic"
        self._fill_topics()
        self.notify(
            codecs.safe_text(f"Connecting to profile {profile.name} ({self.where()})"),
            title="Switch profile",
            markup=False,
        )
        self.run_worker(self._switch(), group="connect", exclusive=True)

    async def _switch(self) -> None:
        await self.stream.close()
        await self.keeper.connect()

    # ------------------------------------------------------------------ the selected event: copy, save

    def selected_event(self) -> Event | None:
        """The event of the detail screen, or the one under the cursor of the event list."""
        if len(self.screen_stack) > 1:  # only the detail screen has an event (no import needed to tell)
            shown = getattr(self.screen, "event", None)
            return shown if isinstance(shown, Event) else None
        if self.query_one(TabbedContent).active != "tab-events":
            return None
        return self.stream.event_list.selected

    def action_copy_value(self) -> None:
        event = self.selected_event()
        if event is None:
            return
        if event.value is None:
            self.notify("The event has no value (null): nothing copied.", severity="warning", markup=False)
            return
        try:
            self.copy_to_clipboard(event.value.decode("utf-8"))
            what = "the value"
        except UnicodeDecodeError:
            self.copy_to_clipboard(base64.b64encode(event.value).decode("ascii"))
            what = "the binary value, as base64,"
        self.notify(f"Copied {what} ({codecs.human_size(len(event.value))}) to the clipboard.", timeout=3, markup=False)

    def action_copy_envelope(self) -> None:
        event = self.selected_event()
        if event is not None:
            from workbench.events.envelope import dumps_event

            self.copy_to_clipboard(dumps_event(event))
            self.notify(
                "Copied the event as a JSON envelope (workbench publish --file reads it).", timeout=3, markup=False
            )

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

        self.push_screen(SaveDialog(len(events), f"{safe_name}-{stamp}.jsonl", what), chosen)

    async def _save(self, path: Path, events: list[Event]) -> None:
        try:
            from workbench.tui.screens.save import write_jsonl

            count = await asyncio.to_thread(write_jsonl, path, events)
        except WorkbenchError as exc:
            self.report(exc, "save the events")
            return
        self.notify(codecs.safe_text(f"Saved {count:,} events to {path}"), title="Saved", markup=False)
        self.saved = path

    # ------------------------------------------------------------------ status line

    def refresh_status(self) -> None:
        try:
            status = self.query_one("#status", StatusLine)
            stream = self.stream
        except Exception:  # not mounted yet, or shutting down
            return
        status.show_status(self.supervisor, stream, self.keeper.draining)


def run_app(target: Target, settings: Config | None = None) -> None:
    """Open the workbench on ``target`` (blocks until the user quits). The ``[keys]`` table of the
    profile file is checked first: a mistake there stops here with a ConfigError naming the field."""
    if settings is None:
        settings = config.load_config()
    keymap = keys.keymap(settings.keys, settings.path)
    app = WorkbenchApp(target, settings=settings, keymap=keymap)
    # Modules and the app live as long as the process: the garbage collector need not walk them
    # again, so a full collection while events stream in costs milliseconds, not a frame or more.
    gc.freeze()
    app.run()
