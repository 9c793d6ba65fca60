"""The publish dialog: topic, key, headers, a JSON value checked as you type, templates, N copies.

With a schema registry, the topic's registered value schema is a template too: its sample value, the
value checked against the schema as you type, and encoded with it (Confluent wire format) on publish.

Publishing goes through :func:`workbench.service.publish` in a worker (the UI never waits on the
broker), and the dialog stays open to show where each copy landed, or the exact error. On a profile
marked ``production = true`` a confirmation comes first. (Read-only profiles never get here: the app
refuses before opening it, and the connection itself refuses too.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from workbench import service
from workbench.broker import Connection, OutgoingEvent, PublishResult
from workbench.config import Profile
from workbench.errors import UsageError
from workbench.events import codecs
from workbench.tui import drafts
from workbench.tui.screens.confirm import ConfirmDialog

if TYPE_CHECKING:
    from workbench.events.schemas.registry import Registry

SHOWN_RESULTS = 50  # result lines shown; the summary counts them all


class PublishDialog(ModalScreen[None]):
    DEFAULT_CSS = """
    PublishDialog { align: center middle; }
    #publish-dialog { width: 110; height: 95%; padding: 0 1; border: thick $accent; background: $surface; }
    .publish-row { height: auto; }
    #publish-topic-box { width: 2fr; height: auto; }
    #publish-key-box { width: 1fr; height: auto; }
    #publish-copies-box { width: 10; height: auto; }
    #publish-template-box { width: 34; height: auto; }
    #publish-headers { height: 6; }
    #publish-value { height: 1fr; min-height: 4; }
    #publish-check { height: auto; max-height: 3; padding: 0 1; }
    #publish-buttons { margin: 0; }
    #publish-buttons Button { margin: 0 1 0 0; }
    #publish-result-box { height: auto; max-height: 8; border-top: solid $foreground 20%; }
    """
    BINDINGS = [
        Binding(
            "ctrl+s",
            "publish",
            "Publish",
            priority=True,
            id="publish.publish",
            tooltip="publish (a confirmation first on a production profile)",
        ),
        Binding(
            "ctrl+t",
            "next_template",
            "Next template",
            priority=True,
            id="publish.next_template",
            tooltip="next template (empty JSON object, CloudEvent with a fresh id and time, the topic's schema)",
        ),
        Binding("escape", "close", "Close", id="publish.close"),
    ]

    def __init__(
        self,
        connection: Callable[[], Connection | None],
        profile: Profile,
        *,
        topic: str = "",
        kinds: Mapping[str, str] | None = None,
        now: Callable[[], float],
        make_id: Callable[[], str] = drafts.new_id,
    ) -> None:
        """``connection``: the app's current connection (it changes when the app reconnects);
        ``kinds``: topic name -> kind, so the key is labelled a routing key for an exchange."""
        super().__init__()
        self.connection = connection
        self.profile = profile
        self.initial_topic = topic
        self.kinds = dict(kinds or {})
        self.now = now
        self.make_id = make_id
        self.template_name = drafts.TEMPLATE_LABELS[0][0]
        self.schema: drafts.SchemaTemplate | None = None  # the schema template in use, if chosen
        self.schema_lookups = 0  # finished schema template lookups (tests wait on it)
        self.published = 0  # completed publish runs (tests wait on it)
        self.last_report: service.PublishReport | None = None

    def _registry(self) -> Registry | None:
        conn = self.connection()
        decoder = service.decoder_of(conn) if conn is not None else None
        return decoder.registry if decoder is not None else None

    def compose(self):
        self.templates = drafts.template_labels(self._registry() is not None)
        with Vertical(id="publish-dialog"):
            title = Text("Publish", style="bold")
            title.append(f"  ·  profile {codecs.safe_text(self.profile.name)}", style="bold")
            if self.profile.production:
                title.append("  PRODUCTION", style="bold reverse red")
            yield Static(title, id="publish-title")
            with Horizontal(classes="publish-row"):
                with Vertical(id="publish-topic-box"):
                    yield Label("Topic (exchange, queue or stream)")
                    yield Input(self.initial_topic, placeholder="topic", id="publish-topic")
                with Vertical(id="publish-key-box"):
                    yield Label("Key", id="publish-key-label")
                    yield Input(placeholder="none", id="publish-key")
                with Vertical(id="publish-copies-box"):
                    yield Label("Copies")
                    yield Input("1", id="publish-copies", restrict=r"[0-9]*", max_length=5)
                with Vertical(id="publish-template-box"):
                    yield Label("Template (ctrl+t)")
                    yield Select(
                        [(label, name) for name, label in self.templates],
                        value=self.template_name,
                        allow_blank=False,
                        id="publish-template",
                    )
            yield Label("Headers: NAME=VALUE, one per line")
            yield TextArea(id="publish-headers", soft_wrap=False)
            yield Label("Value (JSON)")
            yield TextArea(id="publish-value", language=None, soft_wrap=True)
            yield Static(id="publish-check")
            with Horizontal(classes="publish-row", id="publish-buttons"):
                yield Button("Publish (ctrl+s)", variant="primary", id="publish-send")
                yield Button("Close (escape)", id="publish-close")
            with VerticalScroll(id="publish-result-box"):
                yield Static(id="publish-result")

    def on_mount(self) -> None:
        self._apply_template(self.template_name)
        self._label_key()
        self.query_one("#publish-result-box").display = False
        self.query_one("#publish-value" if self.initial_topic else "#publish-topic").focus()

    # ------------------------------------------------------------------ editing

    def _apply_template(self, name: str) -> None:
        self.template_name = name
        self.schema = None
        if name == drafts.SCHEMA:
            self._look_up_schema()
            return
        chosen = drafts.template(name, now=self.now(), make_id=self.make_id)
        self.query_one("#publish-headers", TextArea).load_text(chosen.headers)
        self.query_one("#publish-value", TextArea).load_text(chosen.value)
        self._check()

    def _look_up_schema(self) -> None:
        """The topic's value schema, looked up in a thread (the registry may be slow or down)."""
        registry, topic = self._registry(), self.query_one("#publish-topic", Input).value.strip()
        if registry is None or not topic:
            self._show_check(False, "type the topic first: its schema is the registry's subject TOPIC-value")
            self.schema_lookups += 1
            return
        self._show_check(True, f"looking up {topic}-value in the schema registry…")

        def look_up() -> None:
            try:
                found: drafts.SchemaTemplate | Exception = drafts.schema_template(registry, topic)
            except Exception as exc:  # noqa: BLE001 - shown in the dialog, whatever the registry said
                found = exc
            self.app.call_from_thread(self._schema_found, found)

        self.run_worker(look_up, thread=True, group="schema-template", exclusive=True)

    def _schema_found(self, found: drafts.SchemaTemplate | Exception) -> None:
        self.schema_lookups += 1
        if self.template_name != drafts.SCHEMA:
            return  # another template was chosen meanwhile
        if isinstance(found, Exception):
            from workbench.tui.failures import describe_error

            what, hint = describe_error(found)
            self._show_check(False, f"no schema template: {what}" + (f" ({hint})" if hint else ""))
            return
        self.schema = found
        self.query_one("#publish-headers", TextArea).load_text("")
        self.query_one("#publish-value", TextArea).load_text(found.value)
        self._check()

    def action_next_template(self) -> None:
        names = [name for name, _ in self.templates]
        following = names[(names.index(self.template_name) + 1) % len(names)]
        self.query_one("#publish-template", Select).value = following  # Select.Changed applies it

    def on_select_changed(self, message: Select.Changed) -> None:
        if message.select.id == "publish-template" and isinstance(message.value, str):
            self._apply_template(message.value)

    def on_text_area_changed(self, message: TextArea.Changed) -> None:
        if message.text_area.id == "publish-value":
            self._check()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "publish-topic":
            self._label_key()
            if self.schema is not None:
                self._check()

    def _label_key(self) -> None:
        topic = self.query_one("#publish-topic", Input).value.strip()
        routing = self.kinds.get(topic) == "exchange" or topic.startswith("exchange:")
        self.query_one("#publish-key-label", Label).update("Routing key" if routing else "Key")

    def _check(self) -> drafts.JsonCheck:
        checked = drafts.check_value(self.query_one("#publish-value", TextArea).text, self.schema)
        topic = self.query_one("#publish-topic", Input).value.strip()
        if checked.ok and self.schema is not None and self.schema.topic != topic:
            checked = drafts.JsonCheck(False, "the topic changed: choose the schema template again (ctrl+t)")
        self._show_check(checked.ok, checked.message)
        return checked

    def _show_check(self, ok: bool, message: str) -> None:
        text = Text("✓ " if ok else "✗ ", style="green" if ok else "bold red")
        text.append(codecs.safe_text(message), style="" if ok else "red")
        shown = self.query_one("#publish-check", Static)
        shown.update(text)
        shown.set_class(not ok, "-invalid")

    # ------------------------------------------------------------------ publishing

    def on_button_pressed(self, message: Button.Pressed) -> None:
        if message.button.id == "publish-send":
            self.action_publish()
        elif message.button.id == "publish-close":
            self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)

    def _events(self) -> tuple[str, list[tuple[str, OutgoingEvent]]] | None:
        topic = self.query_one("#publish-topic", Input).value.strip()
        try:
            events = drafts.build(
                topic,
                self.query_one("#publish-key", Input).value,
                self.query_one("#publish-headers", TextArea).text,
                self.query_one("#publish-value", TextArea).text,
                self.query_one("#publish-copies", Input).value,
                self.schema,
            )
        except UsageError as exc:
            self._show_result(Text("✗ not published: " + codecs.safe_text(str(exc)), style="bold red"))
            return None
        return topic, events

    def action_publish(self) -> None:
        built = self._events()
        if built is None:
            return
        topic, events = built
        if not self.profile.production:
            self._start(topic, events)
            return
        question = Text(f"Publish {len(events):,} event{'s' * (len(events) != 1)} to ")
        question.append(codecs.safe_text(topic), style="bold")
        question.append(" on the production profile ")
        question.append(codecs.safe_text(self.profile.name), style="bold red")
        question.append("?")

        def answered(yes: bool | None) -> None:
            if yes:
                self._start(topic, events)
            else:
                self._show_result(Text("Not published (declined).", style="yellow"))

        self.app.push_screen(ConfirmDialog(question, title="Production profile"), answered)

    def _start(self, topic: str, events: list[tuple[str, OutgoingEvent]]) -> None:
        conn = self.connection()
        if conn is None:
            self._show_result(
                Text(
                    "✗ not connected to the broker: wait for the reconnect (status line) or press r in the main view",
                    style="bold red",
                )
            )
            return
        self._show_result(Text(f"publishing {len(events):,}…", style="yellow"))
        self.run_worker(self._publish(conn, topic, events), group="publish", exclusive=True)

    async def _publish(self, conn: Connection, topic: str, events: list[tuple[str, OutgoingEvent]]) -> None:
        results: list[PublishResult] = []  # where each copy landed (the report keeps only the first)

        def heard(_first: int, batch: Sequence[PublishResult]) -> None:
            results.extend(batch)

        try:
            report = await service.publish(conn, topic, events, on_results=heard)
        except Exception as exc:  # e.g. ReadOnlyError from the connection itself
            from workbench.tui.failures import describe_error

            what, hint = describe_error(exc)
            self._show_result(
                Text(f"✗ not published: {codecs.safe_text(what)}\n{codecs.safe_text(hint)}", style="bold red")
            )
            self.published += 1
            return
        self.last_report = report
        self._show_result(result_text(report, results, topic))
        severity: SeverityLevel = "information" if not report.failures else "error"
        self.app.notify(
            f"{report.confirmed:,} of {report.total:,} published to {codecs.safe_text(topic)}",
            title="Publish",
            severity=severity,
            markup=False,
        )
        self.published += 1

    def _show_result(self, text: Text) -> None:
        self.query_one("#publish-result", Static).update(text)
        self.query_one("#publish-result-box").display = True


