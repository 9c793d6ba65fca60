"""Which partitions a key can be in: the producers' partitioners, so a key search reads only those.

Two partitioners place nearly every keyed event on Kafka:

- ``murmur2``: the Java client's default (``toPositive(murmur2(key)) % partitions``), also
  librdkafka's ``murmur2`` / ``murmur2_random`` (what its docs call Java-compatible);
- ``crc32``: librdkafka's default ``consistent_random`` (``crc32(key) % partitions``; an empty key is
  placed at random), used by every librdkafka-based client (confluent-kafka, the Go and .NET
  clients, kcat) and by the local adapter.

By default a search reads the partitions of both (at most two of N), since the producer of a
topic is rarely known for sure during an incident; ``--partitioner`` narrows it to one. A key
placed otherwise (an explicit partition, a custom partitioner, partitions added since) is found by
reading every partition (``--all-partitions``). Pure: no broker, no I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from workbench.broker import Event

Partitioner = Literal["murmur2", "crc32"]
PARTITIONERS: tuple[Partitioner, ...] = ("murmur2", "crc32")
#: What ``--partitioner`` accepts: one of them, or ``both`` (the default).
CHOICES = (*PARTITIONERS, "both")
PARTITIONER_HELP = (
    "murmur2 (Java clients' default), crc32 (librdkafka's default consistent_random: confluent-kafka, "
    "Go, .NET, kcat), or both (read the partition of each: at most two)"
)

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length & ~3
    for i in range(0, whole, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int, partitioner: Partitioner) -> int | None:
    """The partition a producer with ``partitioner`` puts ``key`` in; None where it picks one at
    random (``crc32`` with an empty key: librdkafka's ``consistent_random``)."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    if partitioner == "murmur2":
        return (murmur2(key) & 0x7FFFFFFF) % partitions
    if partitioner == "crc32":
        return None if not key else zlib.crc32(key) % partitions
    raise ValueError(f"unknown partitioner {partitioner!r}")


@dataclass(frozen=True, slots=True)
class KeySearch:
    """Where to look for a key: the partitions to read, and why (for the user, on stderr)."""

    key: bytes
    partition_count: int
    partitions: tuple[int, ...]  # sorted; every partition when the key can be anywhere
    by: tuple[tuple[str, int | None], ...]  # (partitioner, its partition or None: random)
    all_partitions: bool  # asked for, or no hash can place the key

    @property
    def everywhere(self) -> bool:
        return len(self.partitions) == self.partition_count

    def matches(self, also: Callable[[Event], bool] | None = None) -> Callable[[Event], bool]:
        """A predicate: the event's key is exactly the searched key's bytes (checked first: it is
        cheap), and ``also`` (a filter) holds, if given."""
        key = self.key
        if also is None:
            return lambda event: event.key == key
        return lambda event: event.key == key and also(event)

    def explain(self) -> str:
        """One line: which hash placed the key where, and what is read."""
        shown = _shown_key(self.key)
        if self.partition_count == 1:
            return f"key {shown}: one partition, no hash needed: reading partition 0"
        if not self.by:
            return f"key {shown}: --all-partitions: reading all {self.partition_count} partitions"
        placed = ", ".join(f"{name} -> {'random (an empty key)' if p is None else p}" for name, p in self.by)
        if self.everywhere:
            return f"key {shown}: {placed}: reading all {self.partition_count} partitions"
        listed = ", ".join(map(str, self.partitions))
        word = "partition" if len(self.partitions) == 1 else "partitions"
        return f"key {shown}: {placed}: reading {word} {listed} of {self.partition_count}"


def _random(by: tuple[tuple[str, int | None], ...]) -> bool:
    return any(p is None for _, p in by)


def plan_key_search(
    key: bytes, partition_count: int, partitioner: str = "both", *, all_partitions: bool = False
) -> KeySearch:
    """The partitions that can hold ``key`` for the given partitioner (``both``: either)."""
    if partitioner not in CHOICES:
        raise ValueError(f"unknown partitioner {partitioner!r}: expected one of {', '.join(CHOICES)}")
    every = tuple(range(partition_count))
    if partition_count == 1:
        return KeySearch(key, 1, (0,), (), all_partitions)
    if all_partitions:
        return KeySearch(key, partition_count, every, (), True)
    names: tuple[Partitioner, ...] = PARTITIONERS if partitioner == "both" else (partitioner,)  # type: ignore[assignment]
    by = tuple((name, partition_for(key, partition_count, name)) for name in names)
    if _random(by):
        return KeySearch(key, partition_count, every, by, False)
    return KeySearch(key, partition_count, tuple(sorted({p for _, p in by if p is not None})), by, False)


def _shown_key(key: bytes) -> str:
    """The key for a message: its text (repr-quoted, so control characters stay inert), cut when long."""
    text = key.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 60 else text[:60] + "…")
