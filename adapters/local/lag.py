"""Consumer groups in the local event log: committed offsets per group and partition.

A part of :class:`~.store.Store` (a mixin on :class:`~.base.StoreBase`, see ``base.py``).

A group exists once it has committed (``group_offsets``); it is "Stable" when it committed within
``stable_window_ms`` (30 s by default), "Empty" otherwise. Lag figures are the contract's raw ones
(committed, start, end per partition), read in one snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workbench.broker import (
    GroupInfo,
    GroupLag,
    InvalidRequest,
    NotFound,
    PartitionLag,
)

from .base import STABLE_WINDOW_MS, StoreBase
from .schema import (
    SELECT_PARTITIONS,
    now_ms,
    transaction,
)


class LagMixin(StoreBase):
    """groups, lag, commit_offsets."""

    def groups(self) -> list[GroupInfo]:
        now = now_ms()
        rows = (
            self.con()
            .execute("SELECT group_id, max(updated) FROM group_offsets GROUP BY group_id ORDER BY group_id")
            .fetchall()
        )
        return [
            GroupInfo(g, _group_state(updated, now, self.stable_window_ms), protocol="local") for g, updated in rows
        ]

    def lag(self, group_ids: Sequence[str] | None) -> list[GroupLag]:
        con = self.con()
        with transaction(con):
            observed = now_ms()
            rows = con.execute(
                'SELECT g.group_id, t.name, p."partition", g.committed, p.start_offset, '
                "p.next_offset, g.updated "
                "FROM group_offsets g JOIN partitions p ON p.id = g.partition_id "
                "JOIN topics t ON t.id = p.topic_id "
                'ORDER BY g.group_id, t.name, p."partition"'
            ).fetchall()
        by_group: dict[str, list[tuple]] = {}
        for r in rows:
            by_group.setdefault(r[0], []).append(r)
        if group_ids is None:
            wanted = list(by_group)
        else:
            wanted = list(dict.fromkeys(group_ids))
            for g in wanted:
                if g not in by_group:
                    raise NotFound(f"{self.where}: consumer group {g!r} does not exist")
        return [
            GroupLag(
                group_id=g,
                state=_group_state(max(r[6] for r in by_group[g]), observed, self.stable_window_ms),
                partitions=tuple(
                    PartitionLag(topic, p, committed, start, end)
                    for _g, topic, p, committed, start, end, _u in by_group[g]
                ),
                observed_at=observed,
            )
            for g in wanted
        ]

    def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        where = self.where
        if not isinstance(group_id, str) or not group_id:
            raise InvalidRequest(f"{where}: a group id must be a non-empty string, got {group_id!r}")
        con = self.con()
        with transaction(con, "IMMEDIATE"):
            now = now_ms()
            rows = []
            topics: dict[str, tuple[int, dict[int, int]]] = {}
            for (topic, partition), offset in offsets.items():
                if topic not in topics:
                    topic_id, count = self._topic(con, topic)
                    pids = {r[0]: r[1] for r in con.execute(SELECT_PARTITIONS, (topic_id,))}
                    topics[topic] = (count, pids)
                count, pids = topics[topic]
                if isinstance(partition, bool) or partition not in pids:
                    raise self._no_partition(topic, partition, count)
                if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                    raise InvalidRequest(
                        f"{where}: group {group_id!r}: the offset for {topic!r} partition "
                        f"{partition} must be an int >= 0, got {offset!r}"
                    )
                rows.append((group_id, pids[partition], offset, now))
            con.executemany(
                "INSERT INTO group_offsets (group_id, partition_id, committed, updated) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, partition_id) "
                "DO UPDATE SET committed = excluded.committed, updated = excluded.updated",
                rows,
            )


def _group_state(updated: int, now: int, window_ms: int = STABLE_WINDOW_MS) -> str:
    return "Stable" if now - updated < window_ms else "Empty"