def result_text(report: service.PublishReport, results: list[PublishResult], topic: str) -> Text:
    """A summary line, then one line per event: where it landed, or its error."""
    ok = not report.failures and not report.unsent
    text = Text("✓ " if ok else "✗ ", style="bold green" if ok else "bold red")
    text.append(
        f"{report.confirmed:,} of {report.total:,} confirmed on {codecs.safe_text(topic)} in {report.seconds:.2f} s",
        style="bold",
    )
    for n, result in enumerate(results[:SHOWN_RESULTS], 1):
        text.append(f"\ncopy {n}: ")
        if result.ok:
            where = f"partition {result.partition}"
            where += f" · offset {result.offset}" if result.offset is not None else " · confirmed (no offset)"
            text.append(where, style="green")
        else:
            text.append(codecs.safe_text(str(result.error))[:300], style="red")
    if len(results) > SHOWN_RESULTS:
        text.append(f"\n… and {len(results) - SHOWN_RESULTS:,} more", style="dim")
    if report.stopped and report.failures:  # a batch refused whole, or the broker stopped answering
        text.append("\npublishing stopped: ")
        text.append(codecs.safe_text(str(report.failures[-1].error))[:300], style="red")
    if report.failures:
        hint = report.failures[0].error.hint
        if hint:
            text.append("\n" + codecs.safe_text(hint), style="yellow")
    return text
