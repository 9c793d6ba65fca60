"""What the cluster's ACLs refuse, found before doing it or named when it is refused.

A part of ``KafkaConnection`` (a mixin over the verbs' own parts, see ``base.py``).

``publish`` asks first whether the user may Write to the topic (the topic's authorized operations,
one describe request, trusted for :data:`OPERATIONS_TTL_S`): without it, librdkafka's idempotent
producer meets the refusal as a fatal "Cluster authorization failed" while acquiring a producer id
and every event fails with it; with it, the publish fails at once with "not authorized to Write to
topic 'orders'" and nothing is sent. ``commit_offsets`` (an offsets reset) is refused by the broker
itself, promptly; the refusal is said in the user's terms: which permission on which group or topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from workbench.broker import AccessDenied, BrokerError, OutgoingEvent, PublishResult, Timeout, Unreachable

from .errors import not_authorized
from .lag import GroupsMixin
from .publisher import REFRESH_WAIT_S, PublisherMixin
from .topology import TopologyMixin, operations_of

OPERATIONS_TTL_S = 5.0  # how long publish() trusts what it learnt of a topic's permissions


class AuthorizationMixin(TopologyMixin, PublisherMixin, GroupsMixin):
    """publish and commit_offsets, with the ACLs' refusals found first or named."""

    _topic_operations: dict[str, tuple[float, frozenset[str] | None]]

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        self._check_open()
        if events and not await self._may(topic, "write"):
            raise not_authorized(self._where, f"Write to topic {topic!r}")
        return await super().publish(topic, events)

    async def prepare_publish(self, topic: str) -> None:
        """The producer is made only for a user who may Write to the topic (asked as publish asks, and
        trusted as long): one the ACLs refuse never asks the cluster for a producer id."""
        self._check_open()
        try:
            may = await self._may(topic, "write")
        except BrokerError:
            return  # the publish asks again, and says what is wrong
        if may:
            await super().prepare_publish(topic)

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        try:
            await super().commit_offsets(group_id, offsets)
        except AccessDenied as exc:
            text = str(exc)
            if "consumer group" in text or "GROUP_AUTHORIZATION_FAILED" in text:
                denied = f"Read group {group_id!r} (committing its offsets takes Read on the group)"
            elif "the topic" in text or "TOPIC_AUTHORIZATION_FAILED" in text:
                topics = ", ".join(repr(t) for t in sorted({t for t, _ in offsets}))
                denied = f"Read topic {topics} (committing a group's offsets takes Read on the topic)"
            else:
                raise
            raise not_authorized(self._where, denied) from None

    async def _may(self, topic: str, operation: str) -> bool:
        """Whether the user may do ``operation`` on ``topic`` (True where the broker does not say)."""
        cache = self.__dict__.setdefault("_topic_operations", {})
        cached = cache.get(topic)
        now = time.monotonic()
        if cached is None or now - cached[0] >= OPERATIONS_TTL_S:
            try:
                asking = self._describe_with_operations(topic)
                found = await (asking if cached is None else asyncio.wait_for(asking, REFRESH_WAIT_S))
                cached = (now, operations_of(found))
            except (TimeoutError, Timeout, Unreachable):
                if cached is None:
                    raise
                cached = (now, cached[1])  # the node asked died (see PublisherMixin._partition_count)
            cache[topic] = cached
        operations = cached[1]
        return operations is None or operation in operations
