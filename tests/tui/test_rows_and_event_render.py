"""The pure formatting behind the stream view and the detail pane (no app needed)."""

from __future__ import annotations

import json

from rich.cells import cell_len
from rich.style import Style
from rich.syntax import Syntax

from workbench.broker import Event
from workbench.events import codecs
from workbench.tui import event_render, rows


def event(value: bytes | None, headers=(), key: bytes | None = b"k") -> Event:
    return Event("t", 1, 42, 1_800_000_000_123, key, value, tuple(headers))


def row_text(e: Event, width: int) -> str:
    return "".join(s.text for s in rows.event_segments(e, width, Style()))


def test_every_row_has_exactly_the_row_width_even_with_wide_characters():
    for value in (b"plain", "日本語のテキスト".encode() * 20, b"\xff\xfe binary", None, b"x" * 5_000_000):
        for width in (40, 90, 120, 200):
            text = row_text(event(value, key="キー".encode()), width)
            assert cell_len(text) == rows.row_width(width), (value[:10] if value else value, width)


def test_structured_cloudevents_give_the_type_and_correlation_id():
    body = {"specversion": "1.0", "type": "OrderPlaced", "source": "/x", "id": "1", "data": {"correlationId": "corr-7"}}
    cells = rows.cells(event(json.dumps(body).encode()))
    assert (cells.type, cells.correlation) == ("OrderPlaced", "corr-7")
    assert cells.time == "08:00:00.123" and cells.position == "1/42"


def test_binary_mode_headers_are_used_without_decoding_the_value():
    headers = [("ce_type", b"PaymentFailed"), ("correlation_id", b"c-1")]
    cells = rows.cells(event(b"not json at all", headers))
    assert (cells.type, cells.correlation) == ("PaymentFailed", "c-1")


def test_a_cut_value_keeps_its_size_when_there_is_room():
    shown = rows.value_preview(b'{"a": "' + b"x" * 10_000 + b'"}', 60)
    assert len(shown) == 60 and shown.endswith("… (10.0 kB)")


def test_a_row_looks_at_a_prefix_of_the_value_only():
    # The first 600 bytes are pretty-printed JSON, then the document breaks: parsed whole it is
    # text (newlines escaped); a row looks at a few times its width and shows it compacted, cut.
    pretty = json.dumps({"orderId": "ORD-1", "lines": [{"sku": f"S{i}", "qty": i} for i in range(40)]}, indent=2)
    value = pretty.encode()[:600] + b"\x00 not json after all " + b"y" * 5000
    shown = rows.value_preview(value, 60)
    assert shown.startswith('{"orderId":"ORD-1","lines":[{"sku":"S0","qty":0}')
    assert shown.endswith(f"… ({len(value) / 1000:.1f} kB)") and len(shown) == 60
    whole = codecs.preview(value, 60)  # the default window takes it all in: not JSON, so text
    assert whole.startswith('{\\n  "orderId"')
    hostile = rows.value_preview(b'{"a": "\x1b[2J[bold]x\xe2\x80\xae"}' + b" " * 1000, 60)
    assert "\x1b" not in hostile and "\u202e" not in hostile and "\\x1b[2J[bold]x\\u202e" in hostile


def test_pretty_json_is_highlighted_and_control_characters_are_escaped():
    view = event_render.value_view(json.dumps({"a": "\u202e\x1b[31m", "b": [1, 2]}).encode())
    assert view.kind == "json" and isinstance(view.body, Syntax) and view.note is None
    code = view.body.code
    assert '"b": [\n    1,' in code and "\x1b" not in code and "\u202e" not in code
    assert "\\u202e" in code and "\\u001b[31m" in code


def test_binary_is_a_hex_dump():
    view = event_render.value_view(bytes(range(20)) + b"\xff")
    assert view.kind == "binary"
    assert view.body.plain.splitlines()[0] == (
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    assert event_render.hexdump(b"AB\x1b") == ["00000000  41 42 1b                                          |AB.|"]


def test_huge_values_are_cut_with_a_note():
    big_json = json.dumps({"items": ["x" * 100] * 60_000}).encode()  # ~6 MB
    view = event_render.value_view(big_json)
    assert view.kind == "text" and "too large to pretty-print" in view.note and "MB" in view.note
    assert len(view.body.plain) <= event_render.SHOW_LIMIT
    many_lines = event_render.value_view(("line\n" * 10_000).encode())
    assert many_lines.note.startswith(f"showing the first {event_render.LINE_LIMIT:,} lines")
    big_binary = event_render.value_view(b"\xff" * 100_000)
    assert big_binary.kind == "binary" and "binary: showing the first" in big_binary.note
    assert len(big_binary.body.plain.splitlines()) == event_render.HEX_LIMIT // 16


def test_text_with_markup_and_escapes_stays_literal():
    view = event_render.value_view(b"[bold]not bold[/] \x1b[2J line\r\nnext")
    assert view.kind == "text"
    assert view.body.plain == "[bold]not bold[/] \\x1b[2J line\\r\nnext"
    assert not view.body.spans


def test_a_value_cut_to_one_line_says_the_first_line():
    assert event_render.first_lines(1) == "the first line"
    assert event_render.first_lines(2000) == "the first 2,000 lines"
