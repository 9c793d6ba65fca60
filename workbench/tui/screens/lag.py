"""The lag view: consumer groups with state and total lag, per-partition drill-down, auto-refresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench import codecs
from workbench.broker import GroupLag

Fetch = Callable[[], Awaitable[list[GroupLag]]]


def _text(value: object, style: str = "") -> Text:
    return Text(codecs.safe_text(str(value)), style=style)


def _num(value: int | None, style: str = "") -> Text:
    return Text("-" if value is None else f"{value:,}", style=style)


class LagScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "refresh", "Refresh now"),
        Binding("s", "sort", "Sort by lag/name"),
    ]

    def __init__(self, fetch: Fetch | None, *, interval: float = 5.0) -> None:
        """``fetch``: None when the broker reports no consumer groups."""
        super().__init__()
        self.fetch = fetch
        self.interval = interval
        self.groups: list[GroupLag] = []
        self.by_lag = True
        self.loaded = 0  # completed refreshes
        self.failed: str | None = None

    def compose(self):
        yield Header()
        with Vertical(id="lag"):
            yield Static(id="lag-title")
            yield DataTable(id="lag-groups", cursor_type="row", zebra_stripes=True)
            yield Static(id="lag-partitions-title")
            yield DataTable(id="lag-partitions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        groups = self.query_one("#lag-groups", DataTable)
        for label, key in (("GROUP", "group"), ("STATE", "state"), ("PARTITIONS", "partitions"),
                           ("TOTAL LAG", "lag"), ("NOTE", "note")):
            groups.add_column(label, key=key)
        parts = self.query_one("#lag-partitions", DataTable)
        for label, key in (("TOPIC", "topic"), ("PARTITION", "partition"), ("COMMITTED", "committed"),
                           ("END", "end"), ("LAG", "lag"), ("NOTE", "note")):
            parts.add_column(label, key=key)
        self._title()
        if self.fetch is None:
            groups.display = parts.display = False
            return
        groups.focus()
        self.run_worker(self._load(), group="lag", exclusive=True)
        self.set_interval(self.interval, self.action_refresh, name="lag refresh")

    def _title(self) -> None:
        text = Text("Consumer lag", style="bold")
        if self.fetch is None:
            text.append("\nThis broker does not report consumer groups.", style="dim")
        else:
            order = "lag" if self.by_lag else "name"
            text.append(f"  ·  auto-refresh every {self.interval:g} s  ·  sorted by {order}", style="dim")
            if self.failed:
                text.append(f"\nlast refresh failed: {codecs.safe_text(self.failed)}", style="red")
        self.query_one("#lag-title", Static).update(text)

    def action_refresh(self) -> None:
        if self.fetch is not None:
            self.run_worker(self._load(), group="lag", exclusive=True)

    def action_sort(self) -> None:
        self.by_lag = not self.by_lag
        self._fill()
        self._title()

    async def _load(self) -> None:
        assert self.fetch is not None
        try:
            self.groups = await self.fetch()
            self.failed = None
        except Exception as exc:  # shown in the title; the next refresh tries again
            self.failed = f"{type(exc).__name__}: {exc}"
            self.app.notify(f"Could not read consumer lag: {exc}. Retrying every {self.interval:g} s.",
                            title="Lag", severity="error", markup=False)
        self.loaded += 1
        self._fill()
        self._title()

    def _sorted(self) -> Sequence[GroupLag]:
        if self.by_lag:
            return sorted(self.groups, key=lambda g: (-g.total, g.group_id))
        return sorted(self.groups, key=lambda g: g.group_id)

    def _fill(self) -> None:
        table = self.query_one("#lag-groups", DataTable)
        keep = self._current_group()
        table.clear()
        for g in self._sorted():
            lost = sum(1 for p in g.partitions if p.lost_to_retention)
            note = _text(f"{lost} partition(s) lost to retention", "red") if lost else Text("")
            style = "bold" if g.total else ""
            table.add_row(_text(g.group_id), _text(g.state), _num(len(g.partitions)), _num(g.total, style),
                          note, key=g.group_id)
        if not self.groups:
            self.query_one("#lag-partitions-title", Static).update(Text("No consumer groups.", style="dim"))
        if keep is not None and keep in {g.group_id for g in self.groups}:
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        self._fill_partitions()

    def _current_group(self) -> str | None:
        table = self.query_one("#lag-groups", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # no valid cursor yet
            return None

    def _fill_partitions(self) -> None:
        table = self.query_one("#lag-partitions", DataTable)
        table.clear()
        current = self._current_group()
        group = next((g for g in self.groups if g.group_id == current), None)
        if group is None:
            return
        title = Text("Partitions of ", style="bold")
        title.append(codecs.safe_text(group.group_id), style="bold")
        self.query_one("#lag-partitions-title", Static).update(title)
        for p in group.partitions:
            note = _text("committed < log start: lost to retention", "red") if p.lost_to_retention else Text("")
            table.add_row(_text(p.topic), _num(p.partition), _num(p.committed), _num(p.end), _num(p.lag), note)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.data_table.id == "lag-groups":
            self._fill_partitions()
