"""Rendering for the scripted CLI: stdout carries data only, stderr carries diagnostics.

Every piece of broker data goes through :func:`workbench.events.text.safe` (escaped, then put into
:class:`rich.text.Text`, never into markup strings), so payloads cannot inject markup or terminal escapes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from workbench.broker import Event, GroupInfo, GroupLag, PartitionLag, TopicInfo
from workbench.events import codecs
from workbench.events.envelope import dumps_event, format_timestamp
from workbench.events.text import safe, safe_text
from workbench.lag import LagTracker, seconds_to_drain

if TYPE_CHECKING:
    from workbench.offsets_reset import ResetPlan

Format = Literal["table", "json", "jsonl"]

stdout = Console(soft_wrap=False, highlight=False)
if not stdout.is_terminal:
    stdout.width = 1000  # into a file or pipe: never squeeze or cut table columns
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: Text | None = None) -> None:
    table = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else safe("-" if cell is None else cell) for cell in row))
    stdout.print(table)


def count(n: int | None) -> str:
    """A count as people read it in tables and messages (249,355); machine output keeps plain numbers."""
    return "-" if n is None else f"{n:,}"


def emit_json(data: Any, fmt: Format) -> None:
    """``json``: one document; ``jsonl``: one line per item of a list, or the one document on one line."""
    if fmt == "jsonl" and isinstance(data, list):
        for item in data:
            sys.stdout.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
    elif fmt == "jsonl":
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- topics


#: ``TopicInfo.metadata`` key of a log whose offsets have gaps (a capture, a trace file): the real
#: number of events per partition, where ``end - start`` only spans offsets.
EVENT_COUNTS = "event_counts"


def event_counts(info: TopicInfo) -> dict[int, int]:
    """Events per partition: counted by the broker where offsets have gaps, else ``end - start``."""
    counted = info.metadata.get(EVENT_COUNTS) or {}
    return {p.partition: int(counted.get(p.partition, counted.get(str(p.partition), p.count))) for p in info.partitions}


def topic_dict(info: TopicInfo) -> dict[str, Any]:
    counts = event_counts(info)
    return {
        "name": info.name,
        "kind": info.kind,
        "partitions": [
            {
                "partition": p.partition,
                "start": p.start,
                "end": p.end,
                "count": counts[p.partition],
                "leader": p.leader,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "size_bytes": p.size_bytes,
                **({"state": p.replica_state} if p.replicas else {}),
            }
            for p in info.partitions
        ],
        "count": sum(counts.values()),
        "config": dict(info.config),
        "internal": info.internal,
        "metadata": {k: v for k, v in info.metadata.items() if k != EVENT_COUNTS},
    }


def replica_problems(info: TopicInfo) -> str | None:
    """One line on partitions without a leader or with replicas out of sync; None when all are fine."""
    states = [p.replica_state for p in info.partitions if p.replicas]
    offline, under = states.count("offline"), states.count("under-replicated")
    if not offline and not under:
        return None
    parts = [f"{n} {what}" for n, what in ((offline, "offline (no leader)"), (under, "under-replicated")) if n]
    return f"{info.name}: {' and '.join(parts)} of {len(info.partitions)} partition(s)"


def render_topics(topics: Sequence[TopicInfo], fmt: Format) -> None:
    if fmt != "table":
        return emit_json([topic_dict(t) for t in topics], fmt)
    if not topics:
        stderr.print("no topics (create one with `workbench topics create NAME`, or seed the demo: `workbench demo`)")
        return
    print_table(
        ("TOPIC", "KIND", "PARTITIONS", "EVENTS"),
        ((t.name, t.kind, *topic_figures(t)) for t in topics),
    )
    for note in sorted({str(t.metadata["statistics"]) for t in topics if t.metadata.get("statistics")}):
        stderr.print(safe(f"note: {note}", "dim"))


def topic_figures(t: TopicInfo) -> tuple[object, object]:
    """Partitions and events; "-" for what holds no events of its own (a RabbitMQ exchange routes them)."""
    if not t.partitions:
        return "-", "-"
    return len(t.partitions), count(sum(event_counts(t).values()))


def render_describe(info: TopicInfo, fmt: Format) -> None:
    if fmt != "table":
        return emit_json(topic_dict(info), fmt)
    columns = ["PARTITION", "START", "END", "EVENTS"]
    counts = event_counts(info)
    rows = [[p.partition, p.start, p.end, count(counts[p.partition])] for p in info.partitions]
    if any(p.replicas for p in info.partitions):  # brokers with replication
        columns += ["LEADER", "REPLICAS", "ISR", "STATE"]
        for row, p in zip(rows, info.partitions, strict=True):
            state = p.replica_state
            shown = state if state == "ok" else Text(state, style="bold red" if state == "offline" else "yellow")
            row += [
                "-" if p.leader is None else p.leader,
                ",".join(map(str, p.replicas)),
                ",".join(map(str, p.isr)),
                shown,
            ]
    if any(p.size_bytes is not None for p in info.partitions):
        columns.append("SIZE")
        for row, p in zip(rows, info.partitions, strict=True):
            row.append(None if p.size_bytes is None else codecs.human_size(p.size_bytes))
    if info.partitions:
        total = sum(counts.values())
        print_table(columns, rows, title=safe(f"{info.kind} {info.name}: {count(total)} events"))
        if total != info.count:
            stderr.print(
                safe(
                    f"note: the offsets have gaps (e.g. a capture or trace file keeps the source's): "
                    f"START..END spans {count(info.count)} offsets, {count(total)} events are stored"
                )
            )
    if problem := replica_problems(info):
        stderr.print(safe(f"warning: {problem}", "yellow"))
    if info.config:
        print_table(("CONFIG", "VALUE"), sorted(info.config.items()))
    details = {k: v for k, v in info.metadata.items() if k != EVENT_COUNTS}
    if details:
        stdout.print(details_tree(f"{info.kind} {info.name}", details))


def details_tree(label: str, details: Mapping[str, Any]) -> Tree:
    """What a broker says beyond partitions (bindings, rates, queue figures ...) as a safe tree;
    empty lists and tables are left out."""
    tree = Tree(safe(label, "bold"))

    def add(node: Tree, key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if value:
                branch = node.add(safe(key))
                for k, v in value.items():
                    add(branch, str(k), v)
        elif isinstance(value, list | tuple):
            if value:
                branch = node.add(safe(key))
                for item in value:
                    branch.add(
                        safe(", ".join(f"{k}={v}" for k, v in item.items()) if isinstance(item, Mapping) else item)
                    )
        else:
            node.add(safe(f"{key}: {value}"))

    for key, value in details.items():
        add(tree, key, value)
    return tree


# --------------------------------------------------------------------------- events


class EventPrinter:
    """Writes tailed events: ``table`` (aligned, safe one-line previews), ``jsonl`` (the envelope) or ``raw``.

    On a terminal a table line is cut to the screen width; into a pipe or file it is not.
    """

    def __init__(self, fmt: Literal["table", "jsonl", "raw"], *, decoded: bool = False) -> None:
        self.fmt = fmt
        self.decoded = decoded  # jsonl: add what a schema decoded beside the exact bytes
        self.width = stdout.width if stdout.is_terminal else None

    def print_batch(self, events: Sequence[Event]) -> None:
        if self.fmt == "jsonl":
            decoded = self.decoded
            sys.stdout.write("".join(dumps_event(e, decoded=decoded) + "\n" for e in events))
        elif self.fmt == "raw":
            sys.stdout.flush()
            sys.stdout.buffer.write(b"".join((e.value or b"") + b"\n" for e in events))
        elif self.width is None:
            sys.stdout.write("".join(self.line(e).plain + "\n" for e in events))
        else:
            for e in events:
                stdout.print(self.line(e), crop=True, overflow="ellipsis", no_wrap=True)
        sys.stdout.flush()

    def line(self, e: Event) -> Text:
        attrs = codecs.cloudevent_attributes(e.headers)
        key = "-" if e.key is None else codecs.preview_of(e.metadata.get("decoded_key"), e.key, 24)
        text = Text(no_wrap=True)
        text.append(str(format_timestamp(e.timestamp) or "-"), "dim")
        text.append(f"  {e.partition}/{e.offset:<6} ", "cyan")
        text.append(f"{key:<24} ", "green")
        text.append(f"{safe_text(attrs.get('type') or '-'):<20} ", "magenta")
        room = max(self.width - 80, 40) if self.width else 200
        text.append(codecs.preview_of(e.metadata.get("decoded_value"), e.value, room))
        return text


# --------------------------------------------------------------------------- groups and lag


def _drain(group: GroupLag) -> dict[str, Any]:
    """Time-to-drain, where the broker gives in/out rates (RabbitMQ queues)."""
    meta = group.metadata
    if "in_rate" not in meta and "out_rate" not in meta:
        return {}
    return {
        "in_rate": meta.get("in_rate"),
        "out_rate": meta.get("out_rate"),
        "seconds_to_drain": seconds_to_drain(group.total, meta.get("in_rate"), meta.get("out_rate")),
    }


def partition_record(p: PartitionLag) -> dict[str, Any]:
    """One partition's figures as `lag -o json` writes them: the one place that names them (the
    streamed output of cli/lag_json.py and `lag explain -o json` use it too)."""
    return {
        "topic": p.topic,
        "partition": p.partition,
        "committed": p.committed,
        "start": p.start,
        "end": p.end,
        "lag": p.lag,
        "lost_to_retention": p.lost_to_retention,
    }


def lag_dict(group: GroupLag, tracker: LagTracker | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "group": group.group_id,
        "state": group.state,
        "total_lag": group.total,
        "topic_lag": group.by_topic(),
        **_drain(group),
        "observed_at": format_timestamp(group.observed_at),
        "partitions": [partition_record(p) for p in group.partitions],
    }
    if tracker is not None:
        for row, p in zip(data["partitions"], group.partitions, strict=True):
            a = tracker.assess(group.group_id, p.topic, p.partition)
            row.update(verdict=a.label, rule=a.rule, time_lag_ms=a.time_lag_ms)
        if group.partitions:
            a = tracker.assess_group(group.group_id)
            data.update(verdict=a.label, rule=a.rule, time_lag_ms=a.time_lag_ms)
    return data


def render_lag(groups: Sequence[GroupLag], fmt: Format, tracker: LagTracker | None = None) -> None:
    """Machine output of `lag`: every group, every partition; with a tracker (``lag --watch``) also
    verdicts and lag in time. The table for people is cli/lag_table.py's (worst first, folded)."""
    emit_json([lag_dict(g, tracker) for g in groups], fmt)


