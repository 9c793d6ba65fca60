"""What the TUI says about redaction (see :mod:`workbench.events.redaction`), in one place: the short
line the events tab and the save dialog show, the detail pane's note, and the refusal of a copy of
an original under ``mask_required``.

The events the app reads are already redacted (``service.connect`` wraps its connection); a
redacted event keeps its original in its metadata where the profile allows copying it.
"""

from __future__ import annotations

from workbench import service
from workbench.broker import Connection, Event
from workbench.config import Profile
from workbench.events import codecs
from workbench.events.redaction import ORIGINAL, REDACTED_HEADER, is_redacted


def summary(conn: Connection | None) -> str | None:
    """``redacted by [mask] (4 rules)`` when the connection's reads are redacted, else None."""
    redactor = service.redactor_in(conn) if conn is not None else None
    if redactor is None:
        return None
    count = len(redactor.rules)
    return f"redacted by [mask] ({count} rule{'s' * (count != 1)})"


def refusal(profile: Profile) -> str:
    """Why an original is not copied where the profile requires redaction."""
    return (
        f"profile {codecs.safe_text(profile.name)!r} requires redaction (mask_required = true): "
        "the original value is not copied"
    )


def original(event: Event) -> Event | None:
    """The unredacted event a redacted one keeps (None where it is not kept)."""
    kept = event.metadata.get(ORIGINAL) if event.metadata else None
    return kept if isinstance(kept, Event) else None


def detail_note(event: Event, profile: Profile, copy_key: str) -> str | None:
    """The detail pane's line on a redacted event: what is masked, and whether its original can be
    copied (``copy_key``: the key of copy original in force)."""
    if not is_redacted(event.headers):
        return None
    shown = "redacted by [mask]: shown, copied and saved masked"
    if profile.mask_required:
        return f"{shown} · {refusal(profile)}"
    if original(event) is None:
        return f"{shown} · a stored redacted copy (header {REDACTED_HEADER}): its original is not here"
    return f"{shown} · {copy_key} copies the original value"
