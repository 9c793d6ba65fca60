"""The detail pane of one event: metadata, headers and the value (pretty JSON, text or hex), and
what the [mask] rules redacted in it (the app says: :class:`Host`)."""

from __future__ import annotations

from typing import Protocol, cast

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from workbench.broker import Event
from workbench.events import codecs
from workbench.tui import event_render


class Host(Protocol):
    def redaction_note(self, event: Event) -> str | None: ...


class DetailScreen(Screen[None]):
    DEFAULT_CSS = """
    #detail { padding: 0 1; }
    #detail-title, #detail-meta, #detail-headers, #detail-value-title, #detail-value { margin: 0 0 1 0; }
    #detail-note { color: $warning; }
    #detail-redaction { color: $text-muted; margin: 0 0 1 0; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back", tooltip="back to the events"),
        Binding("g,home", "scroll_home", "Top", show=False, id="detail.top", tooltip="top of the detail"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="detail.bottom", tooltip="bottom of the detail"),
        # The app's keys that work on the event shown here, listed in this footer (the app's ids:
        # one [keys] line moves both).
        Binding("c", "app.copy_value", "Copy value", id="copy_value"),
        Binding("C", "app.copy_envelope", "Copy envelope", id="copy_envelope"),
        Binding("O", "app.copy_original", "Copy original", id="copy_original"),
        Binding("T", "app.trace", "Trace", id="trace"),
    ]

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def on_mount(self) -> None:
        self.query_one("#detail").focus()

    def compose(self):
        event = self.event
        title = Text(codecs.safe_text(event.topic), style="bold")
        title.append(f"  partition {event.partition} · offset {event.offset}", style="bold")
        view = event_render.event_value_view(event)
        label = Text(f"Value ({view.kind})", style="bold")
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static(title, id="detail-title")
            redaction = cast(Host, self.app).redaction_note(event)  # what is masked, and the original
            if redaction:
                yield Static(Text(redaction, style="italic"), id="detail-redaction")
            yield Static(label, id="detail-value-title")
            if view.note:
                yield Static(Text(view.note, style="italic"), id="detail-note")
            yield Static(view.body, id="detail-value")
            yield Static(event_render.metadata(event), id="detail-meta")
            yield Static(event_render.headers(event), id="detail-headers")
        yield Footer()

    def action_scroll_home(self) -> None:
        self.query_one("#detail", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one("#detail", VerticalScroll).scroll_end(animate=False)
