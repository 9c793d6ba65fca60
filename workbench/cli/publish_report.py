"""What publish (and replay) print: confirmed, failed and not sent, the rate, where events landed; -o json."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring
from typing import Any

from workbench.broker import (
    AccessDenied,
    NotFound,
    PublishResult,
)
from workbench.cli import output
from workbench.errors import PublishFailed
from workbench.publishing import (
    Batch,
)

#: ``(lineno, line) -> event``, None for a blank line; BadInput names the line


def position_dict(result: PublishResult) -> dict[str, int]:
    """Where a confirmed event landed, as far as the broker says (RabbitMQ confirms carry no offset)."""
    return {
        name: value for name, value in (("partition", result.partition), ("offset", result.offset)) if value is not None
    }


def _position_text(result: PublishResult | None) -> str:
    where = ", ".join(f"{name} {value}" for name, value in position_dict(result).items()) if result else ""
    return f" at {where}" if where else ""


class Placed:
    """``-o json``'s ``events``: the origin and position of each confirmed event, written aside (to a
    temporary file) as the batches are confirmed, as the JSON text they take in the document."""

    def __init__(self, fmt: output.Format) -> None:
        self.indented = fmt == "json"
        self.count = 0
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="workbench-placed-")  # noqa: SIM115

    def add(self, batch: Batch, results: Sequence[PublishResult]) -> None:
        self.extend((batch.origin(r.index), r) for r in results if r.error is None)

    def extend(self, placed: Iterable[tuple[str, PublishResult]]) -> None:
        items = []
        for origin, result in placed:
            fields = [f'"origin": {encode_basestring(origin)}']
            fields += [f'"{name}": {value}' for name, value in position_dict(result).items()]
            if self.indented:
                items.append("    {\n      " + ",\n      ".join(fields) + "\n    }")
            else:
                items.append("{" + ", ".join(fields) + "}")
        if items:
            separator = ",\n" if self.indented else ", "
            self.file.write((separator if self.count else "") + separator.join(items))
            self.count += len(items)

    def write_into(self, document: dict[str, Any]) -> None:
        """The document with ``"events": [...]`` last, as ``output.emit_json`` would write it."""
        text = json.dumps(
            {**document, "events": []}, ensure_ascii=False, indent=2 if self.indented else None, default=str
        )
        end = text.rindex('"events": []') + len('"events": [')
        sys.stdout.write(text[:end])
        if self.count:
            self.file.seek(0)
            if self.indented:
                sys.stdout.write("\n")
            while chunk := self.file.read(1 << 20):
                sys.stdout.write(chunk)
            if self.indented:
                sys.stdout.write("\n  ")
        sys.stdout.write(text[end:] + "\n")
        sys.stdout.flush()
        self.file.close()


def report_publish(
    topic: str,
    report: Any,
    fmt: output.Format,
    placed: Placed | Iterable[tuple[str, PublishResult]] | None = None,
) -> Exception | None:
    """Print what was confirmed and what failed; the error to exit with, if any event was not confirmed.

    ``placed``: the confirmed events' origins and results, listed in machine output.
    When nothing was confirmed because the topic does not exist, that NotFound is the error (exit 5);
    when the topic refused every event with one AccessDenied (no Write permission), that is (exit 6).
    """
    failed = len(report.failures)
    if fmt == "table":
        where = _position_text(report.first) if report.total == 1 else ""
        speed = (
            f" in {report.seconds:.2f} s ({report.confirmed / max(report.seconds, 1e-6):,.0f} events/s)"
            if report.total >= 1000
            else ""
        )
        skipped = f", {report.skipped:,} skipped (confirmed before, per the journal)" if report.skipped else ""
        output.stdout.print(
            output.safe(
                f"{report.confirmed:,} confirmed, {failed:,} failed, {report.unsent:,} not sent{skipped} -> {topic}{where}{speed}"
            )
        )
    else:
        document: dict[str, Any] = {
            "topic": topic,
            "confirmed": report.confirmed,
            "failed": failed,
            "not_sent": report.unsent,
            "skipped": report.skipped,
            "seconds": round(report.seconds, 3),
            "failures": [
                {"origin": f.origin, "error": type(f.error).__name__, "message": str(f.error)} for f in report.failures
            ],
        }
        if placed is None:
            output.emit_json(document, fmt)
        else:
            if not isinstance(placed, Placed):
                listed, placed = placed, Placed(fmt)
                placed.extend(listed)
            placed.write_into(document)
    refused = report.failures[0].error if report.failures else None
    if not report.confirmed and isinstance(refused, AccessDenied) and all(f.error is refused for f in report.failures):
        return refused  # the topic refused as a whole (e.g. no Write permission): said once, exit 6
    for f in report.failures[:20]:
        output.stderr.print(output.safe(f"{f.origin}: {type(f.error).__name__}: {f.error}", "red"))
    if failed > 20:
        output.stderr.print(f"... and {failed - 20:,} more failures")
    if not report.confirmed and report.failures and all(isinstance(f.error, NotFound) for f in report.failures):
        return report.failures[0].error  # e.g. the topic does not exist: exit 5, like every not found
    if failed or report.unsent:
        return PublishFailed(f"{failed + report.unsent:,} of {report.total:,} event(s) were not confirmed")
    return None
