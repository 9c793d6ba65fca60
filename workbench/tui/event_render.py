"""What the detail screen shows for one event, as rich renderables (no Textual here).

The value is pretty JSON (syntax highlighted), text, or a hex dump for binary; large values are cut
with a note saying so. Every string from the event is made terminal-safe with
:func:`workbench.codecs.safe_text` and put into ``Text``/``Syntax``, never into markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from workbench.broker import Event
from workbench.events import codecs
from workbench.events.correlation import DEFAULT_RULES
from workbench.events.envelope import format_timestamp
from workbench.events.redaction import FILTER_VIEW, ORIGINAL

SHOW_LIMIT = 256 * 1024  # bytes of a value shown as text
JSON_LIMIT = 1024 * 1024  # values larger than this are not parsed and pretty-printed
HEX_LIMIT = 16 * 1024  # bytes of a binary value shown as a hex dump
LINE_LIMIT = 2000  # lines of pretty JSON or text
HEADER_LIMIT = 500  # headers listed (an event with 10,000 headers would take seconds to lay out)


@dataclass(frozen=True, slots=True)
class ValueView:
    kind: str  # json | text | binary | null
    body: RenderableType
    note: str | None = None  # set when the value is shown cut


def event_value_view(event: Event) -> ValueView:
    """The value as :func:`value_view` shows it, schema-decoded where the read boundary decoded it."""
    return value_view(event.value, event.metadata.get("decoded_value"))


def value_view(value: bytes | None, decoded: codecs.Decoded | None = None) -> ValueView:
    if decoded is not None and decoded.schema is not None:
        return _schema_view(value, decoded)
    if value is None:
        return ValueView("null", Text("null (the event has no value)", style="dim"))
    size = len(value)
    if size <= JSON_LIMIT:
        decoded = codecs.decode(value)
        if decoded.kind == "json":
            pretty = json.dumps(decoded.value, indent=2, ensure_ascii=False)
            lines, cut = _limit_lines(pretty.split("\n"))
            code = "\n".join(codecs.safe_text(line) for line in lines)
            note = f"showing {first_lines(LINE_LIMIT)} of {codecs.human_size(size)}" if cut else None
            return ValueView("json", _syntax(code), note)
        if decoded.kind == "binary":
            return _binary(value)
    try:
        text = value[:SHOW_LIMIT].decode("utf-8") if size > SHOW_LIMIT else value.decode("utf-8")
    except UnicodeDecodeError as exc:
        if size > SHOW_LIMIT and exc.start >= SHOW_LIMIT - 3:  # cut inside a character
            text = value[: exc.start].decode("utf-8", "replace")
        else:
            return _binary(value)
    lines, cut = _limit_lines(text.split("\n"))
    body = Text("\n".join(codecs.safe_text(line) for line in lines))
    note = None
    if size > SHOW_LIMIT or cut:
        what = "too large to pretty-print; " if size > JSON_LIMIT and text.lstrip()[:1] in "{[" else ""
        note = f"{what}showing {first_lines(min(len(lines), LINE_LIMIT))} of {codecs.human_size(size)}"
    return ValueView("text", body, note)


def _schema_view(value: bytes | None, decoded: codecs.Decoded) -> ValueView:
    """A value decoded with a schema (pretty JSON, and how it was decoded), or its bytes and why not."""
    info = decoded.schema
    assert info is not None
    if info.error is not None or decoded.kind != "json":
        raw = _binary(value or b"")
        return ValueView("binary", raw.body, f"not decoded: {info.describe()}")
    pretty = json.dumps(decoded.value, indent=2, ensure_ascii=False, default=str)
    lines, cut = _limit_lines(pretty.split("\n"))
    code = "\n".join(codecs.safe_text(line) for line in lines)
    note = f"decoded: {info.describe()}" + (f"; showing {first_lines(LINE_LIMIT)}" if cut else "")
    return ValueView(info.format or "json", _syntax(code), note)


def first_lines(n: int) -> str:
    """ "the first line", "the first 2,000 lines" """
    return "the first line" if n == 1 else f"the first {n:,} lines"


def _limit_lines(lines: list[str]) -> tuple[list[str], bool]:
    return (lines[:LINE_LIMIT], True) if len(lines) > LINE_LIMIT else (lines, False)


def _syntax(code: str) -> RenderableType:
    from rich.syntax import Syntax  # pygments: imported when a JSON value is first shown

    return Syntax(code, "json", theme="ansi_dark", word_wrap=True, background_color="default")


def _binary(value: bytes) -> ValueView:
    shown = value[:HEX_LIMIT]
    note = None
    if len(value) > HEX_LIMIT:
        note = f"binary: showing the first {codecs.human_size(HEX_LIMIT)} of {codecs.human_size(len(value))}"
    return ValueView("binary", Text("\n".join(hexdump(shown))), note)


def hexdump(data: bytes, width: int = 16) -> list[str]:
    """``00000010  1b 5b 33 31 6d 52 45 44  1b 5b 30 6d 20 5b 62 6f  |.[31mRED.[0m [bo|``"""
    out = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        hexes = [f"{b:02x}" for b in chunk] + ["  "] * (width - len(chunk))
        half = width // 2
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        out.append(f"{offset:08x}  {' '.join(hexes[:half])}  {' '.join(hexes[half:])}  |{shown}|")
    return out


# --------------------------------------------------------------------------- envelope


def _table(title: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_header=False,
        box=None,
        padding=(0, 2, 0, 0),
        expand=False,
    )
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _rows(table: Table, rows: Iterable[tuple[str, str]]) -> Table:
    for name, value in rows:
        table.add_row(Text(codecs.safe_text(name)), Text(codecs.safe_text(value)))
    return table


def metadata(event: Event) -> Table:
    """Where the event is, when, its key and size, and what CloudEvents/correlation say."""
    attrs = codecs.cloudevent_attributes(event.headers, _json_object(event))
    rows = [
        ("topic", event.topic),
        ("partition", str(event.partition)),
        ("offset", str(event.offset)),
        (
            "timestamp",
            f"{format_timestamp(event.timestamp) or '-'}"
            + ("" if event.timestamp is None else f"  ({event.timestamp} ms)"),
        ),
        ("key", "null" if event.key is None else codecs.preview_of(event.metadata.get("decoded_key"), event.key, 200)),
        ("value size", "null" if event.value is None else codecs.human_size(len(event.value))),
    ]
    for part in ("value", "key"):
        decoded = event.metadata.get(f"decoded_{part}")
        if decoded is not None and decoded.schema is not None:
            rows.append((f"{part} schema", decoded.schema.describe()[:500]))
    for name in ("type", "source", "id", "subject", "time"):
        if attrs.get(name):
            rows.append((f"ce {name}", attrs[name][:500]))
    correlation = DEFAULT_RULES.correlation_id(event)
    if correlation:
        rows.append(("correlation id", correlation[:500]))
    if attrs.get("trace_id"):
        rows.append(("trace id", attrs["trace_id"]))
    rows.extend((f"meta {k}", str(v)[:500]) for k, v in event.metadata.items() if _shown_meta(k))
    return _rows(_table("Event"), rows)


def _shown_meta(name: str) -> bool:
    """Not the decoded key and value (shown above), nor what redaction keeps beside a redacted
    event: its original and its filter view hold the values the [mask] rules hide."""
    return not name.startswith("decoded_") and name not in (ORIGINAL, FILTER_VIEW)


def headers(event: Event) -> Table | Text:
    """The first :data:`HEADER_LIMIT` headers, and how many more there are."""
    if not event.headers:
        return Text("no headers", style="dim")
    shown = event.headers[:HEADER_LIMIT]
    table = _rows(
        _table(f"Headers ({len(event.headers):,})"), ((name[:200], codecs.preview(value, 300)) for name, value in shown)
    )
    if len(event.headers) > len(shown):
        table.add_row(
            Text("…", style="dim"),
            Text(
                f"{len(event.headers) - len(shown):,} more headers not shown (tail -o jsonl has them all)",
                style="dim italic",
            ),
        )
    return table


def _json_object(event: Event) -> object:
    schema_decoded = event.metadata.get("decoded_value")
    if schema_decoded is not None:
        return schema_decoded.value if schema_decoded.kind == "json" else None
    value = event.value
    if not value or len(value) > JSON_LIMIT or value.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    decoded = codecs.decode(value)
    return decoded.value if decoded.kind == "json" else None
