"""How `lag explain` shows its findings: words for people (stdout), or one JSON document.

Everything that came from the broker (group, member and topic names, the stuck event) is made
terminal-safe here; the event is shown as `tail` shows it (its table line), and in JSON as the
envelope `tail -o jsonl` writes (exact bytes, decoded where a schema says).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.text import Text

from workbench.cli import output
from workbench.cli.lag_json import partition_record
from workbench.events.envelope import dumps_event, format_timestamp
from workbench.events.text import safe_text
from workbench.lag import VERDICT_STYLES, format_time_lag
from workbench.lag_explain import DeadLetterCheck, Explanation, PartitionExplanation


def drain_words(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no rates yet)"
    if math.isinf(seconds):
        return "never at the current rates"
    return format_time_lag(int(seconds * 1000))


def _seconds(value: float | None) -> float | str | None:
    """JSON has no infinity: "never"."""
    return "never" if value is not None and math.isinf(value) else value


def _rate(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f}/s"


def dead_letter_words(check: DeadLetterCheck) -> str:
    where = f"dead letters in {safe_text(check.source)}"
    if check.error:
        return f"{where}: could not be read ({safe_text(check.error)})"
    parts = []
    if check.key_found is not None:
        parts.append("its key IS there" if check.key_found else "its key is not there")
    if check.correlation_found is not None:
        cid = safe_text(check.correlation_id or "")
        parts.append(f"correlation id {cid} IS there" if check.correlation_found else f"correlation id {cid} is not")
    if not parts:
        parts.append("the event has no key and no correlation id to look for")
    return f"{where} (last {check.scanned:,} searched): " + "; ".join(parts)


def render(found: Explanation, fmt: str) -> None:
    if fmt != "table":
        output.emit_json(explanation_dict(found), "json" if fmt == "json" else "jsonl")
        return
    out = output.stdout
    v = found.view
    g = v.group
    a = v.assessment
    head = Text(safe_text(g.group_id), style="bold")
    head.append(f"  state {safe_text(g.state)}  ·  ")
    head.append(v.verdict.name, style=VERDICT_STYLES[v.verdict])
    head.append(f"  ·  total lag {g.total:,}  ·  sampled {found.samples} times over {found.window_s:.1f} s")
    out.print(head)
    if a is not None:
        out.print(Text(f"rule: {a.rule}" + (f" ({a.because})" if a.because else "")))
    out.print(Text(f"drains: {drain_words(_group_drain(found))} (in {_rate(v.in_rate)}, out {_rate(v.out_rate)})"))
    if not found.partitions:
        out.print(Text("no partition is behind: nothing to explain", style="green"))
        return
    for item in found.partitions:
        out.print()
        for line in partition_lines(item):
            out.print(line, crop=True, overflow="ellipsis", no_wrap=True)


def _group_drain(found: Explanation) -> float | None:
    v = found.view
    if v.drain_s is None and v.in_rate is not None and v.out_rate is not None:
        return math.inf
    return v.drain_s


def partition_lines(item: PartitionExplanation) -> list[Text]:
    p, a = item.partition, item.assessment
    title = Text(f"{safe_text(p.topic)}/{p.partition}  ", style="bold cyan")
    if a is not None:
        title.append(a.label, style=VERDICT_STYLES[a.verdict])
    lag = "-" if p.lag is None else f"{p.lag:,}"
    title.append(f"  lag {lag} event(s)")
    if item.event_age_ms is not None:
        title.append(f", {format_time_lag(item.event_age_ms)} behind")
    elif a is not None and a.time_lag_ms is not None:
        title.append(f", {format_time_lag(a.time_lag_ms)} behind (estimated)")
    title.append(f"  ·  committed {'-' if p.committed is None else f'{p.committed:,}'} of end {p.end:,}")
    lines = [title]
    owner = item.owner
    lines.append(
        Text(
            f"  owner: {safe_text(owner.client_id) or '?'} on {safe_text(owner.host) or '?'}"
            if owner is not None
            else "  owner: none (no live member has this partition)"
        )
    )
    if a is not None:
        lines.append(Text(f"  rule: {a.rule}" + (f" ({a.because})" if a.because else "")))
    lines.append(Text(f"  drains: {drain_words(item.drain_s)}"))
    if item.event is None:
        lines.append(Text(f"  stuck at: {safe_text(item.event_note)}", style="dim"))
    else:
        lines.append(Text(f"  stuck at ({item.event_note}):", style="bold"))
        lines.append(Text("    ") + output.EventPrinter("table").line(item.event))
    if item.dead_letters is not None:
        check = item.dead_letters
        lines.append(Text(f"  {dead_letter_words(check)}", style="red" if check.found else ""))
    return lines


def explanation_dict(found: Explanation) -> dict[str, Any]:
    v = found.view
    a = v.assessment
    return {
        "group": v.group.group_id,
        "state": v.group.state,
        "verdict": v.verdict.name,
        "rule": a.rule if a is not None else None,
        "because": a.because if a is not None else None,
        "figures": dict(a.figures) if a is not None else {},
        "total_lag": v.group.total,
        "samples": found.samples,
        "window_s": round(found.window_s, 3),
        "in_rate": v.in_rate,
        "out_rate": v.out_rate,
        "seconds_to_drain": _seconds(_group_drain(found)),
        "observed_at": format_timestamp(v.group.observed_at),
        "dead_letters": found.dead_letter_source,
        "partitions": [partition_dict(item) for item in found.partitions],
    }


def partition_dict(item: PartitionExplanation) -> dict[str, Any]:
    p, a = item.partition, item.assessment
    check = item.dead_letters
    return {
        **partition_record(p),  # the partition's figures, as `lag -o json` writes them
        "time_lag_ms": item.event_age_ms if item.event_age_ms is not None else (a.time_lag_ms if a else None),
        "time_lag_measured": item.event_age_ms is not None,
        "verdict": a.label if a is not None else None,
        "rule": a.rule if a is not None else None,
        "because": a.because if a is not None else None,
        "figures": dict(a.figures) if a is not None else {},
        "seconds_to_drain": _seconds(item.drain_s),
        "owner": None if item.owner is None else {"client_id": item.owner.client_id, "host": item.owner.host},
        "event_note": item.event_note,
        "event": None if item.event is None else json.loads(dumps_event(item.event, decoded=True)),
        "dead_letter_check": None
        if check is None
        else {
            "source": check.source,
            "scanned": check.scanned,
            "key_found": check.key_found,
            "correlation_id": check.correlation_id,
            "correlation_found": check.correlation_found,
            "found": check.found,
            "error": check.error,
        },
    }
