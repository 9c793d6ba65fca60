"""The hostile corpus: payloads, keys and header values that try to drive a terminal or a renderer,
and the checks that say whether what was shown stayed inert.

Everything is bytes, the way a broker hands it over. :func:`assert_inert` is the one definition of
"inert" the suite uses for text a person would see (a table line, a TUI strip, a screenshot).
"""

from __future__ import annotations

import base64
import json
import re

from workbench.broker import Event, OutgoingEvent

#: name -> bytes. Each one is a way to take over a terminal or a Rich renderer.
CORPUS: dict[str, bytes] = {
    "csi_colour": b"\x1b[31mRED\x1b[0m",
    "csi_clear_screen": b"\x1b[2J\x1b[H\x1b[?1049h",
    "osc52_clipboard": b"\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "osc8_link": b"\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
    "osc_title": b"\x1b]0;pwned\x07",
    "c1_csi_utf8": "\u009b31mC1\u009d0;t\u009c".encode(),
    "c1_csi_raw_byte": b"\x9b31m raw C1",
    "rich_markup": b"[bold red]markup[/bold red] [link=https://evil.example/]click[/link]",
    "bidi": "\u202eevil\u202c \u2066iso\u2069 \u200frlm \u061calm".encode(),
    "nul": b"nul\x00byte\x00",
    "invalid_utf8": b"\xff\xfe\xc3\x28\xed\xa0\x80\xc0\x80",
    "cursor_tricks": b"over\rwrite\x08\x7f\x0b\x0c\nline",
}

#: Literal text that must be visible in a table or TUI row when the markup is inert.
MARKUP_SHOWN = "[bold red]markup[/bold red]"

# Terminal controls (C0 except newline, DEL, C1) and the invisible reordering characters.
_FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# What Rich itself writes on a terminal: colours and attributes (SGR) only.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def hostile_events() -> list[OutgoingEvent]:
    """One event per corpus entry: the entry as key, value and header value (and in a header name)."""
    return [
        OutgoingEvent(
            value=data,
            key=data,
            headers=(("ce_type", data), (f"h-{name}\x1b[7m", data), ("correlation_id", data)),
        )
        for name, data in CORPUS.items()
    ]


def envelope_line(event: OutgoingEvent) -> str:
    """A `publish --file` line carrying ``event`` exactly (base64 for every byte string)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return json.dumps(
        {
            "key": None if event.key is None else b64(event.key),
            "key_encoding": "base64",
            "value": None if event.value is None else b64(event.value),
            "value_encoding": "base64",
            "headers": [[name, b64(value), "base64"] for name, value in event.headers],
        }
    )


def as_sent(e: Event) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
    return e.key, e.value, tuple(e.headers)


def forbidden_characters(text: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in _FORBIDDEN.findall(text)})


def assert_inert(text: str, *, terminal: bool = False) -> None:
    """No control, C1 or bidi character in ``text``; on a terminal, Rich's own SGR colours are allowed
    (they are ours), and nothing else that starts with ESC."""
    if terminal:
        text = _SGR.sub("", text)
    found = forbidden_characters(text)
    assert not found, f"raw control characters reached the output: {found}"


def assert_escapes_visible(text: str) -> None:
    """The hostile bytes are there, as visible escapes, and the markup as literal text."""
    for shown in (
        "\\x1b[31mRED\\x1b[0m",
        "\\x1b]52;c;",
        "\\x1b]8;;https://evil.example/",
        "\\u202eevil",
        "nul\\x00byte",
        MARKUP_SHOWN,
    ):
        assert shown in text, f"{shown!r} is not shown literally"
