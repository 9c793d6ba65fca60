"""The workbench app: topics on the left, the topic and its events on the right, lag on a key.

Built from a :class:`workbench.config.Target`; it connects through :func:`workbench.service.connect`
(the adapter is loaded by name, never imported here) and keeps one connection while it runs.
Every failure becomes a notification that says what happened and what to do.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, OptionList, TabbedContent, TabPane
from textual.widgets.option_list import Option

from workbench import codecs, service
from workbench.broker import BrokerError, Capabilities, Connection, NotFound, Position, TopicInfo, Unsupported
from workbench.config import Target
from workbench.errors import WorkbenchError
from workbench.stream import DEFAULT_CAPACITY
from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.lag import LagScreen
from workbench.tui.screens.position import PositionDialog
from workbench.tui.widgets.event_list import EventList
from workbench.tui.widgets.line import Line
from workbench.tui.widgets.stream_view import StreamView
from workbench.tui.widgets.topic_view import TopicView

DEFAULT_POSITION = Position.last(200)

_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (NotFound, "it may have been deleted: press r to reload the topic list"),
    (Unsupported, "this broker or adapter cannot do it"),
    (BrokerError, "check that the broker is up and the profile is right, then press r to retry"),
)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(what happened, what to do) for a notification; never a traceback."""
    if isinstance(exc, WorkbenchError | BrokerError):
        hint = exc.hint or next((h for kind, h in _HINTS if isinstance(exc, kind)), "")
        return str(exc), hint
    return (f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in Event Workbench: please report it with what you did")


class Sidebar(Vertical):
    """The topic filter box above the topic list."""

    BINDINGS = [Binding("down", "focus_topics", "To the list", show=False)]

    def action_focus_topics(self) -> None:
        self.query_one(OptionList).focus()


class WorkbenchApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Event Workbench"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("e", "events", "Events"),
        Binding("o", "events_from", "From…"),
        Binding("l", "lag", "Lag"),
        Binding("f", "find_topic", "Find topic"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, target: Target, *, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.monotonic, lag_interval: float = 5.0,
                 default_position: Position = DEFAULT_POSITION) -> None:
        super().__init__()
        self.target = target
        self.capacity = capacity
        self.clock = clock
        self.lag_interval = lag_interval
        self.default_position = default_position
        self.conn: Connection | None = None
        self.capabilities = Capabilities()
        self.connection_state = "connecting"
        self.topics: list[TopicInfo] = []
        self.topic: str | None = None
        self._stack: AsyncExitStack | None = None

    # ------------------------------------------------------------------ layout

    def compose(self):
        yield Header()
        with Horizontal(id="body"):
            with Sidebar(id="sidebar"):
                yield Input(placeholder="filter topics (f)", id="topic-filter")
                yield OptionList(id="topics")
            with TabbedContent(id="main", initial="tab-topic"):
                with TabPane("Topic", id="tab-topic"):
                    yield TopicView(id="topic-view")
                with TabPane("Events", id="tab-events"):
                    yield StreamView(capacity=self.capacity, clock=self.clock, id="stream")
        yield Line(id="status")
        yield Footer()

    @property
    def stream(self) -> StreamView:
        return self.query_one(StreamView)

    def on_mount(self) -> None:
        profile = self.target.profile
        self.sub_title = codecs.safe_text(f"{profile.name} · {profile.shown_broker()}")
        self.query_one("#topics", OptionList).focus()
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status, name="status")
        self.run_worker(self._connect(), group="connect", exclusive=True)

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> None:
        await self._release()
        self.connection_state = "connecting"
        self.refresh_status()
        stack = AsyncExitStack()
        try:
            self.conn = await stack.enter_async_context(service.connect(self.target))
            self._stack = stack
            self.capabilities = service.capabilities(self.target)
            self.connection_state = "connected"
            self.refresh_bindings()
        except Exception as exc:
            await stack.aclose()
            self.connection_state = "not connected"
            self.report(exc, "connect")
            self.refresh_status()
            return
        self.refresh_status()
        await self._load_topics()

    async def _release(self) -> None:
        """Stop reading and close the connection (idempotent)."""
        with contextlib.suppress(Exception):  # the DOM may already be gone at exit
            await self.stream.stop()
        stack, self._stack, self.conn = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def action_quit(self) -> None:
        await self._release()
        self.exit()

    async def on_unmount(self) -> None:
        await self._release()

    def report(self, exc: BaseException, doing: str) -> None:
        what, hint = describe_error(exc)
        message = "\n".join(codecs.safe_text(part[:400]) for part in (what, hint) if part)
        self.notify(message, title=codecs.safe_text(f"Could not {doing}"), severity="error", timeout=10,
                    markup=False)

    # ------------------------------------------------------------------ topics

    async def _load_topics(self) -> None:
        if self.conn is None:
            return
        try:
            self.topics = await self.conn.list_topics()
        except Exception as exc:
            self.report(exc, "list the topics")
            return
        self._fill_topics()

    def _fill_topics(self) -> None:
        needle = self.query_one("#topic-filter", Input).value.strip().lower()
        shown = [t for t in self.topics if not t.internal and needle in t.name.lower()]
        options = self.query_one("#topics", OptionList)
        options.clear_options()
        for info in shown:
            prompt = Text(no_wrap=True, overflow="ellipsis")
            prompt.append(codecs.safe_text(info.name))
            prompt.append(f"  {info.count:,}", style="dim")
            options.add_option(Option(prompt, id=info.name))
        if shown:
            keep = next((i for i, t in enumerate(shown) if t.name == self.topic), 0)
            options.highlighted = keep
        elif self.topics:
            options.add_option(Option(Text("no topic matches", style="dim"), disabled=True))
        else:
            options.add_option(Option(Text("no topics yet (try: workbench demo)", style="dim"), disabled=True))

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "topic-filter":
            self._fill_topics()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "topic-filter":
            options = self.query_one("#topics", OptionList)
            options.focus()
            if options.highlighted is not None and not options.get_option_at_index(options.highlighted).disabled:
                options.action_select()

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        if message.option.id is not None:
            self.open_topic(message.option.id)

    def open_topic(self, name: str) -> None:
        if name != self.topic:
            self.topic = name
            self.run_worker(self.stream.close(), group="stream")
            self.refresh_bindings()
        self.query_one(TabbedContent).active = "tab-topic"
        self.run_worker(self._load_topic(name), group="topic", exclusive=True)

    async def _load_topic(self, name: str) -> None:
        if self.conn is None:
            return
        try:
            info = await self.conn.describe_topic(name)
            groups = None
            if self.capabilities.consumer_groups:
                try:
                    groups = await service.lag(self.conn)
                except Unsupported:
                    groups = None
        except Exception as exc:
            self.report(exc, f"describe {name!r}")
            return
        self.query_one(TopicView).show(info, groups)

    # ------------------------------------------------------------------ events

    def _need_topic(self) -> bool:
        if self.conn is None:
            self.notify("Not connected to the broker: press r to retry.", severity="warning", markup=False)
            return False
        if self.topic is None:
            self.notify("Choose a topic first (up/down and enter in the list on the left).",
                        severity="warning", markup=False)
            return False
        return True

    async def action_events(self) -> None:
        if not self._need_topic():
            return
        self.query_one(TabbedContent).active = "tab-events"
        await self._ensure_stream()
        self.stream.event_list.focus()

    def action_events_from(self) -> None:
        if not self._need_topic():
            return
        assert self.topic is not None

        async def chosen(position: Position | None) -> None:
            if position is not None:
                self.query_one(TabbedContent).active = "tab-events"
                await self._ensure_stream(position)
                self.stream.event_list.focus()

        self.push_screen(PositionDialog(self.topic, str(self.default_position)), chosen)

    async def _ensure_stream(self, position: Position | None = None) -> None:
        """Read the chosen topic: from ``position`` (restart), else keep a read already going."""
        stream = self.stream
        if self.conn is None or self.topic is None:
            return
        if position is None and stream.topic == self.topic and stream.pump is not None and stream.pump.active:
            return  # already reading it (after an error, e reads again)
        await stream.start(self.conn, self.topic, position or self.default_position)
        self.refresh_status()

    async def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id == "tab-events" and self.topic is not None and self.conn is not None:
            await self._ensure_stream()

    def on_stream_view_updated(self) -> None:
        self.refresh_status()

    def on_stream_view_failed(self, message: StreamView.Failed) -> None:
        self.report(message.error, f"read {message.topic!r}")
        self.refresh_status()

    def on_event_list_selected(self, message: EventList.Selected) -> None:
        self.push_screen(DetailScreen(message.event))

    # ------------------------------------------------------------------ which keys apply

    _MAIN_ONLY = frozenset({"events", "events_from", "find_topic", "reload", "lag"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows only the keys that apply now."""
        if action in self._MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        if action in ("events", "events_from") and (self.topic is None or self.conn is None):
            return False
        if action == "lag" and self.conn is None:
            return False
        return True

    # ------------------------------------------------------------------ other keys

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_lag(self) -> None:
        if self.conn is None:
            self.notify("Not connected to the broker: press r to retry.", severity="warning", markup=False)
            return
        conn = self.conn
        fetch = (lambda: service.lag(conn)) if self.capabilities.consumer_groups else None
        self.push_screen(LagScreen(fetch, interval=self.lag_interval))

    def action_find_topic(self) -> None:
        self.query_one("#topic-filter", Input).focus()

    def action_reload(self) -> None:
        if self.conn is None:
            self.run_worker(self._connect(), group="connect", exclusive=True)
            return
        self.run_worker(self._load_topics(), group="topics", exclusive=True)
        if self.topic is not None:
            self.run_worker(self._load_topic(self.topic), group="topic", exclusive=True)

    # ------------------------------------------------------------------ status line

    def refresh_status(self) -> None:
        try:
            status = self.query_one("#status", Line)
        except Exception:  # not mounted yet, or shutting down
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.connection_state == "connected":
            text.append("● connected", "green")
        elif self.connection_state == "connecting":
            text.append("○ connecting…", "yellow")
        else:
            text.append("✗ not connected (r retries)", "red")
        stream = self.stream
        buffer = stream.buffer
        if stream.topic is not None:
            text.append("  │  ")
            text.append(codecs.safe_text(stream.topic), "bold")
            text.append(f": {stream.state_text()}")
            text.append(f"  │  {buffer.rate():,.0f} events/s  │  buffered {len(buffer):,}/{buffer.capacity:,}")
            text.append("  │  dropped ")
            text.append(f"{buffer.dropped:,}", "bold red" if buffer.dropped else "")
            if stream.filter_text and stream.pump is not None:
                text.append(f"  │  matched {buffer.received:,} of {stream.pump.scanned:,}")
        status.show(text)


def run_app(target: Target) -> None:
    """Open the workbench on ``target`` (blocks until the user quits)."""
    WorkbenchApp(target).run()
