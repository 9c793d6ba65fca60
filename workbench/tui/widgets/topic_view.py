"""The topic view: partitions with their first/last offsets and counts, and the groups consuming it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from workbench.broker import GroupLag, TopicInfo
from workbench.events import codecs


def _cell(value: object, style: str = "") -> Text:
    return Text(codecs.safe_text(str(value)), style=style)


def _num(value: int | None) -> Text:
    return Text("-" if value is None else f"{value:,}")


class _Reading(tuple):
    """No groups yet: they are being read (a value of its own, never an empty answer)."""


class TopicView(VerticalScroll):
    """Static figures of one topic; small enough for DataTables (the groups are capped: on a big
    cluster the lag view, with its filter, is the place to see them all)."""

    DEFAULT_CSS = """
    TopicView { padding: 0 1; }
    #topic-title, #groups-title { margin: 1 0 0 0; }
    #partitions, #groups { height: auto; max-height: 14; }
    #topic-config { margin: 1 0 0 0; }
    """
    #: ``groups`` of :meth:`show` while the lag of every group is still being read.
    LOADING: Sequence[GroupLag] = _Reading()
    #: Rows of the groups table at most.
    MAX_GROUPS = 50

    info: TopicInfo | None = None

    def compose(self):
        yield Static(
            Text("Select a topic in the list (type to filter it, enter to open).", style="dim"), id="topic-title"
        )
        yield DataTable(id="partitions", cursor_type="row", zebra_stripes=True)
        yield Static(id="groups-title")
        yield DataTable(id="groups", cursor_type="row", zebra_stripes=True)
        yield Static(id="topic-config")

    def on_mount(self) -> None:
        partitions = self.query_one("#partitions", DataTable)
        partitions.add_column("PARTITION", key="partition")
        partitions.add_column("START", key="start")
        partitions.add_column("END", key="end")
        partitions.add_column("COUNT", key="count")
        groups = self.query_one("#groups", DataTable)
        groups.add_column("GROUP", key="group")
        groups.add_column("STATE", key="state")
        groups.add_column("LAG", key="lag")
        groups.add_column("PARTITIONS", key="partitions")
        for widget in (partitions, groups):
            widget.display = False

    def reading(self, name: str, kind: str = "topic") -> None:
        """Another topic was chosen: its name at once, its figures when they come."""
        self.info = None
        title = Text()
        title.append(codecs.safe_text(name), "bold")
        title.append(f"  {kind} · reading its figures…", "dim")
        self.query_one("#topic-title", Static).update(title)
        self.query_one("#groups-title", Static).update("")
        self.query_one("#topic-config", Static).update("")
        for table in self.query(DataTable):
            table.clear()
            table.display = False

    def reset(self) -> None:
        """Back to "select a topic" (another profile was chosen)."""
        self.info = None
        self.query_one("#topic-title", Static).update(
            Text("Select a topic in the list (type to filter it, enter to open).", style="dim")
        )
        self.query_one("#groups-title", Static).update("")
        self.query_one("#topic-config", Static).update("")
        for table in self.query(DataTable):
            table.clear()
            table.display = False

    def show(self, info: TopicInfo, groups: Sequence[GroupLag] | None) -> None:
        """``groups``: None when the broker reports no consumer groups; :data:`LOADING` while they
        are read (then :meth:`show_groups`)."""
        self.info = info
        title = Text()
        title.append(codecs.safe_text(info.name), "bold")
        title.append(
            f"  {info.kind} · {len(info.partitions)} partition{'s' * (len(info.partitions) != 1)}"
            f" · {info.count:,} events"
        )
        if info.internal:
            title.append("  (internal)", "dim")
        title.append("\n")
        if info.kind == "exchange":  # no history: only a live tap from now on
            title.append("e events (a live tap: what the exchange routes from now on)", "dim")
        else:
            title.append("e events (last 200 per partition, then follow) · o from a position · d dead letters", "dim")
        self.query_one("#topic-title", Static).update(title)

        table = self.query_one("#partitions", DataTable)
        table.clear()
        for p in info.partitions:
            table.add_row(_num(p.partition), _num(p.start), _num(p.end), _num(p.count), key=str(p.partition))
        table.display = bool(info.partitions)

        self.show_groups(groups)
        config = self.query_one("#topic-config", Static)
        if info.config:
            text = Text("Config\n", style="bold")
            for k, v in sorted(info.config.items()):
                text.append(codecs.safe_text(f"{k} = {v}")[:200] + "\n", style="")
            config.update(text)
        else:
            config.update("")

    def groups_failed(self, exc: BaseException) -> None:
        if self.info is not None:
            self.query_one("#groups-title", Static).update(
                Text(codecs.safe_text(f"Consumer groups: could not read them ({exc})"[:300]), style="red")
            )

    def show_groups(self, groups: Sequence[GroupLag] | None) -> None:
        info = self.info
        if info is None:  # another topic is being read meanwhile
            return
        heading = self.query_one("#groups-title", Static)
        table = self.query_one("#groups", DataTable)
        table.clear()
        if groups is self.LOADING:
            heading.update(Text("Consumer groups: reading them…  ·  l for the lag view", style="dim"))
            table.display = False
            return
        if groups is None:
            heading.update(Text("Consumer groups: this broker does not report them.", style="dim"))
            table.display = False
            return
        consuming = []
        for g in groups:
            mine = [p for p in g.partitions if p.topic == info.name]
            if mine:
                consuming.append((g, sum(p.lag or 0 for p in mine), len(mine)))
        if not consuming:
            heading.update(Text("Consumer groups: none has committed on this topic.", style="dim"))
            table.display = False
            return
        summary = Text(f"Consumer groups ({len(consuming):,})", style="bold")
        if len(consuming) > self.MAX_GROUPS:
            summary.append(f"  ·  the {self.MAX_GROUPS} with the most lag here", style="dim")
        summary.append("  ·  l for the lag view", style="bold" if len(consuming) <= self.MAX_GROUPS else "dim")
        heading.update(summary)
        ranked = sorted(consuming, key=lambda item: (-item[1], item[0].group_id))
        for g, lag, count in ranked[: self.MAX_GROUPS]:
            table.add_row(_cell(g.group_id), _cell(g.state), _num(lag), _num(count), key=g.group_id)
        table.display = True
