"""The audit log: every compensation attempt (refused or failed ones too), one JSON record a line.

Append-only JSONL in the user data directory, or where ``[sagas] audit_log = "PATH"`` says; the
records are written by :func:`workbench.sagas.compensation.execute_and_record` and shown by
``workbench saga history`` and the TUI's saga view. Redrives of dead letters (``workbench replay
--to-origin --execute``) are recorded in the same log with ``"kind": "redrive"``
(:data:`REDRIVE`); records without a kind are compensations.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

AUDIT_NAME = "saga-audit.jsonl"
COMPENSATION = "compensation"  # the kind of a record that names none
REDRIVE = "redrive"


def default_audit_path() -> Path:
    from platformdirs import user_data_path

    from workbench.config import APP_NAME

    return user_data_path(APP_NAME, ensure_exists=True) / AUDIT_NAME


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (getpass raises several kinds)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class AuditLog:
    """Append-only JSONL: one record per execution attempt, written in one ``write`` and synced."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_audit_path()

    def append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self, correlation_id: str | None = None, *, kind: str | None = COMPENSATION) -> list[dict[str, Any]]:
        """The records (of one correlation id; of one ``kind``, every kind when None), oldest first;
        a damaged line is reported, not skipped."""
        if not self.path.exists():
            return []
        from workbench.errors import BadInput

        found = []
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadInput(
                        f"{self.path}:{n}: not a JSON record ({exc.msg})",
                        hint="the audit log is append-only JSONL; repair or move that line",
                    ) from None
                if kind is not None and record.get("kind", COMPENSATION) != kind:
                    continue
                if correlation_id is None or record.get("correlation_id") == correlation_id:
                    found.append(record)
        return found


__all__ = ["AUDIT_NAME", "COMPENSATION", "REDRIVE", "AuditLog", "default_audit_path", "who"]
