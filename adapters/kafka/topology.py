"""Topics of a Kafka cluster: list, describe (with configs), create and delete.

A part of ``KafkaConnection`` (a mixin on :class:`~.base.KafkaBase`, see ``base.py``).

Topic configs
    ``TopicInfo.config`` holds only the values that are not Kafka's built-in default (whatever set
    them: the topic itself or the broker's configuration). ``TopicInfo.metadata["config_source"]``
    says where each came from (``DYNAMIC_TOPIC_CONFIG``, ``STATIC_BROKER_CONFIG`` ...); defaults
    are left out. Sensitive values (the broker hides them) are left out too.

Internal topics
    Topics whose names start with ``__`` (``__consumer_offsets``, ``__transaction_state``,
    ``__share_group_state`` ...) are listed with ``internal=True``; ``describe_topic`` uses the
    broker's own flag.

Creating and deleting wait (bounded by ``timeout_s``) until metadata shows the topic with leaders,
or not at all, so the next call sees what was asked for.

Permissions
    ``describe_topic`` asks for the topic's authorized operations in the same request (Kafka's
    DescribeTopicPartitions/Metadata with ``include_authorized_operations``): ``TopicInfo.operations``
    is what the connected user may do there (``read``, ``write``, ``delete`` ...), so the UI can say
    what is not allowed instead of failing on it. A refusal by the ACLs names the operation: "not
    authorized to Create topic 'x'".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from workbench.broker import AccessDenied, InvalidRequest, NotFound, PartitionInfo, Timeout, TopicInfo

from .base import KafkaBase, check_name
from .errors import not_authorized


class TopologyMixin(KafkaBase):
    """list_topics, describe_topic, create_topic, delete_topic."""

    async def list_topics(self) -> list[TopicInfo]:
        self._check_open()
        metadata = await self._metadata()
        pairs = [(name, p) for name, tm in metadata.topics.items() if tm.error is None for p in tm.partitions]
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest(), tolerate_missing=True),
            self._list_offsets(pairs, OffsetSpec.latest(), tolerate_missing=True),
        )
        topics = []
        for name, tm in metadata.topics.items():
            if tm.error is not None:
                continue
            parts = tuple(
                PartitionInfo(
                    partition=p,
                    start=low.get((name, p), 0),
                    end=high.get((name, p), 0),
                    leader=None if pm.leader < 0 else pm.leader,
                    replicas=tuple(pm.replicas),
                    isr=tuple(pm.isrs),
                )
                for p, pm in sorted(tm.partitions.items())
            )
            topics.append(TopicInfo(name=name, partitions=parts, internal=name.startswith("__")))
        return sorted(topics, key=lambda t: t.name)

    async def describe_topic(self, name: str) -> TopicInfo:
        self._check_open()
        check_name(name)
        found: tuple[Any, ...] = await asyncio.gather(
            self._describe_with_operations(name), self._topic_config(name), return_exceptions=True
        )
        for failed in found:
            if isinstance(failed, BaseException):
                raise failed
        desc, config = found
        pairs = [(name, tp.id) for tp in desc.partitions]
        low, high = await asyncio.gather(
            self._list_offsets(pairs, OffsetSpec.earliest()),
            self._list_offsets(pairs, OffsetSpec.latest()),
        )
        values, sources = config
        parts = tuple(
            PartitionInfo(
                partition=tp.id,
                start=low[(name, tp.id)],
                end=high[(name, tp.id)],
                leader=None if tp.leader is None else tp.leader.id,
                replicas=tuple(n.id for n in tp.replicas),
                isr=tuple(n.id for n in tp.isr),
            )
            for tp in sorted(desc.partitions, key=lambda tp: tp.id)
        )
        metadata: dict[str, Any] = {"config_source": sources}
        if getattr(desc, "topic_id", None) is not None:
            metadata["topic_id"] = str(desc.topic_id)
        return TopicInfo(
            name=name,
            partitions=parts,
            config=values,
            internal=bool(getattr(desc, "is_internal", False)),
            metadata=metadata,
            operations=operations_of(desc),
        )

    async def _describe_with_operations(self, name: str) -> Any:
        """The topic's TopicDescription, with the operations the connected user may do on it."""
        return (await self._describe_topics([name], operations=True))[name]

    async def _topic_config(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        resource = ConfigResource(ResourceType.TOPIC, name)
        what = f"configs of topic {name!r}"
        found = await self._ask_controller(
            lambda wait: self._admin.describe_configs([resource], request_timeout=wait), what, topic=name
        )
        (entries,) = found.values()
        if isinstance(entries, BaseException):
            error = self._error(entries, f"configs of topic {name!r}")
            if isinstance(error, NotFound):
                raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
            raise error
        values: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key, entry in sorted(entries.items()):
            source = getattr(entry.source, "name", None) or ConfigSource(entry.source).name
            if entry.is_default or source == "DEFAULT_CONFIG":
                continue
            if entry.is_sensitive or entry.value is None:
                continue
            values[key] = entry.value
            sources[key] = source
        return values, sources

    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replication_factor: int | None = None,
    ) -> TopicInfo:
        self._check_open()
        check_name(name)
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise InvalidRequest(f"{self._where}: topic {name!r}: partitions must be an int >= 1")
        config = dict(config or {})
        for key, value in config.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidRequest(f"{self._where}: topic {name!r}: config keys and values must be str")
        if replication_factor is not None and (not isinstance(replication_factor, int) or replication_factor < 1):
            raise InvalidRequest(f"{self._where}: topic {name!r}: the replication factor must be an int >= 1")
        new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor or -1, config=config)
        try:
            futures = self._admin.create_topics([new], operation_timeout=self._timeout, request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, f"creating topic {name!r}") from None
        try:
            await self._wait(futures[name], f"creating topic {name!r}")
        except InvalidRequest as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc):
                raise InvalidRequest(f"{self._where}: topic {name!r} already exists") from None
            raise
        except AccessDenied as exc:
            raise _named(exc, self._where, f"Create topic {name!r}") from None
        await self._await_topic(name, present=True)
        return await self.describe_topic(name)

    async def delete_topic(self, name: str) -> None:
        self._check_open()
        check_name(name)
        try:
            futures = self._admin.delete_topics([name], operation_timeout=self._timeout, request_timeout=self._timeout)
        except KafkaException as exc:
            raise self._error(exc, f"deleting topic {name!r}") from None
        try:
            await self._wait(futures[name], f"deleting topic {name!r}")
        except NotFound:
            raise NotFound(f"{self._where}: topic {name!r} does not exist") from None
        except AccessDenied as exc:
            raise _named(exc, self._where, f"Delete topic {name!r}") from None
        self._partition_counts.pop(name, None)
        await self._await_topic(name, present=False)

    async def _await_topic(self, name: str, *, present: bool) -> None:
        """Wait (bounded by timeout_s) until metadata shows the topic with leaders, or not at all."""
        deadline = time.monotonic() + self._timeout
        delay = 0.02
        while True:
            try:
                described = await self._describe_topics([name])
                ready = present and all(tp.leader is not None for tp in described[name].partitions)
            except NotFound:
                ready = not present
            if ready:
                return
            if time.monotonic() >= deadline:
                state = "appear" if present else "disappear"
                raise Timeout(f"{self._where}: topic {name!r} did not {state} in metadata within {self._timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def operations_of(desc: Any) -> frozenset[str] | None:
    """``TopicInfo.operations`` from a TopicDescription: Kafka's ACL operation names, lower-case;
    None when the broker did not say."""
    found = getattr(desc, "authorized_operations", None)
    if found is None:
        return None
    return frozenset(str(getattr(op, "name", op)).lower() for op in found)


def _named(exc: AccessDenied, where: str, denied: str) -> AccessDenied:
    """An ACL refusal with the operation named; other refusals (authentication) as they are."""
    return not_authorized(where, denied) if "not authorized" in str(exc) else exc
