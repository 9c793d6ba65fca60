"""The publish journal: which input lines a broker confirmed, so a re-run sends only the rest.

``publish --file F --journal J`` appends the line numbers of F that the broker confirmed to J as
each batch is confirmed (written and flushed to disk before the next batch goes out). A re-run
with the same J and the same input skips those lines: after a broker outage, running the same
command again completes the publish without sending twice what was confirmed.

What it does not cover: an event sent but not confirmed (in flight when the broker went away)
may still have been written by the broker; a re-run sends it again. And a process killed
between a broker's confirm and the journal write re-sends that batch. See the README's
"Publish guarantees".

Format (text, one record a line): a JSON header naming the destination and the input's digest,
then ``c RANGES`` lines (``c 1-500,502,504-900``). A torn last line (the process was killed while
writing it) is ignored: those lines count as not confirmed.

The confirmed lines are kept as ranges (:class:`LineSet`), not one number each: a journal of
millions of lines takes a few entries of memory.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Set
from pathlib import Path
from typing import IO, Any

from workbench.errors import BadInput

FORMAT = 1


def input_digest(data: bytes, *shaping: Any) -> str:
    """sha256 of the input bytes and of the options that shape its events (key, headers, raw ...)."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps(shaping, default=str).encode())
    return digest.hexdigest()


def input_digest_of(stream: IO[bytes], *shaping: Any) -> str:
    """:func:`input_digest` of what ``stream`` holds from its current position, read in chunks."""
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    digest.update(json.dumps(shaping, default=str).encode())
    return digest.hexdigest()


class LineSet(Set[int]):
    """Line numbers as sorted, disjoint ranges: memory grows with the gaps, not with the lines."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # inclusive
        self.update(numbers)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        i = bisect.bisect_right(self._starts, number) - 1
        return i >= 0 and number <= self._ends[i]

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield from range(start, end + 1)

    def __len__(self) -> int:
        return sum(end - start + 1 for start, end in zip(self._starts, self._ends, strict=True))

    def __repr__(self) -> str:
        return f"LineSet({_format_ranges(list(self)) if self._starts else ''})"

    def update(self, numbers: Iterable[int]) -> None:
        """Add numbers; runs of consecutive ones (a batch's confirmed lines) are added as one range."""
        first = last = None
        for n in numbers:
            if last is not None and n == last + 1:
                last = n
                continue
            if first is not None and last is not None:
                self.add_range(first, last)
            first = last = n
        if first is not None and last is not None:
            self.add_range(first, last)

    def add_range(self, first: int, last: int) -> None:
        starts, ends = self._starts, self._ends
        if starts and first > ends[-1] + 1:  # after everything: the usual case
            starts.append(first)
            ends.append(last)
            return
        if starts and first >= starts[-1]:  # touches or overlaps the last range
            ends[-1] = max(ends[-1], last)
            return
        lo = bisect.bisect_left(ends, first - 1)  # the first range that ends at or after first-1
        hi = bisect.bisect_right(starts, last + 1)  # the ranges that start at or before last+1
        if lo < hi:  # overlapping or adjacent ranges merge into one
            first, last = min(first, starts[lo]), max(last, ends[hi - 1])
        starts[lo:hi] = [first]
        ends[lo:hi] = [last]


class Journal:
    """An open journal: ``confirmed`` (line numbers) and ``record()`` for new confirms."""

    def __init__(self, path: Path, header: dict[str, Any], confirmed: LineSet) -> None:
        self.path = path
        self.header = header
        self.confirmed = confirmed
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    @classmethod
    def open(cls, path: str | Path, *, topic: str, broker: str, digest: str, lines: int) -> Journal:
        """Create the journal, or load it and check that it is for this topic, broker and input."""
        path = Path(path)
        header = {
            "event_workbench_journal": FORMAT,
            "topic": topic,
            "broker": broker,
            "input_sha256": digest,
            "lines": lines,
        }
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"journal {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
        if not text.strip():
            try:
                path.write_text(json.dumps(header) + "\n", encoding="utf-8")
            except OSError as exc:
                raise BadInput(f"journal {path}: cannot write it: {exc.strerror or exc}") from None
            return cls(path, header, LineSet())
        first, *records = text.split("\n")
        try:
            found = json.loads(first)
            if not isinstance(found, dict) or found.get("event_workbench_journal") != FORMAT:
                raise ValueError
        except ValueError:
            raise BadInput(f"journal {path}:1: not a publish journal of this version") from None
        for name in ("topic", "broker", "input_sha256"):
            if found.get(name) != header[name]:
                shown = {"input_sha256": "input (file content or --key/--header/--raw/--tombstones)"}.get(name, name)
                raise BadInput(
                    f"journal {path}: it was written for another {shown}: {found.get(name)!r}",
                    hint="use a new journal for a different input or destination",
                )
        confirmed = LineSet()
        complete = text.endswith("\n")
        for number, record in enumerate(records, start=2):
            if not record or (number == len(records) + 1 and not complete):
                continue  # the empty tail, or a torn last line
            try:
                for low, high in _parse_ranges(record):
                    confirmed.add_range(low, high)
            except ValueError:
                raise BadInput(f"journal {path}:{number}: malformed record {record[:60]!r}") from None
        if not complete:  # cut the torn line away, or the next record would be glued onto it
            try:
                with open(path, "r+b") as f:
                    f.truncate(len(text[: text.rfind("\n") + 1].encode("utf-8")))
            except OSError as exc:
                raise BadInput(f"journal {path}: cannot write it: {exc.strerror or exc}") from None
        return cls(path, header, confirmed)

    def record(self, linenos: Iterable[int]) -> None:
        """Append confirmed line numbers and push them to disk before anything else is sent."""
        confirmed = self.confirmed
        new = sorted(n for n in set(linenos) if n not in confirmed)
        if not new:
            return
        confirmed.update(new)
        self._file.write(f"c {_format_ranges(new)}\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _format_ranges(numbers: list[int]) -> str:
    """Sorted numbers as ``1-3,5,7-9``."""
    parts = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = n
        prev = n
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def _parse_ranges(record: str) -> list[tuple[int, int]]:
    kind, _, ranges = record.partition(" ")
    if kind != "c" or not ranges:
        raise ValueError(record)
    found = []
    for part in ranges.split(","):
        low, dash, high = part.partition("-")
        first, last = int(low), int(high) if dash else int(low)
        if first < 1 or last < first:
            raise ValueError(part)
        found.append((first, last))
    return found
