"""The workbench app: start-up, the broker connection, which screen opens, and the keys that work
everywhere. The topics, the chosen topic and its events are the main screen's
(:mod:`workbench.tui.screens.main`); each other screen and dialog is a module of ``screens/``.

Built from a :class:`workbench.config.Target`; it connects through :func:`workbench.service.connect`
(the adapter is loaded by name, never imported here) and keeps one connection while it runs.
Every failure becomes a notification that says what happened and what to do.
"""

from __future__ import annotations

import base64
import gc
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches

from workbench import config, service
from workbench.broker import BrokerError, Capabilities, Connection, Event, GroupLag, Position, TopicInfo
from workbench.config import Config, Target
from workbench.errors import WorkbenchError
from workbench.events import codecs
from workbench.events.redaction import REDACTED_HEADER, is_redacted
from workbench.pump import DEFAULT_CAPACITY
from workbench.tui import bindings, drafts, masking
from workbench.tui.connection import Keeper
from workbench.tui.failures import BrokerTrouble, describe_error
from workbench.tui.palette import WorkbenchCommands
from workbench.tui.screens.main import MainScreen
from workbench.tui.supervisor import RETRY_DELAYS, State, Supervisor
from workbench.tui.widgets.topic_view import TopicView

if TYPE_CHECKING:  # the screens and dialogs are imported when first opened (start-up time)
    from workbench.lag_watch import IncrementalRefresh
    from workbench.tui.screens.lag import LagHistory

DEFAULT_POSITION = Position.last(200)
THEMES = ("textual-dark", "textual-light")
_WAITING = (State.CONNECTING, State.RECONNECTING)
#: The garbage collector's thresholds while the app runs. Events stream through the ring buffer
#: (50,000/s and more) and live long enough to reach the oldest generation, so with the default
#: (700, 10, 10) a full collection ran every half second, each walking every event kept and
#: every row cached: 100-300 ms with the screen frozen. Young collections stay as they are (they
#: are short); a full one waits for 1,000 of the middle generation's (tens of seconds while
#: streaming). Nothing streams through cycles, so freeing by reference counts goes on as usual.
GC_THRESHOLDS = (700, 10, 1000)


