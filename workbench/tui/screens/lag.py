"""The lag view: consumer groups with state, total lag, its trend over the session (a sparkline),
the verdict with the rule that fired (workbench/lag.py), per-partition drill-down, auto-refresh."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from workbench.broker import Connection, GroupLag
from workbench.events import codecs
from workbench.events.text import safe
from workbench.lag import VERDICT_STYLES, Assessment, LagTracker, Verdict, format_time_lag, no_consumer
from workbench.lag_explain import Explanation, explain
from workbench.tui.failures import BrokerTrouble
from workbench.tui.widgets.group_table import GroupTable
from workbench.tui.widgets.line import Line

Fetch = Callable[[], Awaitable[list[GroupLag]]]


def _text(value: object, style: str = "") -> Text:
    return safe(value, style)


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

    def assess_shown(self, group: GroupLag) -> Assessment | None:
        """The verdict shown for a group: the window's, or NOCONSUMER from the first read on."""
        found = self.assess(group.group_id)
        if found is None or found.verdict is Verdict.UNKNOWN:
            return no_consumer(group) or found
        return found

    def assess_partition(self, group: str, topic: str, partition: int) -> Assessment | None:
        try:
            return self.tracker.assess(group, topic, partition)
        except KeyError:
            return None


class LagScreen(Screen[None]):
    """Stays responsive on clusters with thousands of groups: the refresh runs in a worker, one at a
    time (the next starts ``interval`` after the last one ended, so a slow broker is never asked
    twice at once), observations are fed to the tracker in slices, and the table renders only the
    rows on screen (their verdicts are computed then)."""

    DEFAULT_CSS = """
    #lag { padding: 0 1; }
    #lag-title, #lag-partitions-title { margin: 1 0 0 0; height: auto; }
    #lag-partitions-title { margin: 1 0; }
    #lag-filter { border: none; height: 1; padding: 0 1; margin: 1 0 0 0; }
    #lag-columns { color: $text-muted; text-style: bold; }
    #lag-groups { height: auto; max-height: 50%; }
    #lag-partitions { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="lag.back"),
        Binding(
            "r",
            "refresh",
            "Refresh now",
            id="lag.refresh",
            tooltip="refresh now (it also refreshes by itself; the interval is in the title)",
        ),
        Binding("s", "sort", "Sort by lag/name", id="lag.sort", tooltip="sort by lag or by name"),
        Binding(
            "e",
            "explain",
            "Explain",
            id="lag.explain",
            tooltip="why the highlighted group is behind: owner, rule and figures, time to drain, the event it is stuck at",
        ),
        Binding(
            "slash",
            "focus_filter",
            "Filter groups",
            key_display="/",
            id="lag.filter",
            tooltip="filter the groups by name",
        ),
    ]
    #: Groups fed to the tracker between two turns of the event loop.
    SLICE = 500

    def __init__(
        self,
        fetch: Fetch | None,
        *,
        interval: float = 5.0,
        history: LagHistory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``fetch``: None when the broker reports no consumer groups; ``history``: kept by the app
        so that trends and verdicts go on across visits of this view."""
        super().__init__()
        self.fetch = fetch
        self.interval = interval
        self.history = history or LagHistory()
        self.clock = clock
        self.groups: list[GroupLag] = []
        self.by_lag = True
        self.needle = ""
        self.loaded = 0  # completed refreshes
        self.failed: str | None = None
        self.refreshing_since: float | None = None  # a refresh is running (one at a time)
        self.asked_while_busy = 0  # refreshes not started because one was still running
        self._next: Timer | None = None
        self.explained: Explanation | None = None  # the last `e` explanation shown

    def compose(self):
        yield Header()
        with Vertical(id="lag"):
            yield Static(id="lag-title")
            yield Input(placeholder="/ filter groups: part of a name (escape: back to the table)", id="lag-filter")
            yield Line(id="lag-columns")
            yield GroupTable(self._cells, id="lag-groups")
            yield Static(id="lag-partitions-title")
            yield DataTable(id="lag-partitions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    @property
    def table(self) -> GroupTable:
        return self.query_one("#lag-groups", GroupTable)

    def on_mount(self) -> None:
        parts = self.query_one("#lag-partitions", DataTable)
        for label, key in (
            ("TOPIC", "topic"),
            ("PARTITION", "partition"),
            ("COMMITTED", "committed"),
            ("END", "end"),
            ("LAG", "lag"),
            ("TIME LAG", "time_lag"),
            ("VERDICT · RULE", "verdict"),
            ("NOTE", "note"),
        ):
            parts.add_column(label, key=key)
        if self.fetch is None:
            for widget in (self.table, parts, self.query_one("#lag-filter"), self.query_one("#lag-columns")):
                widget.display = False
            self._title()
            return
        self.table.focus()
        self.query_one("#lag-partitions-title", Static).update(Text("Reading the consumer groups…", style="dim"))
        self._columns()
        self.action_refresh()
        self.set_interval(1.0, self._tick, name="lag elapsed")

    def _columns(self) -> None:
        self.query_one("#lag-columns", Line).show(
            self.table.header(self.table.scrollable_content_region.width or self.size.width)
        )

    def on_resize(self) -> None:
        if self.fetch is not None:
            self._columns()

    def _tick(self) -> None:
        if self.refreshing_since is not None:
            self._title()  # the elapsed time of the running refresh

    def _title(self) -> None:
        text = Text("Consumer lag", style="bold")
        if self.fetch is None:
            text.append("\nThis broker does not report consumer groups.", style="dim")
            self.query_one("#lag-title", Static).update(text)
            return
        if self.loaded:
            shown = len(self.table.groups)
            total = f"{len(self.groups):,} group{'s' * (len(self.groups) != 1)}"
            text.append(
                f"  ·  {total}" if shown == len(self.groups) else f"  ·  {shown:,} of {total} match {self.needle!r}",
                style="",
            )
        order = "lag" if self.by_lag else "name"
        text.append(
            f"  ·  auto-refresh every {self.interval:g} s  ·  sorted by {order}  ·  trend: total lag per refresh",
            style="dim",
        )
        if self.refreshing_since is not None:
            elapsed = self.clock() - self.refreshing_since
            what = "refreshing" if self.loaded else "loading the consumer groups"
            text.append(f"\n⟳ {what}… ({elapsed:.0f} s)", style="yellow")
            if elapsed > self.interval:
                text.append("  longer than the interval: the next refresh starts when this one ends", style="dim")
        if self.failed:
            text.append(f"\nlast refresh failed: {codecs.safe_text(self.failed)}", style="red")
        self.query_one("#lag-title", Static).update(text)

    def action_back(self) -> None:
        if self.focused is not None and self.focused.id == "lag-filter":
            self.table.focus()
            return
        self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#lag-filter", Input).focus()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "lag-filter":
            self.needle = message.value.strip().lower()
            self._fill()
            self._title()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "lag-filter":
            self.table.focus()

    def action_refresh(self) -> None:
        """Now, unless a refresh is still running (then it says so: never two at once)."""
        if self.fetch is None:
            return
        if self.refreshing_since is not None:
            self.asked_while_busy += 1
            self._title()
            return
        if self._next is not None:
            self._next.stop()
            self._next = None
        self.refreshing_since = self.clock()
        self._title()
        self.run_worker(self._load(), group="lag")

    def action_sort(self) -> None:
        self.by_lag = not self.by_lag
        self._fill()
        self._title()

    async def _load(self) -> None:
        assert self.fetch is not None
        try:
            groups = await self.fetch()
            for start in range(0, len(groups), self.SLICE):  # keys go on between slices
                self.history.observe(groups[start : start + self.SLICE])
                await asyncio.sleep(0)
            self.groups, self.failed = groups, None
        except Exception as exc:  # shown in the title; the next refresh tries again
            self.failed = f"{type(exc).__name__}: {exc}"
            self.app.notify(
                f"Could not read consumer lag: {exc}. Retrying every {self.interval:g} s.",
                title="Lag",
                severity="error",
                markup=False,
            )
            self._tell_app(exc)
        finally:
            self.refreshing_since = None
            if self.is_attached:
                self._next = self.set_timer(self.interval, self.action_refresh, name="lag refresh")
        self.loaded += 1
        self._fill()
        self._title()

    def _tell_app(self, exc: Exception) -> None:
        """A refresh over every group is a bulk request: the app tells "slow" from "lost"."""
        self.post_message(BrokerTrouble(exc, bulk="the consumer lag refresh"))

    def _sorted(self) -> list[GroupLag]:
        shown = [g for g in self.groups if self.needle in g.group_id.lower()] if self.needle else self.groups
        if self.by_lag:  # queues with messages and no consumer (NOCONSUMER) first, then the most lag
            return sorted(shown, key=lambda g: (no_consumer(g) is None, -g.total, g.group_id))
        return sorted(shown, key=lambda g: g.group_id)

    def _cells(self, g: GroupLag) -> list[Text]:
        lost = sum(1 for p in g.partitions if p.lost_to_retention)
        note = _text(f"{lost} partition(s) lost to retention", "red") if lost else Text("")
        assessment = self.history.assess_shown(g)
        return [
            _text(g.group_id),
            _text(g.state),
            _num(len(g.partitions)),
            _num(g.total, "bold" if g.total else ""),
            Text(format_time_lag(assessment.time_lag_ms if assessment else None)),
            Text(sparkline(self.history.totals.get(g.group_id, ())), style="cyan"),
            verdict_text(assessment),
            note,
        ]

    def _fill(self) -> None:
        table = self.table
        keep = table.current.group_id if table.current is not None else None
        table.show(self._sorted(), keep)
        self._columns()
        if not table.groups and self.loaded:
            self.query_one("#lag-partitions-title", Static).update(
                Text("No consumer groups." if not self.groups else f"No group matches {self.needle!r}.", style="dim")
            )
            self.query_one("#lag-partitions", DataTable).clear()

    def _fill_partitions(self, group: GroupLag | None) -> None:
        table = self.query_one("#lag-partitions", DataTable)
        table.clear()
        if group is None:
            return
        if self.explained is not None and self.explained.group.group_id == group.group_id:
            title = explanation_text(self.explained)  # kept across refreshes while its group is highlighted
        else:
            self.explained = None
            title = Text("Partitions of ", style="bold")
            title.append(codecs.safe_text(group.group_id), style="bold")
            title.append("  (e: explain)", style="dim")
        self.query_one("#lag-partitions-title", Static).update(title)
        for p in group.partitions:
            note = _text("committed < log start: lost to retention", "red") if p.lost_to_retention else Text("")
            assessment = self.history.assess_partition(group.group_id, p.topic, p.partition)
            table.add_row(
                _text(p.topic),
                _num(p.partition),
                _num(p.committed),
                _num(p.end),
                _num(p.lag),
                Text(format_time_lag(assessment.time_lag_ms if assessment else None)),
                verdict_text(assessment),
                note,
            )

    def on_group_table_highlighted(self, message: GroupTable.Highlighted) -> None:
        self._fill_partitions(message.group)

    # ------------------------------------------------------------------ explain (`lag explain`)

    #: Reads of the group's lag an explanation is judged on, and the seconds between them.
    EXPLAIN_SAMPLES, EXPLAIN_INTERVAL = 3, 1.0

    def action_explain(self) -> None:
        group = self.table.current
        conn = getattr(self.app, "conn", None)
        if group is None or conn is None:
            self.app.notify("No group to explain (or not connected).", title="Lag", markup=False)
            return
        wait = (self.EXPLAIN_SAMPLES - 1) * self.EXPLAIN_INTERVAL
        title = Text(f"Explaining {codecs.safe_text(group.group_id)}: reading its lag for {wait:g} s…", style="yellow")
        self.query_one("#lag-partitions-title", Static).update(title)
        self.run_worker(self._explain(conn, group.group_id), group="lag-explain", exclusive=True)

    async def _explain(self, conn: Connection, group_id: str) -> None:
        target = getattr(self.app, "target", None)
        capabilities = getattr(self.app, "capabilities", None)
        try:
            found = await explain(
                conn,
                group_id,
                samples=self.EXPLAIN_SAMPLES,
                interval=self.EXPLAIN_INTERVAL,
                top=3,
                dead_letters=target.profile.dead_letters.get(group_id) if target is not None else None,
                can_peek=bool(capabilities and capabilities.peek_requeue and not (target and target.profile.read_only)),
            )
        except Exception as exc:  # shown where the explanation would be
            self.query_one("#lag-partitions-title", Static).update(
                safe(f"Could not explain {group_id}: {type(exc).__name__}: {exc}", "red")
            )
            return
        self.explained = found
        self.query_one("#lag-partitions-title", Static).update(explanation_text(found))


def explanation_text(found: Explanation) -> Text:
    """The explanation in a few lines (the CLI's `lag explain` has the whole event)."""
    v = found.view
    text = Text("Why ", style="bold")
    text.append(codecs.safe_text(v.group.group_id), style="bold")
    text.append(" is behind: ")
    text.append(v.verdict.name, style=VERDICT_STYLES[v.verdict])
    a = v.assessment
    if a is not None:
        text.append(f" · {a.rule}" + (f" ({a.because})" if a.because else ""))
    if not found.partitions:
        text.append("\nno partition is behind", style="green")
    for item in found.partitions:
        p = item.partition
        text.append(f"\n{codecs.safe_text(p.topic)}/{p.partition}", style="bold cyan")
        text.append(f"  lag {_num(p.lag)}")
        if item.event_age_ms is not None:
            text.append(f", {format_time_lag(item.event_age_ms)} behind")
        owner = item.owner
        who = f"{owner.client_id or '?'} on {owner.host or '?'}" if owner is not None else "no live member"
        text.append(f"  ·  owner {codecs.safe_text(who)}  ·  drains {_drain(item.drain_s)}")
        if item.event is None:
            text.append(f"\n  stuck at: {codecs.safe_text(item.event_note)}", style="dim")
        else:
            e = item.event
            key = "-" if e.key is None else codecs.preview_of(e.metadata.get("decoded_key"), e.key, 24)
            value = codecs.preview_of(e.metadata.get("decoded_value"), e.value, 80)
            text.append(f"\n  stuck at {e.partition}/{e.offset} key {key}: {value}")
        check = item.dead_letters
        if check is not None:
            said = "in the dead letters" if check.found else "not in the dead letters"
            text.append(f"\n  {said} ({codecs.safe_text(check.source)})", style="red" if check.found else "dim")
    return text


def _drain(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return "never" if math.isinf(seconds) else format_time_lag(int(seconds * 1000))
