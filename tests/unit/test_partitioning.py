"""The partitioners a key search computes with (checked against real clients in
tests/integration/test_key_partitioning.py) and the search plan it reads."""

from __future__ import annotations

import zlib

import pytest

from workbench.broker import Event
from workbench.partitioning import murmur2, partition_for, plan_key_search


@pytest.mark.parametrize(
    ("data", "expected"),
    [  # Kafka's own vectors (UtilsTest.testMurmur2)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_is_kafkas(data, expected):
    assert murmur2(data) == expected


def test_partitions_by_each_hash():
    assert partition_for(b"foobar", 12, "murmur2") == (-790332482 & 0x7FFFFFFF) % 12
    assert partition_for(b"foobar", 12, "crc32") == zlib.crc32(b"foobar") % 12
    assert partition_for(b"", 12, "crc32") is None  # consistent_random: an empty key goes anywhere
    with pytest.raises(ValueError):
        partition_for(b"k", 0, "crc32")


def test_the_default_search_reads_the_partition_of_each_hash_and_says_so():
    key = b"order-42"
    plan = plan_key_search(key, 12)
    assert plan.partitions == tuple(sorted({partition_for(key, 12, "murmur2"), partition_for(key, 12, "crc32")}))
    assert "murmur2 -> " in plan.explain() and "crc32 -> " in plan.explain()
    assert "of 12" in plan.explain()


def test_one_partitioner_one_partition_and_the_escape_hatches():
    assert plan_key_search(b"order-42", 12, "crc32").partitions == (partition_for(b"order-42", 12, "crc32"),)
    assert plan_key_search(b"order-42", 12, all_partitions=True).partitions == tuple(range(12))
    assert "--all-partitions" in plan_key_search(b"k", 12, all_partitions=True).explain()
    assert plan_key_search(b"k", 1).partitions == (0,)
    assert plan_key_search(b"", 6).everywhere  # crc32 places it at random
    with pytest.raises(ValueError):
        plan_key_search(b"k", 3, "fnv")


def test_matches_the_exact_key_bytes_and_shows_hostile_keys_inert():
    plan = plan_key_search(b"\x1b[31mred", 4)
    match = plan.matches()
    assert match(Event("t", 0, 0, None, b"\x1b[31mred", None))
    assert not match(Event("t", 0, 0, None, b"\x1b[31mred ", None))
    assert not match(Event("t", 0, 0, None, None, None))
    assert "\x1b" not in plan.explain()