class WorkbenchApp(App[None]):
    TITLE = "Event Workbench"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    #: The keys that work on every screen (the main screen's are its own). Every binding has an id:
    #: the [keys] table of the profile file rebinds it through Textual's keymap.
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="show every key"),
        Binding(
            "c",
            "copy_value",
            "Copy value",
            show=False,
            id="copy_value",
            tooltip="copy the selected event's value to the clipboard",
        ),
        Binding(
            "C",
            "copy_envelope",
            "Copy envelope",
            show=False,
            id="copy_envelope",
            tooltip="copy the selected event as a JSON envelope",
        ),
        Binding(
            "O",
            "copy_original",
            "Copy original",
            show=False,
            id="copy_original",
            tooltip="copy the selected event's original value, before the [mask] rules (refused under mask_required)",
        ),
        Binding(
            "S",
            "sagas",
            "Sagas",
            show=False,
            id="sagas",
            tooltip="saga instances by state (failed, stuck…); compensate one after a dry run",
        ),
        Binding(
            "T",
            "trace",
            "Trace",
            show=False,
            id="trace",
            tooltip="every event carrying a correlation id (the selected event's), across topics, in time order",
        ),
        Binding(
            "d",
            "dead_letters",
            "Dead letters",
            show=False,
            id="dead_letters",
            tooltip="the chosen topic's dead letters grouped by cause (Spring Kafka, Kafka Connect, RabbitMQ)",
        ),
        Binding(
            "t", "toggle_theme", "Theme", show=False, id="toggle_theme", tooltip="toggle the light and the dark theme"
        ),
        Binding("q", "quit", "Quit", id="quit", tooltip="quit the workbench"),
        Binding(
            "ctrl+c",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="quit_anywhere",
            tooltip="quit, in a dialog or a text box too",
        ),
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
        """``settings``: the profile file (profiles to switch to); ``keymap``: the checked ``[keys]``
        table (bindings.keymap); ``now``/``make_id``: wall clock and ids for templates and file names."""
        super().__init__()
        self.target = target
        self.capacity = capacity
        self.clock = clock
        self.lag_interval = lag_interval
        self.default_position = default_position
        self.settings = settings
        self.keymap = dict(keymap or {})
        self.health_interval = health_interval
        self.now = now
        self.make_id = make_id
        self.supervisor = Supervisor(retry_delays)
        self.keeper = Keeper(self, self.supervisor)
        self.groups_cache: tuple[float, list[GroupLag]] | None = None  # the last lag of every group
        #: The lag view's reads on one connection: idle groups (no member, no lag) are read again only
        #: every 6th refresh, as `lag --watch` does (a shared cluster has thousands of them).
        self.lag_refresh: tuple[Connection, IncrementalRefresh] | None = None
        self.capabilities = Capabilities()
        self.lag_history: LagHistory | None = None  # made when the lag view first opens
        self._when_connected: Callable[[], object] | None = None  # a view asked for while connecting
        self._main: MainScreen | None = None
        self._gc_saved: tuple[int, int, int] | None = None  # the thresholds before the app's own
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------ start-up

    def get_default_screen(self) -> MainScreen:
        self._main = MainScreen(
            capacity=self.capacity, clock=self.clock, default_position=self.default_position, now=self.now
        )
        return self._main

    @property
    def main(self) -> MainScreen:
        """The main screen (topics, the chosen topic, its events); the app's queries look there."""
        assert self._main is not None, "the app is not composed yet"
        return self._main

    def on_mount(self) -> None:
        profile = self.target.profile
        self.sub_title = codecs.safe_text(f"{profile.name} · {self.where()}")
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
        self._tune_gc()
        if self.conn is None and self.connection_state == State.CONNECTING:
            self.keeper.start()

    # ------------------------------------------------------------------ the connection (connection.Keeper's host)

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

    async def connected(self, conn: Connection, again: bool) -> None:
        """The keeper connected (``again``: after a loss): topics, then the read the loss stopped."""
        self.capabilities = service.capabilities(self.target)
        self.groups_cache = None
        self.refresh_bindings()
        self.refresh_status()
        if again:
            self.notify("Connected to the broker again.", title="Reconnected", markup=False)
        await self.main.connected()
        pending, self._when_connected = self._when_connected, None
        if pending is not None:
            pending()
        await self.main.resume(conn)

    def remember_read(self) -> None:
        self.main.remember_read()

    async def stop_reading(self) -> None:
        await self.main.stream.stop()

    def topics_seen(self, topics: list[TopicInfo]) -> None:
        self.main.topics_seen(topics)

    def read_rides_out_outage(self) -> bool:
        return self._main is not None and self._main.read_rides_out_outage()

    def refresh_status(self) -> None:
        if self._main is not None:
            self._main.refresh_status()

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

    def when_connected(self, action: Callable[[], object]) -> bool:
        """True when connected. While the connection is being made, ``action`` runs once it is (a
        key pressed as the app opens is not lost); when it cannot be made, say how to retry."""
        if self.conn is not None:
            return True
        if self.connection_state in _WAITING:
            self._when_connected = action
            self.notify("Connecting to the broker: this opens once connected.", markup=False)
        else:
            self.notify("Not connected to the broker: press r to retry.", severity="warning", markup=False)
        return False

    async def action_quit(self) -> None:
        await self.keeper.release()
        self.exit()

    async def on_unmount(self) -> None:
        await self.keeper.release()
        if self._gc_saved is not None:
            gc.set_threshold(*self._gc_saved)
            gc.unfreeze()
            self._gc_saved = None

    def _tune_gc(self) -> None:
        """Once the screens are built: what exists now lives as long as the app (widgets, styles),
        so the collector need not walk it again (``gc.freeze``); then :data:`GC_THRESHOLDS`. Both
        are undone when the app ends (a test process goes on)."""
        if self._gc_saved is None:
            self._gc_saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)

    def report(self, exc: BaseException, doing: str, hint: str | None = None) -> None:
        what, known = describe_error(exc)
        hint = hint or known
        message = "\n".join(codecs.safe_text(part[:400]) for part in (what, hint) if part)
        self.notify(message, title=codecs.safe_text(f"Could not {doing}"), severity="error", timeout=10, markup=False)

    # ------------------------------------------------------------------ keys

    #: The views the main screen's keys open (over another screen the command palette cannot).
    _FROM_MAIN = frozenset({"lag", "publish", "switch_profile"})
    _NEED_CONN = frozenset({"lag", "publish"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows only the keys that apply now."""
        if action in self._FROM_MAIN and self.screen is not self._main:
            return False
        if action in self._NEED_CONN and self.conn is None and self.connection_state not in _WAITING:
            return False  # while a connection is being made they stay: they run once it is
        if action in ("copy_value", "copy_envelope", "copy_original"):
            if action == "copy_original" and masking.summary(self.conn) is None:
                return False  # nothing is redacted: the value is the original (c copies it)
            try:
                return self.selected_event() is not None
            except NoMatches:  # asked while the views are gone (at exit)
                return False
        return True

    def key_for(self, binding_id: str) -> str:
        """The key in force of a binding of the app or the main screen, as people write it."""
        for binding in (*bindings.own(type(self)), *bindings.own(MainScreen)):
            if binding.id == binding_id:
                return bindings.key_of(binding, self.keymap)
        raise KeyError(binding_id)

    def palette_entries(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(title, help, callback) of every action, for the command palette (ctrl+p)."""
        from workbench.tui.palette import entries

        return entries(self)

    def action_help(self) -> None:
        from workbench.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(bindings.help_sections(type(self), self.keymap, self.COMMAND_PALETTE_BINDING)))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme != THEMES[1] else THEMES[0]
        self.notify(f"Theme: {self.theme} ({self.key_for('toggle_theme')} toggles)", timeout=3, markup=False)

    # ------------------------------------------------------------------ the views the app opens (screen routing)

    async def _lag_of_every_group(self) -> list[GroupLag]:
        """What the lag view refreshes, on the current connection (a reconnect replaces it)."""
        conn = self.conn
        if conn is None:
            raise ConnectionError("not connected: the workbench is reconnecting")
        if self.lag_refresh is None or self.lag_refresh[0] is not conn:
            from workbench.lag_watch import IncrementalRefresh

            self.lag_refresh = (conn, IncrementalRefresh(conn.lag))
        groups = await self.lag_refresh[1]()
        if conn is self.conn:
            self.groups_cache = (time.monotonic(), groups)
        return groups

    def action_lag(self) -> None:
        if not self.when_connected(self.action_lag):
            return
        fetch = self._lag_of_every_group if self.capabilities.consumer_groups else None
        from workbench.tui.screens.lag import LagHistory, LagScreen

        if self.lag_history is None:
            self.lag_history = LagHistory()
        self.push_screen(LagScreen(fetch, interval=self.lag_interval, history=self.lag_history))

    def action_trace(self) -> None:
        """The trace view, on the selected event's correlation id when there is one."""
        if not self.when_connected(self.action_trace):
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

    def action_dead_letters(self) -> None:
        """The dead-letter view (workbench.tui.screens.dlq) of the topic chosen in the topic view."""
        topic = self.main.topic
        if topic is None:
            self.notify("Choose a topic first: its dead letters are grouped by cause.", severity="warning")
            return
        if not self.when_connected(self.action_dead_letters):
            return
        from workbench.tui.screens.dlq import DeadLetterScreen

        self.push_screen(DeadLetterScreen(lambda: self.conn, topic))

    def action_sagas(self) -> None:
        """The saga view (workbench.tui.screens.sagas): instances, steps, compensation."""
        if not self.when_connected(self.action_sagas):
            return
        from workbench.tui.screens.sagas import SagaScreen

        self.push_screen(SagaScreen(lambda: self.conn, self.target))

    def action_publish(self) -> None:
        profile = self.target.profile
        if profile.read_only:
            self.notify(
                f"Profile {codecs.safe_text(profile.name)!r} is read-only, so publishing is refused. "
                f"Switch to a writable profile ({self.key_for('switch_profile')}) or remove "
                f"read_only = true from it ({codecs.safe_text(profile.source)}).",
                title="Publish refused",
                severity="warning",
                timeout=10,
                markup=False,
            )
            return
        if not self.when_connected(self.action_publish):
            return
        main = self.main
        refusal = main.query_one(TopicView).refusal("write")  # the broker said so: say it, do not try
        if refusal is not None:
            self.notify(refusal, title="Publish not authorized", severity="warning", timeout=10, markup=False)
            return
        from workbench.tui.screens.publish import PublishDialog

        self.push_screen(
            PublishDialog(
                lambda: self.conn,
                profile,
                topic=main.topic or "",
                kinds={t.name: t.kind for t in main.topics},
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
        self.lag_history = None
        profile = target.profile
        self.sub_title = codecs.safe_text(f"{profile.name} · {self.where()}")
        self.main.reset()
        self.notify(
            codecs.safe_text(f"Connecting to profile {profile.name} ({self.where()})"),
            title="Switch profile",
            markup=False,
        )
        self.run_worker(self._switch(), group="connect", exclusive=True)

    async def _switch(self) -> None:
        await self.main.stream.close()
        await self.keeper.connect()

    # ------------------------------------------------------------------ the selected event: copy

    def selected_event(self) -> Event | None:
        """The event of the detail screen, or the one under the cursor of the event list."""
        if self.screen is not self.main:  # only the detail screen has an event (no import needed to tell)
            shown = getattr(self.screen, "event", None)
            return shown if isinstance(shown, Event) else None
        return self.main.selected_event()

    def action_copy_value(self) -> None:
        """The value as shown: redacted where the [mask] rules apply."""
        event = self.selected_event()
        if event is not None:
            self._copy_value(event, "the value")

    def _copy_value(self, event: Event, what: str) -> None:
        if event.value is None:
            self.notify("The event has no value (null): nothing copied.", severity="warning", markup=False)
            return
        try:
            self.copy_to_clipboard(event.value.decode("utf-8"))
        except UnicodeDecodeError:
            self.copy_to_clipboard(base64.b64encode(event.value).decode("ascii"))
            what = f"{what} (binary, as base64)"
        self.notify(f"Copied {what} ({codecs.human_size(len(event.value))}) to the clipboard.", timeout=3, markup=False)

    def action_copy_original(self) -> None:
        """The original value of a redacted event; refused where the profile requires redaction."""
        event = self.selected_event()
        if event is None:
            return
        profile = self.target.profile
        if profile.mask_required:
            refused = masking.refusal(profile)
            self.notify(
                f"{refused[:1].upper()}{refused[1:]}. {self.key_for('copy_value')} copies the redacted value.",
                title="Copy refused",
                severity="warning",
                timeout=10,
                markup=False,
            )
            return
        if not is_redacted(event.headers):
            self._copy_value(event, "the value (nothing in it is masked)")
            return
        original = masking.original(event)
        if original is None:
            self.notify(
                f"The event is a stored redacted copy (header {REDACTED_HEADER}): its original is not here, "
                "nothing copied.",
                title="No original",
                severity="warning",
                markup=False,
            )
            return
        self._copy_value(original, "the original value (not redacted)")

    def redaction_note(self, event: Event) -> str | None:
        """The detail pane's line on a redacted event (masking.detail_note, with the key in force)."""
        return masking.detail_note(event, self.target.profile, self.key_for("copy_original"))

    def action_copy_envelope(self) -> None:
        event = self.selected_event()
        if event is not None:
            from workbench.events.envelope import dumps_event

            self.copy_to_clipboard(dumps_event(event))
            self.notify(
                "Copied the event as a JSON envelope (workbench publish --file reads it).", timeout=3, markup=False
            )


def run_app(target: Target, settings: Config | None = None) -> None:
    """Open the workbench on ``target`` (blocks until the user quits). The ``[keys]`` table of the
    profile file is checked first: a mistake there stops here with a ConfigError naming the field."""
    if settings is None:
        settings = config.load_config()
    keymap = bindings.keymap(settings.keys, settings.path, WorkbenchApp)
    app = WorkbenchApp(target, settings=settings, keymap=keymap)
    # Modules and the app live as long as the process: the garbage collector need not walk them
    # again, so a full collection while events stream in costs milliseconds, not a frame or more.
    gc.freeze()
    app.run()
