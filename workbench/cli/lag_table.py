"""The `lag` table for people: what needs attention first, healthy groups folded into one line.

A shared cluster has 10,000 groups and 240,000 partition rows. Rich's ``Table`` measured and
wrapped every cell of every row (280 of 283 s for such a table), so this table is laid out with
str methods: each column's distinct values are measured and padded once, and a line is one join.
Broker strings still go through ``workbench.events.text.safe_text``; colours come from Rich's own styles, and only
when the console has colours (never into a file or pipe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style

from workbench.broker import GroupLag
from workbench.cli import output
from workbench.events.text import safe_text
from workbench.lag import (
    VERDICT_STYLES,
    Assessment,
    LagTracker,
    combine,
    format_time_lag,
    group_drain,
    no_consumer,
    severity,
    snapshot_verdict,
)

GAP = "  "  # between two columns, as Rich's borderless table
CHUNK = 10_000  # lines per write
LOST = "(committed < log start: lost to retention)"
STYLE_BY_LABEL = {v.name: style for v, style in VERDICT_STYLES.items()}


@dataclass(frozen=True, slots=True)
class Shown:
    """A group as the table shows it; the assessments only with ``--watch``."""

    group: GroupLag
    assessment: Assessment | None = None
    partitions: dict[tuple[str, int], Assessment] | None = None


# --------------------------------------------------------------------------- what to show, in which order


def arrange(groups: Sequence[GroupLag], tracker: LagTracker | None, *, show_all: bool) -> tuple[list[Shown], int]:
    """The groups worst first (verdict, then lag in time, then lag in events, then name), and how
    many healthy ones (no lag) were folded away; ``show_all`` folds none."""
    folded = 0
    shown: list[Shown] = []
    for g in groups:
        if not show_all and g.total == 0:
            folded += 1
            continue
        shown.append(_assessed(g, tracker))
    shown.sort(key=_worst_first)
    return shown, folded


def _assessed(group: GroupLag, tracker: LagTracker | None) -> Shown:
    if tracker is None or not group.partitions:
        return Shown(group, no_consumer(group))
    found = tracker.assess_partitions(group.group_id)
    return Shown(group, combine(found.values()), found)


def _worst_first(s: Shown) -> tuple[float, int, int, str]:
    if s.assessment is None:  # one snapshot: lag with no trend yet, or none at all
        verdict = snapshot_verdict(s.group)
        time_lag = None
    else:
        verdict, time_lag = s.assessment.verdict, s.assessment.time_lag_ms
    return (-severity(verdict), -(time_lag if time_lag is not None else -1), -s.group.total, s.group.group_id)


def folded_line(folded: int, shown: int) -> str:
    groups = "group" if folded == 1 else "groups"
    every = "all " if not shown and folded > 1 else ""
    return f"{every}{folded:,} {groups} OK (lag 0): --all to list them"


def total_line(group: GroupLag, tracker: LagTracker | None = None) -> str:
    """``GROUP: total lag N (TOPIC N, ...)``, with the time to drain where rates are known (the
    broker's, or over the --watch window), and NOCONSUMER where nobody reads."""
    topics = ", ".join(f"{topic} {lag}" for topic, lag in group.by_topic().items())
    in_rate, out_rate, eta = group_drain(group, tracker)
    if in_rate is not None or out_rate is not None:
        topics += "; never drains at these rates" if eta is None else "; drains in " + format_time_lag(int(eta * 1000))
    nobody = no_consumer(group)
    if nobody is not None:
        topics += f"; {nobody.label}: {nobody.rule}"
    return safe_text(f"{group.group_id}: total lag {group.total} ({topics})")


# --------------------------------------------------------------------------- rows


def columns(watch: bool) -> list[str]:
    names = ["GROUP", "STATE", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]
    return names + ["TIME LAG", "VERDICT", "RULE"] if watch else names


def rows(shown: Iterable[Shown], watch: bool) -> list[tuple[str, ...]]:
    """Plain, terminal-safe cells; a lag lost to retention says so."""
    safe: dict[str, str] = {}

    def text(s: str) -> str:
        found = safe.get(s)
        if found is None:
            found = safe[s] = safe_text(s)
        return found

    out: list[tuple[str, ...]] = []
    for s in shown:
        g = s.group
        group, state = text(g.group_id), text(g.state)
        for p in g.partitions:
            lag = "-" if p.lag is None else str(p.lag)
            if p.lost_to_retention:
                lag = f"{lag} {LOST}"
            committed = "-" if p.committed is None else str(p.committed)
            row: tuple[str, ...] = (group, state, text(p.topic), str(p.partition), committed, str(p.end), lag)
            if watch:
                a = s.partitions.get((p.topic, p.partition)) if s.partitions else None
                row += ("-", "-", "-") if a is None else (format_time_lag(a.time_lag_ms), a.label, a.rule)
            out.append(row)
    return out


def style_of(column: str, value: str) -> str | None:
    if column == "VERDICT":
        return STYLE_BY_LABEL.get(value)
    if column == "LAG" and value.endswith(LOST):
        return "red"
    return None


# --------------------------------------------------------------------------- layout


class Painter:
    """ANSI codes for Rich styles on ``console``: none when it has no colours (a file, a pipe)."""

    def __init__(self, console: Console) -> None:
        system = console.color_system
        self.system = None if system is None else COLOR_SYSTEMS.get(system, COLOR_SYSTEMS["standard"])
        self.no_color = console.no_color

    def __call__(self, text: str, style: str | None) -> str:
        if not style or self.system is None:
            return text
        parsed = Style.parse(style)
        if self.no_color:
            parsed = parsed.without_color
        return parsed.render(text, color_system=self.system)


def _width(s: str) -> int:
    return len(s) if s.isascii() else cell_len(s)


def _cut(s: str, room: int) -> str:
    """``s`` cut to ``room`` cells with an ellipsis (the last column, on a narrow terminal)."""
    if _width(s) <= room:
        return s
    while s and _width(s) > room - 1:
        s = s[:-1]
    return s + "…"


def table_lines(
    names: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    paint: Callable[[str, str | None], str] = lambda text, style: text,
    style: Callable[[str, str], str | None] = lambda column, value: None,
    width: int | None = None,
) -> list[str]:
    """A borderless table, left-aligned, two spaces between columns, no trailing spaces. With a
    terminal ``width``, the last column is cut to fit (when the others leave it room)."""
    if not rows:
        return []
    cells_by_column = list(zip(*rows, strict=True))
    widths = [
        max(_width(name), *(_width(v) for v in set(col))) for name, col in zip(names, cells_by_column, strict=True)
    ]
    if width is not None:
        before = sum(widths[:-1]) + len(GAP) * (len(widths) - 1)
        if before + widths[-1] > width and width - before >= 12:
            widths[-1] = width - before
            cells_by_column[-1] = tuple(_cut(v, widths[-1]) for v in cells_by_column[-1])
    padded = []
    for i, (name, col) in enumerate(zip(names, cells_by_column, strict=True)):
        last = i == len(names) - 1
        cells = {}
        for v in set(col):
            fill = "" if last else " " * (widths[i] - _width(v))
            cells[v] = paint(v, style(name, v)) + fill
        padded.append([cells[v] for v in col])
    header = GAP.join(
        paint(n, "bold") + ("" if i == len(names) - 1 else " " * (widths[i] - _width(n))) for i, n in enumerate(names)
    )
    return [header, *map(GAP.join, zip(*padded, strict=True))]


def write_lines(console: Console, lines: Sequence[str]) -> None:
    """Straight to the console's file, in chunks: Rich has nothing left to lay out."""
    file = console.file
    for start in range(0, len(lines), CHUNK):
        file.write("\n".join(lines[start : start + CHUNK]) + "\n")
    file.flush()


# --------------------------------------------------------------------------- the whole output


def render(
    groups: Sequence[GroupLag],
    tracker: LagTracker | None = None,
    *,
    show_all: bool = False,
    out: Console | None = None,
    err: Console | None = None,
) -> None:
    """The table on stdout (worst first); each shown group's total, and the folded count, on stderr."""
    out = out or output.stdout
    err = err or output.stderr
    if not groups:
        err.print("no consumer groups")
        return
    shown, folded = arrange(groups, tracker, show_all=show_all)
    watch = tracker is not None
    width = out.width if out.is_terminal else None
    write_lines(out, table_lines(columns(watch), rows(shown, watch), paint=Painter(out), style=style_of, width=width))
    notes = [total_line(s.group, tracker) for s in shown]
    if folded:
        notes.append(folded_line(folded, len(shown)))
    write_lines(err, notes)
