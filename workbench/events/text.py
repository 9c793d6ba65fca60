"""Terminal-safe text: the one place that makes event data (or any text from outside) safe to show.

:func:`safe_text` never returns control, bidi or other invisible format characters, so an event
payload cannot move the cursor, recolour the terminal or reorder what is displayed. Rich *markup*
is a separate concern: :func:`safe` puts the escaped text into a ``rich.text.Text`` (never into a
markup string), which is how the CLI and the TUI show it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from rich.text import Text

__all__ = ["safe", "safe_text", "truncate_escaped"]

# Characters that are certainly unsafe: C0/C1 controls, DEL, soft hyphen, the Arabic letter mark,
# zero-width and bidi marks/embeddings/overrides/isolates, line/paragraph separators, invisible
# operators, BOM, interlinear annotations, surrogates. Anything else that str.isprintable() rejects
# (other format characters, unassigned and private-use code points) is caught by the slow path.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _is_safe_char(ch: str) -> bool:
    # isprintable() is False for categories C* and Z* except the ASCII space; keep the other
    # spaces (Zs: no-break space, ideographic space ...), which are harmless on one line.
    return ch.isprintable() or unicodedata.category(ch) == "Zs"


def _escaped_pieces(text: str) -> Iterable[tuple[str, bool]]:
    """The text as ``(piece, is_escape)`` pairs; each escape is a piece of its own."""
    pos = 0
    for match in _UNSAFE.finditer(text):
        if match.start() > pos:
            yield from _split_slow(text[pos : match.start()])
        yield _escape_char(match.group()), True
        pos = match.end()
    if pos < len(text):
        yield from _split_slow(text[pos:])


def _split_slow(segment: str) -> Iterable[tuple[str, bool]]:
    """Pieces of a segment without _UNSAFE characters (rare others are found char by char)."""
    if segment.isprintable():
        yield segment, False
        return
    start = 0
    for i, ch in enumerate(segment):
        if not _is_safe_char(ch):
            if i > start:
                yield segment[start:i], False
            yield _escape_char(ch), True
            start = i + 1
    if start < len(segment):
        yield segment[start:], False


def safe_text(s: str) -> str:
    """``s`` with every control character (C0, C1, DEL; ``\\n``, ``\\r``, ``\\t`` included),
    bidi/format character (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C, zero-width ...),
    line/paragraph separator, surrogate, private-use and unassigned code point replaced by a
    visible escape (``\\x1b``, ``\\u202e``, ``\\n``). The result is one line and cannot drive a
    terminal. Backslashes are kept as they are. For huge strings, cut them first (cost is linear).
    """
    if s.isprintable():
        return s
    return "".join(piece for piece, _ in _escaped_pieces(s))


def truncate_escaped(text: str, limit: int) -> tuple[str, bool]:
    """Escape ``text`` and cut it to at most ``limit`` characters without splitting an escape."""
    out: list[str] = []
    used = 0
    for piece, is_escape in _escaped_pieces(text):
        room = limit - used
        if len(piece) <= room:
            out.append(piece)
            used += len(piece)
            continue
        if not is_escape:
            out.append(piece[:room])
        return "".join(out), True
    return "".join(out), False


def safe(value: object, style: str = "", *, limit: int | None = None) -> Text:
    """``str(value)`` (cut to ``limit`` characters first, when given) as inert ``Text``: escaped by
    :func:`safe_text`, never parsed as markup."""
    shown = str(value)
    return Text(safe_text(shown if limit is None else shown[:limit]), style=style)
