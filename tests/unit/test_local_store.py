"""The local store's own edge cases that the conformance suite cannot reach through the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.broker import Event, Position
from workbench_local.store import Store


def _event(offset: int, ts: int) -> Event:
    return Event("t", 0, offset, ts, None, f"v{offset}".encode())


@pytest.mark.parametrize(("ts", "first"), [(50, 0), (100, 0), (150, 5), (200, 5), (201, 10), (300, 10), (301, None)])
def test_time_position_in_a_capture_with_offset_gaps(tmp_path: Path, ts: int, first: int | None) -> None:
    """A capture keeps the source's offsets, gaps included (compaction, transaction markers)."""
    store = Store(str(tmp_path / "cap.db"), busy_timeout_ms=1000)
    store.open()
    store.restore("t", 1, [_event(0, 100), _event(5, 200), _event(10, 300)], starts=None, ends={0: 12})
    cursor = store.open_cursor("t", Position.at_time(ts), None, False, 100)
    events = store.next_batch(cursor) or []
    assert [e.offset for e in events][:1] == ([] if first is None else [first])
