"""One event as one line of the stream view: fixed columns, terminal-safe, as rich ``Text``.

No Textual here. Every piece of an event (key, type, correlation id, value) goes through
:func:`workbench.codecs.safe_text` / :func:`~workbench.codecs.preview` and into ``Text`` spans,
never into a markup string, so escape sequences and Rich markup in payloads stay inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from workbench.broker import Event
from workbench.events import codecs
from workbench.events.correlation import DEFAULT_RULES
from workbench.events.envelope import format_timestamp

#: Values larger than this are not decoded to find a structured CloudEvent or a correlation id in
#: them (a row must cost the same for a 5 MB value as for a small one).
DECODE_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    style: str


NARROW = (
    Column("TIME (UTC)", 12, "dim"),
    Column("P/OFFSET", 9, "cyan"),
    Column("KEY", 12, "green"),
    Column("TYPE", 18, "magenta"),
    Column("CORR ID", 10, "yellow"),
)
#: From this width on the key, type and correlation id get more room (a whole UUID).
WIDE_FROM = 150
WIDE = (
    Column("TIME (UTC)", 12, "dim"),
    Column("P/OFFSET", 10, "cyan"),
    Column("KEY", 16, "green"),
    Column("TYPE", 22, "magenta"),
    Column("CORRELATION", 36, "yellow"),
)
VALUE_MIN = 20  # the value column gets what is left, at least this much
#: Bytes of a value looked at per cell of its column: room for UTF-8 and pretty-printed JSON.
PREVIEW_BYTES_PER_CELL = 4
GAP = " "


def columns(width: int) -> tuple[Column, ...]:
    return WIDE if width >= WIDE_FROM else NARROW


@dataclass(frozen=True, slots=True)
class RowCells:
    """The shown text of each column (already terminal-safe), before fitting into widths."""

    time: str
    position: str
    key: str
    type: str
    correlation: str


def cells(event: Event) -> RowCells:
    """The short columns of one event."""
    shown_time = format_timestamp(event.timestamp)
    clock = shown_time[11:23] if isinstance(shown_time, str) else ("-" if shown_time is None else str(shown_time))
    key = "-" if event.key is None else codecs.preview_of(event.metadata.get("decoded_key"), event.key, 40)
    # Headers first: most events say their type and correlation id there, and then the value
    # need not be decoded at all (that is what keeps a fast stream cheap to show).
    ce_type = codecs.cloudevent_attributes(event.headers).get("type") if event.headers else None
    correlation = DEFAULT_RULES.correlation_id(event, _NOT_DECODED) if event.headers else None
    if ce_type is None or correlation is None:
        decoded = _decoded(event)
        if decoded is not None:
            if ce_type is None and decoded.kind == "json":
                ce_type = codecs.cloudevent_attributes(event.headers, decoded.value).get("type")
            if correlation is None:
                correlation = DEFAULT_RULES.correlation_id(event, decoded)
    return RowCells(
        time=clock,
        position=f"{event.partition}/{event.offset}",
        key=key,
        type=codecs.safe_text(ce_type[:200]) if ce_type else "-",
        correlation=codecs.safe_text(correlation[:200]) if correlation else "-",
    )


#: Stands for "not decoded" so that correlation_id() looks at the headers only.
_NOT_DECODED = codecs.Decoded("text", None)


def _decoded(event: Event) -> codecs.Decoded | None:
    """The decoded value when it is a small JSON object (structured CloudEvents, correlation ids), or
    what a schema decoded."""
    if (schema_decoded := event.metadata.get("decoded_value")) is not None:
        return schema_decoded
    value = event.value
    if not value or len(value) > DECODE_LIMIT or value.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    return codecs.decode(value)


def row_width(width: int) -> int:
    return max(width, sum(c.width + len(GAP) for c in columns(width)) + VALUE_MIN)


def value_width(width: int) -> int:
    fixed = sum(c.width + len(GAP) for c in columns(width))
    return max(width - fixed, VALUE_MIN)


# Characters that certainly take one cell: printable ASCII, Latin-1 and Latin Extended, Greek,
# Cyrillic, general punctuation (… · – —), box drawing. Text of only these needs no cell counting.
_ONE_CELL = re.compile("[\u0020-\u007e\u00a0-\u02ff\u0370-\u0482\u2010-\u2027\u2500-\u257f]*")


def fit(text: str, width: int) -> str:
    """``text`` padded or cut (with an ellipsis) to exactly ``width`` terminal cells."""
    if width <= 0:
        return ""
    if text.isascii() or _ONE_CELL.fullmatch(text):  # one cell per character: the common case, fast
        if len(text) <= width:
            return text + " " * (width - len(text))
        return text[: width - 1] + "…"
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


@lru_cache(maxsize=64)
def _styles(base: Style, wide: bool) -> tuple[Style, ...]:
    chosen = WIDE if wide else NARROW
    return (*(base + Style.parse(c.style) for c in chosen), base)


def event_segments(event: Event, width: int, base: Style) -> list[Segment]:
    """The line for ``event`` in a view ``width`` cells wide, as styled segments of exactly
    :func:`row_width` cells (more than ``width`` when the view is narrower than the fixed columns)."""
    c = cells(event)
    chosen = columns(width)
    styles = _styles(base, chosen is WIDE)
    out = []
    for column, style, shown in zip(chosen, styles, (c.time, c.position, c.key, c.type, c.correlation), strict=False):
        out.append(Segment(fit(shown, column.width) + GAP, style))
    room = value_width(width)
    shown = value_preview(event.value, room, event.metadata.get("decoded_value"))
    out.append(Segment(fit(shown, room), styles[-1]))
    return out


def event_row(event: Event, width: int, base: Style | None = None) -> Text:
    """The same line as rich ``Text``."""
    text = Text(no_wrap=True, end="")
    for segment in event_segments(event, width, base or Style()):
        text.append(segment.text, segment.style)
    return text


def value_preview(value: bytes | None, room: int, decoded: codecs.Decoded | None = None) -> str:
    """:func:`codecs.preview` fitted into ``room`` characters, keeping its ``… (size)`` suffix when
    there is room for it (else the caller cuts it with an ellipsis). Only the first few times
    ``room`` bytes are looked at: a screenful of rows is built many times a second. ``decoded``: what
    a schema decoded (shown instead of the bytes)."""
    shown = codecs.preview_of(decoded, value, room, window=room * PREVIEW_BYTES_PER_CELL + 64)
    if len(shown) > room >= 40:
        body, mark, size = shown.rpartition("… (")
        if mark:
            tail = mark + size
            shown = body[: room - len(tail)] + tail
    return shown


def header_row(width: int) -> Text:
    titles = "".join(fit(column.title, column.width) + GAP for column in columns(width))
    return Text(titles + fit("VALUE", value_width(width)), style="bold", no_wrap=True, end="")
