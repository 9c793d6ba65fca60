"""Consumer groups on the connection's side: listing, lag assembly, committing offsets.

A part of ``KafkaConnection`` (a mixin on :class:`~.base.KafkaBase`, see ``base.py``).

The coordinator-bound requests (describing groups, fetching their committed offsets) are made by
the worker process in ``groups.py``, a batch of groups at a time; this module lists the groups
(one request), asks the worker, and adds the partitions' start and end offsets (one batched
ListOffsets request per kind) to make the contract's raw :class:`GroupLag` figures. A partition
assigned to a member but never committed has committed None. Verdicts are not made here
(``workbench.lag``).

``commit_offsets`` refuses a group with active members (its consumers would overwrite the
offsets, or the coordinator refuses the commit): stop them first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from workbench.broker import GroupInfo, GroupLag, InvalidRequest, NotFound, PartitionLag

from .base import KafkaBase, check_name
from .groups import MEMBERLESS_STATES, group_state_name

#: What the group coordinator answers when an admin commit meets a group with live members.
_ACTIVE_GROUP_ERRORS = (
    "UNKNOWN_MEMBER_ID",
    "ILLEGAL_GENERATION",
    "REBALANCE_IN_PROGRESS",
    "NON_EMPTY_GROUP",
    "STALE_MEMBER_EPOCH",
    "GROUP_SUBSCRIBED_TO_TOPIC",
)


def _ms_now() -> int:
    return time.time_ns() // 1_000_000


def _listed_state(listed: Any) -> str:
    """A group's state as the group listing gives it ("Unknown" for a group it does not list)."""
    return group_state_name(getattr(listed, "state", None))


