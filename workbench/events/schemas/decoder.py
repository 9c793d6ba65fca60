"""Decode an event's key and value with schemas, once, at the read boundary.

A key or value that starts with the wire format's magic byte and a schema id is decoded with that
schema (from the registry, or from schemas a capture file carries); a topic mapped to a local schema
file is decoded with it. The result rides on the event as ``metadata["decoded_value"]`` /
``["decoded_key"]`` (a :class:`~workbench.events.codecs.Decoded` with its ``schema``), so every read
path (table, TUI, filters, correlation, trace, sagas) sees it while the bytes stay exact.

A schema that cannot be had (registry down, slow, id unknown) or a payload that does not decode never
stops a read: the event keeps its bytes and its ``schema.error`` says why, naming the registry by a URL
without secrets. A failed lookup is retried after :data:`RETRY_AFTER_S`, not once per event; a registry
that does not answer at all is not asked for other ids either until then (so a slow registry costs one
timeout per :data:`RETRY_AFTER_S`, not one per schema id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.broker import BrokerError, Event, Timeout, Unreachable
from workbench.events.codecs import Decoded, SchemaInfo
from workbench.events.schemas import wire
from workbench.events.schemas.files import FileRule
from workbench.events.schemas.formats import Codec, ProtobufCodec, SchemaError, parse
from workbench.events.schemas.registry import Registered, Registry

RETRY_AFTER_S = 10.0


class _Failed:
    """A schema id that could not be had, and until when not to ask again."""

    __slots__ = ("reason", "until")

    def __init__(self, reason: str, until: float) -> None:
        self.reason = reason
        self.until = until


#: Batches smaller than this are decoded on the event loop (a thread hop costs more than they do).
INLINE_BATCH = 256


class SchemaDecoder:
    """Schemas by id (registry, or ``stored`` ones from a capture) and by topic (local files)."""

    def __init__(
        self,
        registry: Registry | None = None,
        files: Sequence[FileRule] = (),
        stored: Mapping[int, Registered] | None = None,
    ) -> None:
        self.registry = registry
        self.files = tuple(files)
        self._stored = dict(stored or {})
        self._lock = threading.Lock()
        self._by_id: dict[int, tuple[Registered, Codec] | _Failed] = {}
        self._by_topic: dict[tuple[str, str], tuple[FileRule, Codec, list[int] | None] | None] = {}
        #: The registered schemas this process decoded with (a capture stores them).
        self.used: dict[int, Registered] = {}
        #: The registry did not answer (down or slow): no other id is asked for until then.
        self._outage: _Failed | None = None

    @property
    def active(self) -> bool:
        """Whether any schema source is configured (else events pass through untouched)."""
        return bool(self.registry or self.files or self._stored)

    # ----------------------------------------------------------------- batches

    async def decode_batch(self, events: list[Event]) -> list[Event]:
        """The batch with keys and values decoded; unknown schema ids are fetched first (in a thread)."""
        missing = {sid for e in events for sid in self._ids(e) if self._needs(sid)}
        for schema_id in missing:
            await asyncio.to_thread(self._load, schema_id)
        for event in events:
            if event.topic and self.files:
                for part in ("value", "key"):
                    if (event.topic, part) not in self._by_topic:
                        await asyncio.to_thread(self._rule_for, event.topic, part)
        if len(events) < INLINE_BATCH:
            return [self.decode_event(e) for e in events]
        # a big batch in a thread: the event loop (the TUI's painting, its keys) goes on meanwhile
        return await asyncio.to_thread(lambda: [self.decode_event(e) for e in events])

    def decode_event(self, event: Event) -> Event:
        """The event with what its schemas decode (synchronous: schemas must be loaded already)."""
        value = self._decode(event.topic, event.value, "value")
        key = self._decode(event.topic, event.key, "key")
        if value is None and key is None:
            return event
        extra: dict[str, Any] = dict(event.metadata)
        if value is not None:
            extra["decoded_value"] = value
        if key is not None:
            extra["decoded_key"] = key
        return dataclasses.replace(event, metadata=extra)

    # ----------------------------------------------------------------- one key or value

    def _decode(self, topic: str, data: bytes | None, part: str) -> Decoded | None:
        if data is None:
            return None
        if self.files:
            rule = self._by_topic.get((topic, part))
            if rule is not None:
                return _decode_with_file(rule, data)
        framed = wire.split(data)
        if framed is None:
            return None
        schema_id, payload = framed
        entry = self._by_id.get(schema_id)
        if entry is None:
            if not (self.registry or self._stored):
                return None
            return Decoded("binary", data, SchemaInfo(None, id=schema_id, error="schema not loaded"))
        if isinstance(entry, _Failed):
            return Decoded("binary", data, SchemaInfo(None, id=schema_id, error=entry.reason))
        registered, codec = entry
        info = SchemaInfo(codec.format, id=schema_id, subject=registered.subject, version=registered.version)
        try:
            indexes = None
            if isinstance(codec, ProtobufCodec):
                indexes, payload = wire.decode_indexes(payload)
            value, message = codec.decode(payload, indexes)
        except (SchemaError, wire.WireError) as exc:
            return Decoded("binary", data, dataclasses.replace(info, error=str(exc)))
        return Decoded("json", value, dataclasses.replace(info, message=message) if message else info)

    # ----------------------------------------------------------------- loading

    def _ids(self, event: Event) -> list[int]:
        ids = []
        for data in (event.value, event.key):
            framed = wire.split(data)
            if framed is not None:
                ids.append(framed[0])
        return ids

    def _needs(self, schema_id: int) -> bool:
        entry = self._by_id.get(schema_id)
        if entry is None:
            return bool(self.registry or schema_id in self._stored)
        return isinstance(entry, _Failed) and entry.until <= time.monotonic() and self.registry is not None

    def _load(self, schema_id: int) -> None:
        with self._lock:
            if not self._needs(schema_id):
                return
            outage = self._outage
            if outage is not None and outage.until > time.monotonic() and schema_id not in self._stored:
                # a registry that is down or slow is not waited for once per schema id
                self._by_id[schema_id] = _Failed(f"schema id {schema_id} not fetched: {outage.reason}", outage.until)
                return
            try:
                registered = self._stored.get(schema_id)
                if registered is None:
                    assert self.registry is not None
                    registered = self.registry.by_id(schema_id)
                codec = parse(registered.schema, name=f"schema-{schema_id}")
            except BrokerError as exc:
                failed = _Failed(str(exc), time.monotonic() + RETRY_AFTER_S)
                self._by_id[schema_id] = failed
                if isinstance(exc, (Unreachable, Timeout)):
                    self._outage = failed
                return
            except SchemaError as exc:
                self._by_id[schema_id] = _Failed(f"schema id {schema_id}: {exc}", float("inf"))
                return
            self._by_id[schema_id] = (registered, codec)
            self.used[schema_id] = registered

    def _rule_for(self, topic: str, part: str) -> None:
        """Load the file rule of a topic (the first that matches); a file that fails is an error for
        every event of the topic, said once per event as for registry schemas."""
        with self._lock:
            if (topic, part) in self._by_topic:
                return
            for rule in self.files:
                if rule.matches(topic, part):
                    try:
                        codec, indexes = rule.load()
                    except Exception as exc:  # noqa: BLE001 - a broken file is shown on each event, not raised
                        self._by_topic[(topic, part)] = (rule, _Broken(str(exc)), None)
                        return
                    self._by_topic[(topic, part)] = (rule, codec, indexes)
                    return
            self._by_topic[(topic, part)] = None


class _Broken(Codec):
    """A local schema file that could not be loaded: every decode says why."""

    format = "avro"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def decode(self, payload: bytes | memoryview, indexes: list[int] | None = None) -> tuple[Any, str | None]:
        raise SchemaError(self.reason)


def _decode_with_file(rule: tuple[FileRule, Codec, list[int] | None], data: bytes) -> Decoded:
    file_rule, codec, indexes = rule
    info = SchemaInfo(None if isinstance(codec, _Broken) else codec.format, file=str(file_rule.file))
    try:
        value, message = codec.decode(data, indexes)
    except SchemaError as exc:
        return Decoded("binary", data, dataclasses.replace(info, error=str(exc)))
    return Decoded("json", value, dataclasses.replace(info, message=message) if message else info)
