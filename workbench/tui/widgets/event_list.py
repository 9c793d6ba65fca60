"""The live event list: a Line-API ``ScrollView`` over a :class:`~workbench.stream.RingBuffer`.

Only the visible rows are rendered (``render_line``), each from the buffer on demand and cached
by sequence number; there is no widget per event. At the bottom the list follows new events;
once the user moves away it stays put and counts what arrived since (``new_count``).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.broker import Event
from workbench.pump import RingBuffer
from workbench.tui import rows

_MOVE = "move the cursor (stops following)"
_PAGE = "a page up / down (stops following)"
#: Rendered rows kept (a few screens: paging back and forth does not render them again). While
#: following, every row is new at each repaint, so more would only give the garbage collector
#: strips to walk (each is a dozen objects).
CACHED_ROWS = 256


class EventList(ScrollView, can_focus=True):
    """Rows of the ring buffer, oldest at the top; a cursor row selects an event."""

    BINDINGS = [
        Binding("enter", "open", "Details", id="events.open", tooltip="details of the event: value, headers, metadata"),
        Binding("up", "cursor(-1)", "Up", show=False, id="events.up", tooltip=_MOVE),
        Binding("down", "cursor(1)", "Down", show=False, id="events.down", tooltip=_MOVE),
        Binding("pageup", "page(-1)", "Page up", show=False, id="events.page_up", tooltip=_PAGE),
        Binding("pagedown", "page(1)", "Page down", show=False, id="events.page_down", tooltip=_PAGE),
        Binding("g,home", "top", "Top", key_display="g", id="events.top", tooltip="the first event"),
        Binding(
            "G,end",
            "bottom",
            "Bottom/follow",
            key_display="G",
            id="events.bottom",
            tooltip="the last event, and follow new events again",
        ),
    ]
    COMPONENT_CLASSES = {"event-list--cursor"}
    DEFAULT_CSS = """
    EventList { overflow-x: hidden; overflow-y: scroll; }
    EventList > .event-list--cursor { background: $accent 40%; }
    """

    class Selected(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Moved(Message):
        """Following or the cursor changed (the "N new" indicator may need an update)."""

    def __init__(self, buffer: RingBuffer, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = buffer
        self.following = True
        self.cursor_seq: int | None = None
        self._seen = 0  # buffer.received when the user left the bottom
        self._first_seq = 0
        self._syncing = False
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(CACHED_ROWS)
        self._style: Style | None = None
        self._frame: tuple[int, int, Style] | None = None  # (width, first row, style) while a frame renders

    # ------------------------------------------------------------------ state

    @property
    def new_count(self) -> int:
        """Events received since the user scrolled away from the bottom (0 while following)."""
        return 0 if self.following else max(self.buffer.received - self._seen, 0)

    @property
    def selected(self) -> Event | None:
        return None if self.cursor_seq is None else self.buffer.by_seq(self.cursor_seq)

    def reset(self) -> None:
        """A new read starts (the buffer was cleared)."""
        self._cache.clear()
        self.following = True
        self.cursor_seq = None
        self._seen = 0
        self._first_seq = self.buffer.first_seq
        self.sync()

    def sync(self) -> None:
        """Catch up with the buffer: called after the pump says there is something new."""
        buffer = self.buffer
        shift = buffer.first_seq - self._first_seq  # rows that fell off the top meanwhile
        self._first_seq = buffer.first_seq
        self._syncing = True
        try:
            self._set_rows(len(buffer))
            if self.following:
                self.cursor_seq = buffer.received - 1 if len(buffer) else None
                self.scroll_to(y=self.max_scroll_y, animate=False)
            else:
                if shift > 0:  # keep the same events in view
                    self.scroll_to(y=max(self.scroll_y - shift, 0), animate=False)
                if self.cursor_seq is not None and self.cursor_seq < buffer.first_seq:
                    self.cursor_seq = buffer.first_seq if len(buffer) else None
        finally:
            self._syncing = False
        self.refresh()

    def _set_rows(self, count: int) -> None:
        """Make the scrollable height ``count`` rows without a new layout of the screen.

        ``virtual_size`` is a layout reactive: assigning it lays out and repaints every widget on the
        screen, which while events stream in (~13 syncs/s) cost more than everything else. The list
        always shows its vertical scrollbar (``overflow-y: scroll``), so nothing around it can move:
        only the scrollbar's window and the scroll limits change.
        """
        size = Size(self.size.width, count)
        if size != self.virtual_size:
            self.set_reactive(EventList.virtual_size, size)
            self._scroll_update(size)

    def _set_following(self, following: bool) -> None:
        if following == self.following:
            return
        self.following = following
        if not following:
            self._seen = self.buffer.received
        self.post_message(self.Moved())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._syncing or not self.is_mounted:
            return
        if round(new_value) < self.max_scroll_y:
            self._set_following(False)
        elif self.cursor_seq is None or self.cursor_seq >= self.buffer.received - 1:
            self._set_following(True)

    # ------------------------------------------------------------------ rendering

    def _base_style(self) -> Style:
        """The widget's own style (computing it walks the DOM: kept until the styles change)."""
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None
        self._cache.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines of one frame: the geometry is looked up once for all of them, not once per line
        (each lookup walks the widget's styles: a fifth of what a row costs)."""
        self._frame = (self.scrollable_content_region.width, self.scroll_offset.y, self._base_style())
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        width, top, base = self._frame or (
            self.scrollable_content_region.width,
            self.scroll_offset.y,
            self._base_style(),
        )
        row = top + y
        if row >= len(self.buffer) or width <= 0:
            return Strip.blank(width, base)
        seq = self._first_seq + row
        strip = self._cache.get((seq, width))
        if strip is None:
            full = rows.row_width(width)
            strip = Strip(rows.event_segments(self.buffer[row], width, base), full)
            if full != width:
                strip = strip.crop(0, width)
            self._cache[(seq, width)] = strip
        if seq == self.cursor_seq and self.has_focus:  # the cursor's colours go over the row's
            cursor = self.get_component_rich_style("event-list--cursor")
            strip = Strip(Segment.apply_style(strip, post_style=cursor), strip.cell_length)
        return strip

    def row_strips(self) -> list[Strip]:
        """The rendered visible rows (for tests and screen readers of the future)."""
        return [self.render_line(y) for y in range(self.scrollable_content_region.height)]

    def visible_text(self) -> list[str]:
        return [strip.text for strip in self.row_strips()]

    # ------------------------------------------------------------------ keys and mouse

    def _move_to(self, seq: int) -> None:
        buffer = self.buffer
        if not len(buffer):
            return
        seq = min(max(seq, buffer.first_seq), buffer.received - 1)
        self.cursor_seq = seq
        self._set_following(seq == buffer.received - 1)
        row = seq - buffer.first_seq
        height = self.scrollable_content_region.height
        if row < self.scroll_y:
            self.scroll_to(y=row, animate=False)
        elif row >= self.scroll_y + height:
            self.scroll_to(y=row - height + 1, animate=False)
        self.refresh()

    def _current(self) -> int:
        return self.buffer.received - 1 if self.cursor_seq is None else self.cursor_seq

    def action_cursor(self, delta: int) -> None:
        self._move_to(self._current() + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self._current() + direction * max(self.scrollable_content_region.height - 1, 1))

    def action_top(self) -> None:
        self._move_to(self.buffer.first_seq)
        self.scroll_to(y=0, animate=False)

    def action_bottom(self) -> None:
        self._move_to(self.buffer.received - 1)
        self.scroll_to(y=self.max_scroll_y, animate=False)

    def action_open(self) -> None:
        event = self.selected
        if event is not None:
            self.post_message(self.Selected(event))

    def on_click(self, event: Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < len(self.buffer):
            self._move_to(self.buffer.first_seq + row)
            if event.chain >= 2:
                self.action_open()

    def on_mouse_scroll_down(self) -> None:
        self.call_later(self._follow_if_at_bottom)

    def _follow_if_at_bottom(self) -> None:
        if not self.following and round(self.scroll_y) >= self.max_scroll_y:
            self.action_bottom()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.sync()
