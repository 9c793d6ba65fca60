"""The saga view: instances by state, one instance's steps with their events, compensation with a
dry run first and the correlation id typed back before anything is published.

All the logic is in :mod:`workbench.compensation` (the CLI's ``saga`` verbs use the same): this
screen only shows its answers. Every execution is recorded in the audit log.

Where the profile file has [mask] rules, the app's events are redacted: a compensation is then
planned from the instance read again with its originals (as ``saga compensate``), published from
them, and its dry run is shown redacted.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from workbench import config, service
from workbench.broker import BrokerError, Connection
from workbench.config import Target
from workbench.errors import WorkbenchError
from workbench.events import codecs
from workbench.events.redaction import Redactor
from workbench.events.text import safe
from workbench.sagas import compensation, observing
from workbench.sagas.instances import STATE_STYLES, STATES, STEP_MARKS, SagaInstance, count_by_state
from workbench.tui.failures import BrokerTrouble, is_loss

FILTERS: tuple[str | None, ...] = (None, "FAILED", "STUCK", "COMPENSATING", "COMPENSATED", "RUNNING", "COMPLETED")


def _text(value: object, style: str = "") -> Text:
    return safe(value, style)


def line(text: Text, content: str, style: str = "") -> None:
    """A new line of ``content``, rendered inert (safe_text also escapes newlines, so they go outside)."""
    text.append("\n")
    text.append(codecs.safe_text(content), style=style)


def _time(ms: int | None) -> str:
    from workbench.events.envelope import format_timestamp

    shown = format_timestamp(ms)
    return "-" if shown is None else str(shown)


class SagaContext:
    """What the view needs beside the connection: definitions, correlation rules, audit log, clock."""

    def __init__(self, target: Target, now: Callable[[], int] | None = None) -> None:
        self.target = target
        self.now = now or (lambda: time.time_ns() // 1_000_000)
        self.sagas = compensation.SagaSettings.load(config.load_config())
        self.definitions = list(self.sagas.definitions.values())
        self.audit = self.sagas.audit
        self.correlate_for = self.sagas.correlate_for


class SagaScreen(Screen[None]):
    DEFAULT_CSS = """
    #sagas { padding: 0 1; }
    #sagas-title { height: auto; margin: 0 0 1 0; }
    #saga-list { height: 1fr; }
    #saga-steps { height: auto; max-height: 12; margin: 1 0 0 0; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="sagas.back"),
        Binding(
            "f",
            "next_filter",
            "State filter",
            id="sagas.next_filter",
            tooltip="show the next state only (failed, stuck, compensating…; then all)",
        ),
        Binding(
            "c",
            "compensate",
            "Compensate…",
            id="sagas.compensate",
            tooltip="compensate the chosen instance: a dry run first, the id typed back to publish",
        ),
        Binding("r", "refresh", "Refresh", id="sagas.refresh", tooltip="read the saga topics again"),
    ]

    def __init__(
        self, connection: Callable[[], Connection | None], target: Target, *, now: Callable[[], int] | None = None
    ) -> None:
        super().__init__()
        self.connection = connection  # the app's current one: a reconnect replaces it
        self.target = target
        self.now = now
        self.context: SagaContext | None = None
        self.instances: list[SagaInstance] = []
        self.filter_index = 0
        self.loaded = 0  # completed loads
        self.failed: str | None = None
        self.hint: str | None = None

    @property
    def state_filter(self) -> str | None:
        return FILTERS[self.filter_index]

    def compose(self):
        yield Header()
        with Vertical(id="sagas"):
            yield Static(id="sagas-title")
            yield DataTable(id="saga-list", cursor_type="row", zebra_stripes=True)
            yield Static(id="saga-steps")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#saga-list", DataTable)
        for label, key in (
            ("SAGA", "saga"),
            ("CORRELATION ID", "id"),
            ("STATE", "state"),
            ("STEPS", "steps"),
            ("LAST EVENT", "last"),
        ):
            table.add_column(label, key=key)
        table.focus()
        self._title()
        self.action_refresh()

    def action_refresh(self) -> None:
        self.run_worker(self._load(), group="sagas", exclusive=True)

    async def _load(self) -> None:
        try:
            if self.context is None:
                self.context = SagaContext(self.target, self.now)
            conn = self.connection()
            if conn is None:
                raise ConnectionError("not connected: the workbench is reconnecting")
            # as `saga list`: a saga topic that does not exist is an error naming the saga, never "none yet"
            await compensation.expected_events(conn, self.context.definitions)
            found: list[SagaInstance] = []
            for definition in self.context.definitions:
                found += await compensation.observe(
                    conn, definition, self.context.correlate_for(definition), now=self.context.now()
                )
            self.instances, self.failed, self.hint = found, None, None
        except Exception as exc:  # noqa: BLE001 - shown in the title; r tries again
            if isinstance(exc, WorkbenchError | BrokerError):
                self.failed, self.hint = str(exc), exc.hint
            else:
                self.failed, self.hint = f"{type(exc).__name__}: {exc}", None
            if is_loss(exc):
                self.post_message(BrokerTrouble(exc))  # the app reconnects
        self.loaded += 1
        self._fill()
        self._title()

    def _title(self) -> None:
        text = Text("Sagas", style="bold")
        if self.failed:  # no count: nothing was read, so "0 instances" would be wrong
            text.append("  ·  could not read them (r retries)", style="dim")
            text.append("\n")
            text.append(_text(self.failed[:400], "red"))
            if self.hint:
                text.append("\n")
                text.append(_text(self.hint[:300], "dim"))
            self.query_one("#sagas-title", Static).update(text)
            return
        counts = count_by_state(self.instances)
        shown = ", ".join(f"{s.lower()} {counts[s]}" for s in STATES if counts[s])
        n = len(self.instances)
        text.append(f"  ·  {n:,} instance{'s' * (n != 1)} ({shown or 'none yet'})", style="dim")
        text.append(f"  ·  showing: {(self.state_filter or 'all').lower()} (f changes)", style="dim")
        self.query_one("#sagas-title", Static).update(text)

    def shown_instances(self) -> list[SagaInstance]:
        return [i for i in self.instances if self.state_filter is None or i.state == self.state_filter]

    def _fill(self) -> None:
        table = self.query_one("#saga-list", DataTable)
        keep = self.current()
        table.clear()
        for i in reversed(self.shown_instances()):  # newest first: what needs attention now
            steps = Text()
            for n, s in enumerate(i.steps):
                steps.append(
                    (" " if n else "") + codecs.safe_text(s.name) + STEP_MARKS[s.status],
                    {"failed": "red", "compensated": "yellow", "done": "green"}.get(s.status, "dim"),
                )
            table.add_row(
                _text(i.saga),
                _text(i.correlation_id),
                _text(i.state, STATE_STYLES.get(i.state, "")),
                steps,
                _text(_time(i.last)),
                key=f"{i.saga}\0{i.correlation_id}",
            )
        if keep is not None and f"{keep.saga}\0{keep.correlation_id}" in table.rows:
            table.move_cursor(row=table.get_row_index(f"{keep.saga}\0{keep.correlation_id}"), animate=False)
        self._fill_steps()

    def current(self) -> SagaInstance | None:
        table = self.query_one("#saga-list", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None
        return next((i for i in self.instances if f"{i.saga}\0{i.correlation_id}" == key), None)

    def _fill_steps(self) -> None:
        chosen = self.current()
        panel = self.query_one("#saga-steps", Static)
        if chosen is None:
            panel.update(Text("No saga instance here." if self.loaded else "Reading the saga topics…", style="dim"))
            return
        text = Text()
        text.append(codecs.safe_text(f"{chosen.saga} {chosen.correlation_id}: "), style="bold")
        text.append(chosen.state, style=STATE_STYLES.get(chosen.state, "bold"))
        if chosen.past_pivot:
            text.append("  (past the pivot)", style="dim")
        for step in chosen.steps:
            line(text, f"  {step.name:<14} {step.kind:<14} {step.status:<12}")
            for role in ("done", "failed", "compensated"):
                seen = getattr(step, role)
                if seen is not None:
                    text.append(codecs.safe_text(f" {role}: {seen.type or '?'} at {seen.position}"), style="dim")
        panel.update(text)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._fill_steps()

    def action_next_filter(self) -> None:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
        self._fill()
        self._title()

    def action_compensate(self) -> None:
        chosen = self.current()
        if chosen is None or self.context is None:
            self.notify("Choose a saga instance first.", severity="warning", markup=False)
            return
        definition = next(d for d in self.context.definitions if d.name == chosen.saga)
        self.app.push_screen(
            CompensateDialog(self.connection, self.context, definition, chosen), lambda _: self.action_refresh()
        )


class CompensateDialog(ModalScreen[None]):
    """The dry run of one instance's compensation; typing its correlation id back executes it."""

    DEFAULT_CSS = """
    CompensateDialog { align: center middle; }
    #compensate { width: 90%; height: 85%; border: thick $warning; background: $surface; padding: 0 1; }
    #compensate-body { height: 1fr; }
    #compensate-result { height: auto; max-height: 8; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="compensate.close", tooltip="close the compensation")]

    def __init__(
        self, connection: Callable[[], Connection | None], context: SagaContext, definition: Any, instance: SagaInstance
    ) -> None:
        super().__init__()
        self.connection = connection
        self.context = context
        self.definition = definition
        self.instance = instance
        self.plan: compensation.Plan | None = None
        self.refusal: str | None = None
        self.result: compensation.Execution | None = None
        self.running = False
        self.redactor: Redactor | None = None  # the [mask] rules: the plan is shown redacted

    def compose(self):
        with Vertical(id="compensate"):
            with VerticalScroll(id="compensate-body"):
                yield Static(id="compensate-plan")
            yield Static(id="compensate-result")
            yield Input(placeholder="type the correlation id to publish, escape to close", id="compensate-confirm")

    def on_mount(self) -> None:
        field = self.query_one("#compensate-confirm", Input)
        field.display = False
        try:
            self.redactor = config.redactor_of(self.context.target.profile)
        except WorkbenchError as exc:  # e.g. the salt's ${ENV} is not set
            self.refusal = str(exc)
            self.query_one("#compensate-plan", Static).update(self._plan_text())
            return
        if self.redactor is None:
            self._planned(self.instance)
            return
        # The app's events are redacted: a compensation filled from them would publish masked values.
        self.query_one("#compensate-plan", Static).update(
            Text("Reading the instance's original events (the [mask] rules redact what is shown)…", style="italic")
        )
        self.run_worker(self._plan_from_originals(), group="compensate", exclusive=True)

    async def _plan_from_originals(self) -> None:
        """The instance observed again on a connection of its own that reads originals, as
        `saga compensate` does (its plan is shown redacted: Plan.redacted)."""
        try:
            async with service.connect(self.context.target, originals=True) as conn:
                _, instance = await observing.find_instance(
                    conn,
                    [self.definition],
                    self.context.correlate_for,
                    self.instance.correlation_id,
                    now=self.context.now(),
                )
        except Exception as exc:  # noqa: BLE001 - shown in the dialog; escape closes it
            self.refusal = f"cannot read the instance's original events: {exc}"
            self.query_one("#compensate-plan", Static).update(self._plan_text())
            return
        self._planned(instance)

    def _planned(self, instance: SagaInstance) -> None:
        profile = self.context.target.profile
        field = self.query_one("#compensate-confirm", Input)
        try:
            self.plan = compensation.plan(self.definition, instance)
        except compensation.CompensationRefused as exc:
            self.refusal = f"{exc}" + (f"\n{exc.hint}" if exc.hint else "")
        if self.plan is not None and profile.read_only and self.plan.events:
            self.refusal = f"profile {profile.name!r} is read-only: this is the dry run only"
        self.query_one("#compensate-plan", Static).update(self._plan_text())
        field.display = self.plan is not None and bool(self.plan.events) and self.refusal is None
        if field.display:
            field.focus()

    def action_close(self) -> None:
        if not self.running:  # never leave while publishing: the result must be seen
            self.dismiss(None)

    def _plan_text(self) -> Text:
        text = Text()
        text.append(
            codecs.safe_text(f"Compensate {self.instance.saga} {self.instance.correlation_id} ({self.instance.state})"),
            style="bold",
        )
        if self.refusal:
            for part in self.refusal.splitlines():
                line(text, part, "red")
        planned = None if self.plan is None else self.plan.redacted(self.redactor)  # what is published is not
        if planned is None:
            return text
        for note in planned.notes:
            line(text, f"note: {note}", "yellow")
        if planned.events:
            text.append(
                f"\nDry run: {len(planned.events)} event(s) would be published, newest step first", style="bold"
            )
        for n, event in enumerate(planned.events, 1):
            key = (event.key or b"-").decode("utf-8", "replace")
            line(text, f"{n}. step {event.step} -> {event.topic}   key {key}")
            for name, raw in event.headers:
                line(text, f"     {name}: {bytes(raw).decode('utf-8', 'replace')}", "dim")
            payload = json.dumps(json.loads(event.value), ensure_ascii=False)
            line(text, f"     payload: {payload}")
        return text

    async def on_input_submitted(self, message: Input.Submitted) -> None:
        if self.plan is None or self.running or self.result is not None:
            return
        result = self.query_one("#compensate-result", Static)
        if message.value.strip() != self.instance.correlation_id:
            result.update(Text("The id typed does not match: nothing was published.", style="red"))
            return
        self.running = True
        message.input.display = False
        result.update(Text("Publishing…", style="yellow"))
        self.run_worker(self._execute(), group="compensate", exclusive=True)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """The app's connection; where the [mask] rules redact its reads, one of its own that reads
        originals (the confirmation looks for the compensations by their fields)."""
        if self.redactor is not None:
            async with service.connect(self.context.target, originals=True) as conn:
                yield conn
            return
        current = self.connection()
        if current is None:
            raise ConnectionError("not connected: the workbench is reconnecting; try again")
        yield current

    async def _execute(self) -> None:
        assert self.plan is not None
        profile = self.context.target.profile
        text = Text()
        try:
            async with self._connection() as conn:
                self.result = await compensation.execute_and_record(
                    conn,
                    self.definition,
                    self.plan,
                    self.context.correlate_for(self.definition),
                    self.context.audit,
                    profile=profile.name,
                    broker=profile.shown_broker(),
                    reason="from the workbench",
                    wait_s=10.0,
                    redactor=self.redactor,
                )
        except Exception as exc:  # noqa: BLE001 - refused or failed: shown, and already in the audit log
            text.append(codecs.safe_text(f"Not done: {exc} (recorded in the audit log)"), style="red")
        else:
            run = self.result
            text.append(f"{run.outcome}: {run.published} published", style="green" if run.outcome == "done" else "red")
            for r in run.results:
                confirmed = "" if r.confirmed is None else (" · confirmed" if r.confirmed else " · unconfirmed")
                line(text, f"  {r.step}: {r.status} {r.position or ''}{confirmed}")
            text.append("\nRecorded in the audit log. Escape closes.", style="dim")
        finally:
            self.running = False
        self.query_one("#compensate-result", Static).update(text)
