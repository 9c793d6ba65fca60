"""The lag view: consumer groups with state, total lag, its trend over the session (a sparkline),
the verdict with the rule that fired (workbench/lag.py), per-partition drill-down, auto-refresh."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from workbench import codecs
from workbench.broker import GroupLag
from workbench.lag import VERDICT_STYLES, Assessment, LagTracker, format_time_lag

Fetch = Callable[[], Awaitable[list[GroupLag]]]


def _text(value: object, style: str = "") -> Text:
    return Text(codecs.safe_text(str(value)), style=style)


def _num(value: int | None, style: str = "") -> Text:
    return Text("-" if value is None else f"{value:,}", style=style)


BARS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 16  # refreshes shown in the trend column


def sparkline(values: Iterable[int], width: int = SPARK_POINTS) -> str:
    """The last ``width`` values as one line of bars, from 0 (lowest bar) to the largest value."""
    shown = list(values)[-width:]
    top = max(shown, default=0)
    return "".join(BARS[0] if top <= 0 else BARS[round(v / top * (len(BARS) - 1))] for v in shown)


def verdict_text(assessment: Assessment | None, with_rule: bool = True) -> Text:
    if assessment is None:
        return Text("-", style="dim")
    text = Text(assessment.label, style=VERDICT_STYLES[assessment.verdict])
    if with_rule:
        text.append(f" · {assessment.rule}", style="")
    return text


class LagHistory:
    """What the lag view remembers over the session (the app keeps it while it stays connected):
    the verdict tracker and each group's total lag at every refresh."""

    def __init__(self, clock: Callable[[], float] = time.time, points: int = 120) -> None:
        self.tracker = LagTracker(clock=clock)
        self.totals: dict[str, deque[int]] = {}
        self.points = points

    def observe(self, groups: Sequence[GroupLag]) -> None:
        self.tracker.observe(groups)
        for g in groups:
            self.totals.setdefault(g.group_id, deque(maxlen=self.points)).append(g.total)

    def assess(self, group: str) -> Assessment | None:
        try:
            return self.tracker.assess_group(group)
        except KeyError:  # a group with no partition
            return None

    def assess_partition(self, group: str, topic: str, partition: int) -> Assessment | None:
        try:
            return self.tracker.assess(group, topic, partition)
        except KeyError:
            return None


class LagScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "refresh", "Refresh now"),
        Binding("s", "sort", "Sort by lag/name"),
    ]

    def __init__(self, fetch: Fetch | None, *, interval: float = 5.0, history: LagHistory | None = None) -> None:
        """``fetch``: None when the broker reports no consumer groups; ``history``: kept by the app
        so that trends and verdicts go on across visits of this view."""
        super().__init__()
        self.fetch = fetch
        self.interval = interval
        self.history = history or LagHistory()
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
        for label, key in (("GROUP", "group"), ("STATE", "state"), ("PARTS", "partitions"),
                           ("TOTAL LAG", "lag"), ("TIME LAG", "time_lag"), ("TREND", "trend"),
                           ("VERDICT · RULE", "verdict"), ("NOTE", "note")):
            groups.add_column(label, key=key)
        parts = self.query_one("#lag-partitions", DataTable)
        for label, key in (("TOPIC", "topic"), ("PARTITION", "partition"), ("COMMITTED", "committed"),
                           ("END", "end"), ("LAG", "lag"), ("TIME LAG", "time_lag"), ("VERDICT · RULE", "verdict"),
                           ("NOTE", "note")):
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
            text.append(f"  ·  auto-refresh every {self.interval:g} s  ·  sorted by {order}"
                        "  ·  trend: total lag per refresh", style="dim")
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
            self.history.observe(self.groups)
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
            assessment = self.history.assess(g.group_id)
            trend = Text(sparkline(self.history.totals.get(g.group_id, ())), style="cyan")
            table.add_row(_text(g.group_id), _text(g.state), _num(len(g.partitions)), _num(g.total, style),
                          Text(format_time_lag(assessment.time_lag_ms if assessment else None)), trend,
                          verdict_text(assessment), note, key=g.group_id)
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
            assessment = self.history.assess_partition(group.group_id, p.topic, p.partition)
            table.add_row(_text(p.topic), _num(p.partition), _num(p.committed), _num(p.end), _num(p.lag),
                          Text(format_time_lag(assessment.time_lag_ms if assessment else None)), verdict_text(assessment),
                          note)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.data_table.id == "lag-groups":
            self._fill_partitions()