def render_groups(groups: Sequence[GroupInfo], fmt: Format) -> None:
    if fmt != "table":
        return emit_json(
            [
                {
                    "group": g.group_id,
                    "state": g.state,
                    "protocol": g.protocol,
                    "members": [
                        {"client_id": m.client_id, "host": m.host, "assignment": [list(a) for a in m.assignment]}
                        for m in g.members
                    ],
                }
                for g in groups
            ],
            fmt,
        )
    if not groups:
        stderr.print("no consumer groups")
        return
    print_table(
        ("GROUP", "STATE", "PROTOCOL", "MEMBERS"),
        ((g.group_id, g.state, g.protocol or None, len(g.members)) for g in groups),
    )


# --------------------------------------------------------------------------- offsets reset


def reset_dict(plan: ResetPlan, applied: GroupLag | None = None) -> dict[str, Any]:
    """The plan (and, once executed, the committed offsets read back) as plain data."""
    now = {} if applied is None else {(p.topic, p.partition): p.committed for p in applied.partitions}
    rows = []
    for c in plan.changes:
        row: dict[str, Any] = {
            "group": plan.group,
            "topic": c.topic,
            "partition": c.partition,
            "current": c.current,
            "target": str(plan.to),
            "requested": c.requested,
            "new": c.new,
            "start": c.start,
            "end": c.end,
            "clamped": c.clamped,
            "note": c.note,
        }
        if applied is not None:
            row["committed"] = now.get((c.topic, c.partition))
        rows.append(row)
    return {
        "group": plan.group,
        "state": plan.state,
        "to": str(plan.to),
        "executed": applied is not None,
        "partitions": rows,
    }


