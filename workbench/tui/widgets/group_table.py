"""A table of consumer groups that stays quick with ten thousand of them: a Line-API ``ScrollView``.

Only the visible rows are rendered, each on demand (its cells, verdict included, are computed then
and cached until the next refresh). A DataTable measures and lays out every cell of every row when
rows change, which at 10,000 groups blocks the keys for seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.broker import GroupLag

#: (label, width, justify); width None: what the column's content needs (see GroupTable.show).
COLUMNS: tuple[tuple[str, int | None, str], ...] = (
    ("GROUP", None, "left"),
    ("STATE", None, "left"),
    ("PARTS", 5, "right"),
    ("TOTAL LAG", 11, "right"),
    ("TIME LAG", 8, "right"),
    ("TREND", 16, "left"),
    ("VERDICT · RULE", 58, "left"),
    ("NOTE", 0, "left"),
)
GAP = 2
MAX_GROUP_WIDTH = 48


def fit(text: Text, width: int, justify: str = "left") -> Text:
    """``text`` in exactly ``width`` cells: cut with an ellipsis, or padded on the side ``justify`` says."""
    text = text.copy()
    text.no_wrap = True
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    elif justify == "right":
        text.pad_left(width - text.cell_len)
    else:
        text.pad_right(width - text.cell_len)
    return text


_MOVE = "move the cursor: its group's partitions show below"
_PAGE = "a page of groups up / down"


class GroupTable(ScrollView, can_focus=True):
    """One row per group; the cursor row is the group the partitions below belong to."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="groups.up", tooltip=_MOVE),
        Binding("down", "cursor(1)", "Down", show=False, id="groups.down", tooltip=_MOVE),
        Binding("pageup", "page(-1)", "Page up", show=False, id="groups.page_up", tooltip=_PAGE),
        Binding("pagedown", "page(1)", "Page down", show=False, id="groups.page_down", tooltip=_PAGE),
        Binding("home", "top", "Top", show=False, id="groups.top", tooltip="the first group"),
        Binding("end", "bottom", "Bottom", show=False, id="groups.bottom", tooltip="the last group"),
    ]
    COMPONENT_CLASSES = {"group-table--cursor", "group-table--odd"}
    DEFAULT_CSS = """
    GroupTable { overflow-x: hidden; overflow-y: auto; }
    GroupTable > .group-table--cursor { background: $accent 40%; }
    GroupTable > .group-table--odd { background: $foreground 4%; }
    """

    class Highlighted(Message):
        """The cursor moved to another group (or the rows changed under it)."""

        def __init__(self, group: GroupLag | None) -> None:
            super().__init__()
            self.group = group

    def __init__(self, cells: Callable[[GroupLag], list[Text]], *, id: str | None = None) -> None:
        """``cells``: a group's cells, in :data:`COLUMNS` order (called for visible rows only)."""
        super().__init__(id=id)
        self.cells = cells
        self.groups: list[GroupLag] = []
        self.cursor = 0
        self.widths = [w or len(label) for label, w, _ in COLUMNS]
        self.shown_columns = len(COLUMNS) - 1
        self._cells: dict[str, list[Text]] = {}
        self._strips: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)

    # ------------------------------------------------------------------ rows

    def show(self, groups: Sequence[GroupLag], keep: str | None = None) -> None:
        """New rows (after a refresh, a sort or a filter); the cursor stays on ``keep`` if listed."""
        self.groups = list(groups)
        self._cells.clear()
        self._strips.clear()
        longest = max((len(g.group_id) for g in self.groups), default=0)
        self.widths[0] = min(max(longest, len(COLUMNS[0][0])), MAX_GROUP_WIDTH)
        self.widths[1] = min(max((len(g.state) for g in self.groups), default=0), 20) or len(COLUMNS[1][0])
        self.widths[1] = max(self.widths[1], len(COLUMNS[1][0]))
        # the NOTE column only when a group has a note: else the verdict's rule gets the room
        self.shown_columns = (
            len(COLUMNS) if any(p.lost_to_retention for g in self.groups for p in g.partitions) else len(COLUMNS) - 1
        )
        index = next((i for i, g in enumerate(self.groups) if g.group_id == keep), None) if keep else None
        self.cursor = index if index is not None else min(self.cursor, max(len(self.groups) - 1, 0))
        size = Size(self.size.width, len(self.groups))
        if size != self.virtual_size:
            self.virtual_size = size
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self.current))

    @property
    def current(self) -> GroupLag | None:
        return self.groups[self.cursor] if 0 <= self.cursor < len(self.groups) else None

    @property
    def row_keys(self) -> list[str]:
        return [g.group_id for g in self.groups]

    def get_row(self, group_id: str) -> list[Text]:
        """The cells of one listed group (as shown; KeyError when it is not listed)."""
        group = next((g for g in self.groups if g.group_id == group_id), None)
        if group is None:
            raise KeyError(group_id)
        return self._row_cells(group)

    def _row_cells(self, group: GroupLag) -> list[Text]:
        cells = self._cells.get(group.group_id)
        if cells is None:
            cells = self._cells[group.group_id] = self.cells(group)
        return cells

    def header(self, width: int) -> Text:
        return self._line([Text(label) for label, _, _ in COLUMNS], width)

    def _line(self, cells: Sequence[Text], width: int) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        used = 0
        last = self.shown_columns - 1
        for n, ((_, _, justify), cell) in enumerate(zip(COLUMNS[: self.shown_columns], cells, strict=False)):
            room = width - used - (GAP if n else 0)
            if room <= 0:
                break
            if n:
                line.append(" " * GAP)
                used += GAP
            shown = fit(cell, min(self.widths[n], room) if n < last else room, justify)
            line.append_text(shown)
            used += shown.cell_len
        return line

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = self.scroll_offset.y + y
        base = self.rich_style
        if row >= len(self.groups) or width <= 0:
            return Strip.blank(width, base)
        on_cursor = row == self.cursor and self.has_focus
        key = (row, width, on_cursor)
        strip = self._strips.get(key)
        if strip is None:
            text = self._line(self._row_cells(self.groups[row]), width)
            segments = list(text.render(self.app.console))
            style = base
            if row % 2:
                style = base + self.get_component_rich_style("group-table--odd")
            segments = list(Segment.apply_style(segments, style))
            if on_cursor:
                cursor: Style = self.get_component_rich_style("group-table--cursor")
                segments = list(Segment.apply_style(segments, post_style=cursor))
            strip = Strip(segments).adjust_cell_length(width, style)
            self._strips[key] = strip
        return strip

    def visible_text(self) -> list[str]:
        return [self.render_line(y).text for y in range(self.scrollable_content_region.height)]

    # ------------------------------------------------------------------ keys and mouse

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False)
        elif height and self.cursor >= self.scroll_y + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def move_to(self, row: int) -> None:
        if not self.groups:
            return
        row = min(max(row, 0), len(self.groups) - 1)
        if row != self.cursor:
            self.cursor = row
            self.post_message(self.Highlighted(self.current))
        self._scroll_to_cursor()
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(self.scrollable_content_region.height - 1, 1))

    def action_top(self) -> None:
        self.move_to(0)

    def action_bottom(self) -> None:
        self.move_to(len(self.groups) - 1)

    def on_click(self, event: Click) -> None:
        self.move_to(int(self.scroll_y) + event.y)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
