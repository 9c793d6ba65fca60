"""The topic view: partitions with their first/last offsets and counts, and the groups consuming it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from workbench import codecs
from workbench.broker import GroupLag, TopicInfo


def _cell(value: object, style: str = "") -> Text:
    return Text(codecs.safe_text(str(value)), style=style)


def _num(value: int | None) -> Text:
    return Text("-" if value is None else f"{value:,}")


class TopicView(VerticalScroll):
    """Static figures of one topic; small enough for DataTables."""

    def compose(self):
        yield Static(Text("Select a topic in the list (type to filter it, enter to open).", style="dim"),
                     id="topic-title")
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

    def reset(self) -> None:
        """Back to "select a topic" (another profile was chosen)."""
        self.query_one("#topic-title", Static).update(
            Text("Select a topic in the list (type to filter it, enter to open).", style="dim"))
        self.query_one("#groups-title", Static).update("")
        self.query_one("#topic-config", Static).update("")
        for table in self.query(DataTable):
            table.clear()
            table.display = False

    def show(self, info: TopicInfo, groups: Sequence[GroupLag] | None) -> None:
        """``groups``: None when the broker reports no consumer groups."""
        title = Text()
        title.append(codecs.safe_text(info.name), "bold")
        title.append(f"  {info.kind} · {len(info.partitions)} partition{'s' * (len(info.partitions) != 1)}"
                     f" · {info.count:,} events")
        if info.internal:
            title.append("  (internal)", "dim")
        title.append("\n")
        title.append("e events (last 200 per partition, then follow) · o from a position", "dim")
        self.query_one("#topic-title", Static).update(title)

        table = self.query_one("#partitions", DataTable)
        table.clear()
        for p in info.partitions:
            table.add_row(_num(p.partition), _num(p.start), _num(p.end), _num(p.count), key=str(p.partition))
        table.display = bool(info.partitions)

        self._show_groups(info, groups)
        config = self.query_one("#topic-config", Static)
        if info.config:
            text = Text("Config\n", style="bold")
            for k, v in sorted(info.config.items()):
                text.append(codecs.safe_text(f"{k} = {v}")[:200] + "\n", style="")
            config.update(text)
        else:
            config.update("")

    def _show_groups(self, info: TopicInfo, groups: Sequence[GroupLag] | None) -> None:
        heading = self.query_one("#groups-title", Static)
        table = self.query_one("#groups", DataTable)
        table.clear()
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
        heading.update(Text(f"Consumer groups ({len(consuming)})  ·  l for the lag view", style="bold"))
        for g, lag, count in sorted(consuming, key=lambda item: (-item[1], item[0].group_id)):
            table.add_row(_cell(g.group_id), _cell(g.state), _num(lag), _num(count), key=g.group_id)
        table.display = True