def render_reset(plan: ResetPlan, fmt: Format, applied: GroupLag | None = None) -> None:
    """Old -> new per partition; after ``--execute`` also the committed offset read back from the broker."""
    if fmt != "table":
        data = reset_dict(plan, applied)
        return emit_json(data["partitions"] if fmt == "jsonl" else data, fmt)
    columns = ["GROUP", "TOPIC", "PARTITION", "CURRENT", "TARGET", "NEW"]
    if applied is not None:
        columns.append("COMMITTED NOW")
    columns.append("NOTE")
    now = {} if applied is None else {(p.topic, p.partition): p.committed for p in applied.partitions}
    rows = []
    for c in plan.changes:
        row: list[object] = [
            plan.group,
            c.topic,
            c.partition,
            "-" if c.current is None else c.current,
            str(plan.to),
            c.new,
        ]
        if applied is not None:
            row.append(now.get((c.topic, c.partition)))
        row.append(Text(c.note, "yellow") if c.clamped else "")
        rows.append(row)
    print_table(columns, rows)
    if applied is None:
        stderr.print(safe(f"dry run: nothing changed (group {plan.group} is {plan.state}); add --execute to apply"))
        if not plan.resettable:
            stderr.print(
                safe(
                    f"note: --execute will be refused while the group is {plan.state} (it must be Empty or Dead)",
                    "yellow",
                )
            )
    else:
        stderr.print(safe(f"reset {len(plan.changes)} partition(s) of group {plan.group} to {plan.to}"))
