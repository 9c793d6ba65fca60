"""The topic view: partitions with their first/last offsets and counts, and the groups consuming it.

On a replicated cluster each partition also shows its leader, replicas, in-sync replicas and state
(``PartitionInfo.replica_state``: the rule ``describe`` uses), and the title counts the partitions
that are under-replicated or offline. Where the broker tells what the user may do on the topic
(``TopicInfo.operations``), what is not allowed is said here, before the user tries it:
:meth:`TopicView.refusal` is what the app says instead of opening the publish dialog.
"""

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


#: How each replica state is shown (as ``describe`` shows it).
STATE_STYLES = {"ok": "", "under-replicated": "yellow", "offline": "bold red"}

#: The actions of the app that need a permission on the topic: (operation, what the user would do).
GUARDED_ACTIONS = (("read", "read events"), ("write", "publish"))


def _nodes(ids: tuple[int, ...]) -> Text:
    return Text(",".join(map(str, ids)) or "-")


def replica_summary(info: TopicInfo) -> Text | None:
    """ "2 under-replicated · 1 offline (no leader)", or None when every partition is in sync."""
    states = [p.replica_state for p in info.partitions]
    parts = Text()
    for state, label in (("offline", "offline (no leader)"), ("under-replicated", "under-replicated")):
        if count := states.count(state):
            if parts:
                parts.append(" · ")
            parts.append(f"{count} {label}", STATE_STYLES[state])
    return parts or None


def refused_actions(info: TopicInfo) -> list[tuple[str, str]]:
    """(operation, action) pairs the broker said the user may not do on this topic."""
    return [(operation, action) for operation, action in GUARDED_ACTIONS if not info.may(operation)]


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
        self._partition_columns(partitions, replicated=False)
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
        if problems := replica_summary(info):
            title.append("\n")
            title.append_text(problems)
        refused = refused_actions(info)
        if refused:
            title.append("\nnot authorized here: ", "yellow")
            title.append(", ".join(f"{action} (no {operation.title()})" for operation, action in refused), "yellow")
        self.query_one("#topic-title", Static).update(title)

        table = self.query_one("#partitions", DataTable)
        replicated = any(p.replicas for p in info.partitions)
        self._partition_columns(table, replicated=replicated)
        for p in info.partitions:
            cells = [_num(p.partition), _num(p.start), _num(p.end), _num(p.count)]
            if replicated:
                state = p.replica_state
                cells += [_num(p.leader), _nodes(p.replicas), _nodes(p.isr), Text(state, STATE_STYLES[state])]
            table.add_row(*cells, key=str(p.partition))
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

    def refusal(self, operation: str) -> str | None:
        """Why the shown topic refuses ``operation`` (e.g. ``write``) to this user; None where it is
        allowed or the broker does not say."""
        info = self.info
        if info is None or info.may(operation):
            return None
        return (
            f"Not authorized to {operation.title()} on topic {codecs.safe_text(info.name)!r}: the cluster's ACLs "
            "do not allow this user that (ask its administrators, or switch to a profile that may)."
        )

    @staticmethod
    def _partition_columns(table: DataTable, *, replicated: bool) -> None:
        """The partition table's columns: the replicas' too where the broker has them."""
        table.clear(columns=True)
        for label in ("PARTITION", "START", "END", "COUNT"):
            table.add_column(label, key=label.lower())
        if replicated:
            for label in ("LEADER", "REPLICAS", "ISR", "STATE"):
                table.add_column(label, key=label.lower())

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
