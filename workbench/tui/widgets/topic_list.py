"""The sidebar: a filter box above the list of topics, each with its count against the right edge."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from workbench.broker import TopicInfo
from workbench.events import codecs


def topic_prompt(name: str, count: int, width: int) -> Text:
    """One line of the topic list: the name, cut with an ellipsis where it would run into the
    count, and the count against the right edge (``width``: the line's cells; 0 before layout)."""
    shown = f"{count:,}"
    text = Text(codecs.safe_text(name), no_wrap=True, overflow="ellipsis")
    if width <= 0:
        text.append(f"  {shown}", style="dim")
        return text
    room = max(width - len(shown) - 1, 1)
    if text.cell_len > room:
        text.truncate(room, overflow="ellipsis")
    text.append(" " * max(width - text.cell_len - len(shown), 1))
    text.append(shown, style="dim")
    return text


class TopicList(Vertical):
    """The topic filter box (``#topic-filter``) above the topic list (``#topics``); its width follows
    the terminal's. Choosing a topic posts :class:`TopicList.Chosen`."""

    DEFAULT_CSS = """
    TopicList {
        width: 18%;
        min-width: 24;
        max-width: 48;
        border-right: vkey $foreground 20%;
    }
    TopicList #topic-filter {
        margin: 0;
    }
    TopicList #topics {
        height: 1fr;
        border: none;
        scrollbar-gutter: stable;
    }
    """
    BINDINGS = [
        Binding(
            "down",
            "focus_topics",
            "To the list",
            show=False,
            id="topic_list.focus_topics",
            tooltip="from the filter box down to the list",
        )
    ]

    class Chosen(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.topics: Sequence[TopicInfo] = ()
        self.current: str | None = None

    def compose(self):
        yield Input(placeholder="filter topics (f)", id="topic-filter")
        yield OptionList(id="topics")

    def action_focus_topics(self) -> None:
        self.query_one(OptionList).focus()

    def focus_filter(self) -> None:
        self.query_one("#topic-filter", Input).focus()

    def show_topics(self, topics: Sequence[TopicInfo], current: str | None) -> None:
        """List ``topics`` (those the filter box matches, internal ones never), ``current`` highlighted."""
        self.topics, self.current = topics, current
        needle = self.query_one("#topic-filter", Input).value.strip().lower()
        shown = [t for t in topics if not t.internal and needle in t.name.lower()]
        options = self.query_one("#topics", OptionList)
        padding = options.get_component_styles("option-list--option").padding.width
        width = max(options.scrollable_content_region.width - padding, 0)
        options.clear_options()
        options.add_options([Option(topic_prompt(info.name, info.count, width), id=info.name) for info in shown])
        if shown:
            keep = next((i for i, t in enumerate(shown) if t.name == current), 0)
            options.highlighted = keep
        elif topics:
            options.add_option(Option(Text("no topic matches", style="dim"), disabled=True))
        else:
            options.add_option(Option(Text("no topics yet (try: workbench demo)", style="dim"), disabled=True))

    def _refill(self) -> None:
        self.show_topics(self.topics, self.current)

    def on_resize(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self._refill)  # the counts go against the new right edge

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "topic-filter":
            message.stop()
            self._refill()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "topic-filter":
            message.stop()
            options = self.query_one("#topics", OptionList)
            options.focus()
            if options.option_count and not options.get_option_at_index(0).disabled:
                options.highlighted = 0  # enter in the filter box opens the first match
                options.action_select()

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        message.stop()
        if message.option.id is not None:
            self.post_message(self.Chosen(message.option.id))
