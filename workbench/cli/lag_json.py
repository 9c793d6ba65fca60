"""Machine output of `lag` (``-o json`` / ``-o jsonl``) for a cluster of any size.

10,000 groups x 24 partitions is 48 MB of JSON; the standard library's encoder (pure Python once
``indent`` is asked for) spent 8 of the command's 13 s on it, and the whole document was built in
memory first. Here each group is encoded by orjson and written as it comes, and a partition row,
which the Kafka adapter shares between the groups at the same offsets, is encoded once.

The keys are those of ``output.lag_dict`` (a partition's row is ``output.partition_record`` itself); a
group that one read can already judge (a queue with messages and no consumer: NOCONSUMER) carries
``verdict``, ``rule`` and ``figures``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

import orjson

from workbench.broker import GroupLag, PartitionLag
from workbench.cli.output import Format, partition_record
from workbench.events.envelope import format_timestamp
from workbench.lag import group_drain, no_consumer

_OPTS = orjson.OPT_NON_STR_KEYS
CHUNK_BYTES = 1 << 20


def group_record(group: GroupLag, lags: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    """A group's figures (its partitions apart, see :func:`partition_record`); ``lags``: each
    partition's (topic, lag or 0), when the caller has them."""
    if lags is None:
        lags = [(p.topic, p.lag or 0) for p in group.partitions]
    topic_lag: dict[str, int] = {}
    for topic, lag in lags:
        topic_lag[topic] = topic_lag.get(topic, 0) + lag
    data: dict[str, Any] = {
        "group": group.group_id,
        "state": group.state,
        "total_lag": sum(topic_lag.values()),
        "topic_lag": topic_lag,
    }
    meta = group.metadata or {}
    if "in_rate" in meta or "out_rate" in meta:
        in_rate, out_rate, drain = group_drain(group, None)
        data.update(in_rate=in_rate, out_rate=out_rate, seconds_to_drain=drain)
    found = no_consumer(group)
    if found is not None:
        data.update(verdict=found.label, rule=found.rule, figures=dict(found.figures))
    data["observed_at"] = format_timestamp(group.observed_at)
    return data


def _indented(encoded: bytes, depth: int) -> bytes:
    """An OPT_INDENT_2 document nested ``depth`` levels deep."""
    return encoded.replace(b"\n", b"\n" + b"  " * depth)


class _Encoder:
    """Encodes groups, each distinct partition row once (rows are shared objects: keyed by id, and
    held so that an id is never reused while it is in the cache)."""

    def __init__(self, indent: bool) -> None:
        self.indent = indent
        self._rows: dict[int, tuple[PartitionLag, bytes, tuple[str, int]]] = {}

    def row(self, p: PartitionLag) -> tuple[bytes, tuple[str, int]]:
        """The row encoded, and its (topic, lag or 0)."""
        cached = self._rows.get(id(p))
        if cached is not None and cached[0] is p:
            return cached[1], cached[2]
        if self.indent:
            encoded = b"      " + _indented(orjson.dumps(partition_record(p), option=_OPTS | orjson.OPT_INDENT_2), 3)
        else:
            encoded = orjson.dumps(partition_record(p), option=_OPTS)
        lag = (p.topic, p.lag or 0)
        self._rows[id(p)] = (p, encoded, lag)
        return encoded, lag

    def group(self, g: GroupLag) -> bytes:
        encoded_rows, lags = zip(*map(self.row, g.partitions), strict=True) if g.partitions else ((), ())
        head = group_record(g, list(lags))
        if not self.indent:
            rows = b",".join(encoded_rows)
            return orjson.dumps(head, option=_OPTS, default=str)[:-1] + b',"partitions":[' + rows + b"]}"
        encoded = _indented(orjson.dumps(head, option=_OPTS | orjson.OPT_INDENT_2, default=str), 1)
        if not g.partitions:
            return b"  " + encoded[:-4] + b',\n    "partitions": []\n  }'
        rows = b",\n".join(encoded_rows)
        return b"  " + encoded[:-4] + b',\n    "partitions": [\n' + rows + b"\n    ]\n  }"


def write(groups: Iterable[GroupLag], fmt: Format, out: IO[bytes] | None = None) -> None:
    """Every group, in the order given: one document (json) or one line per group (jsonl)."""
    out = out or sys.stdout.buffer
    sys.stdout.flush()
    encoder = _Encoder(indent=fmt == "json")
    pending: list[bytes] = []
    size = 0
    first = True

    def flush() -> None:
        nonlocal size
        out.write(b"".join(pending))
        pending.clear()
        size = 0

    if fmt == "json":
        pending.append(b"[")
    for g in groups:
        encoded = encoder.group(g)
        if fmt == "json":
            pending.append(b"\n" + encoded if first else b",\n" + encoded)
        else:
            pending.append(encoded + b"\n")
        first = False
        size += len(encoded)
        if size >= CHUNK_BYTES:
            flush()
    if fmt == "json":
        pending.append(b"\n]\n" if not first else b"]\n")
    flush()
    out.flush()