class GroupsMixin(KafkaBase):
    """groups, lag, commit_offsets."""

    async def _group_listing(self) -> dict[str, Any]:
        try:
            future = self._admin.list_consumer_groups(request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, "listing consumer groups") from None
        listing = await self._wait(future, "listing consumer groups")
        if listing.errors:  # a broker that did not answer: its groups are missing from `valid`
            raise self._error(listing.errors[0], "listing consumer groups")
        return {g.group_id: g for g in listing.valid}

    async def _fetch_groups(
        self,
        group_ids: Sequence[str],
        *,
        with_offsets: bool,
        on_progress: Callable[[int, int], None] | None = None,
        describe: Sequence[str] | None = None,
    ) -> tuple[dict[str, GroupInfo | None], dict[str, dict[tuple[str, int], int | None]]]:
        """Groups' infos (None where describing one failed; only those in ``describe`` when it is
        given) and committed offsets, from the worker process that makes the coordinator-bound
        requests (see ``groups.py``)."""
        loop = asyncio.get_running_loop()
        report: Callable[[int, int], None] | None = None
        if on_progress is not None:

            def report_on_loop(done: int, total: int) -> None:
                """Called on the worker's thread: hands the figures to the loop's thread."""
                loop.call_soon_threadsafe(on_progress, done, total)

            report = report_on_loop
        return await asyncio.to_thread(
            self._group_fetcher.fetch, list(group_ids), with_offsets=with_offsets, on_batch=report, describe=describe
        )

    async def groups(self) -> list[GroupInfo]:
        self._check_open()
        listing = await self._group_listing()
        infos, _ = await self._fetch_groups(sorted(listing), with_offsets=False)
        return [
            infos.get(group_id) or GroupInfo(group_id, group_state_name(getattr(listing[group_id], "state", None)))
            for group_id in sorted(listing)
        ]

    async def lag(
        self,
        group_ids: Sequence[str] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GroupLag]:
        self._check_open()
        listing = await self._group_listing()
        if group_ids is None:
            wanted = sorted(listing)
        elif isinstance(group_ids, str):
            wanted = [group_ids]
        else:
            wanted = list(dict.fromkeys(group_ids))
        # Empty and Dead groups have no members: their listing says all a description would
        describe = [g for g in wanted if _listed_state(listing.get(g)) not in MEMBERLESS_STATES]
        infos, offsets = await self._fetch_groups(wanted, with_offsets=True, on_progress=on_progress, describe=describe)
        members_of: dict[str, tuple] = {}
        per_group: dict[str, dict[tuple[str, int], int | None]] = {}
        states: dict[str, str] = {}
        unknown = []
        for group_id in wanted:
            commits = offsets[group_id]
            info = infos.get(group_id)
            members = info.members if info is not None else ()
            if group_id not in listing and not commits and not members:
                unknown.append(group_id)
                continue
            parts = dict(commits)
            for member in members:  # assigned but never committed: committed None ("-")
                for tp in member.assignment:
                    parts.setdefault(tp, None)
            per_group[group_id] = parts
            members_of[group_id] = tuple(members)
            if info is not None:
                states[group_id] = info.state
            else:
                states[group_id] = _listed_state(listing.get(group_id))
        if unknown:
            names = ", ".join(repr(g) for g in unknown)
            raise NotFound(f"{self._where}: consumer group {names} does not exist")
        pairs = {tp for parts in per_group.values() for tp in parts}
        observed = _ms_now()
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest(), tolerate_missing=True),
            self._list_offsets(pairs, OffsetSpec.latest(), tolerate_missing=True),
            return_exceptions=True,
        )
        if isinstance(low, BaseException):
            raise low
        if isinstance(high, BaseException):
            raise high
        result = []
        # Rows are immutable, and groups of a shared cluster mostly sit at the same offsets: one
        # object per distinct (topic, partition, committed) is made once and shared (10,000 groups
        # x 24 partitions at the end: 24 objects, not 240,000).
        made: dict[tuple[tuple[str, int], int | None], PartitionLag] = {}
        for group_id in wanted:
            if group_id not in per_group:
                continue
            row_list = []
            for tp, committed in sorted(per_group[group_id].items()):
                row = made.get((tp, committed))
                if row is None:
                    if tp not in low or tp not in high:  # topics deleted since are left out
                        continue
                    row = made[(tp, committed)] = PartitionLag(tp[0], tp[1], committed, low[tp], high[tp])
                row_list.append(row)
            rows = tuple(row_list)
            result.append(GroupLag(group_id, states[group_id], rows, observed, members=members_of[group_id]))
        return result

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        self._check_open()
        where = self._where
        if not isinstance(group_id, str) or not group_id:
            raise InvalidRequest(f"{where}: a group id must be a non-empty string")
        offsets = dict(offsets)
        if not offsets:
            return
        for (topic, partition), offset in offsets.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise InvalidRequest(
                    f"{where}: group {group_id!r}: offset for {topic!r}/{partition} must be an int >= 0, got {offset!r}"
                )
        topics = sorted({t for t, _ in offsets})
        for t in topics:
            check_name(t)
        described, (infos, _) = await asyncio.gather(
            self._describe_topics(topics), self._fetch_groups([group_id], with_offsets=False)
        )
        for topic, partition in offsets:
            known = {tp.id for tp in described[topic].partitions}
            if partition not in known:
                raise NotFound(f"{where}: topic {topic!r} has no partition {partition!r}")
        info = infos.get(group_id)
        if info is not None and info.members:
            raise InvalidRequest(
                f"{where}: group {group_id!r} has {len(info.members)} active member(s) "
                f"(state {info.state}); stop its consumers before changing its offsets",
            )
        request = ConsumerGroupTopicPartitions(
            group_id, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        )
        try:
            futures = self._admin.alter_consumer_group_offsets([request], request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, f"committing offsets of group {group_id!r}") from None
        try:
            answer = await self._wait(futures[group_id], f"committing offsets of group {group_id!r}")
        except InvalidRequest as exc:
            if any(code in str(exc) for code in _ACTIVE_GROUP_ERRORS):
                raise InvalidRequest(
                    f"{where}: group {group_id!r} has active members; stop its consumers before changing its offsets"
                ) from None
            raise
        for tp in answer.topic_partitions or ():
            if tp.error is None:
                continue
            if tp.error.name() in _ACTIVE_GROUP_ERRORS:
                raise InvalidRequest(
                    f"{where}: group {group_id!r} has active members; stop its consumers before changing its offsets"
                )
            raise self._error(tp.error, f"committing {tp.topic!r}/{tp.partition} of group {group_id!r}")
