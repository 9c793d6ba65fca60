"""plain_envelope_event: the one-call path publish sends a checked input's plain lines by. It must make
exactly the event the general parser makes (``LineParser``: ``--key`` for events without one), and
leave every other line (None) to the general parser, which judges it."""

from __future__ import annotations

import pytest

from workbench.events.envelope_input import plain_envelope_event
from workbench.publishing import LineParser

PLAIN = [
    b'{"key": "k1", "value": "v1"}',
    b'{"value": "v1", "key": "k1"}',
    b'{"value": "only a value"}',
    b'{"key": null, "value": "v"}',
    b'{"key": "", "value": ""}',
    '{"key": "cl\u00e9", "value": "\u65e5\u672c \\u00e9 \\" \\\\n"}'.encode(),
    b'{"key":"k","value":"{\\"orderId\\": 1}"}   ',
]
OTHERS = [
    b'{"value": 1}',
    b'{"value": null}',
    b'{"value": {"a": 1}}',
    b'{"key": 5, "value": "v"}',
    b'{"key": "k", "value": "v", "headers": {"a": "b"}}',
    b'{"key": "k", "value": "v", "partition": 1}',
    b'{"key": "k", "valeu": "v"}',
    b'{"value": "v"} trailing',
    b"{broken",
    b'["value", "v"]',
    b'{"value": "\\ud800"}',
    b'{"value": "x", "value_encoding": "base64"}',
]


@pytest.mark.parametrize("default_key", [None, b"dflt"])
@pytest.mark.parametrize("line", PLAIN)
@pytest.mark.parametrize("end", [b"", b"\n", b"\r\n"])
def test_a_plain_line_makes_the_parsers_event(line, end, default_key):
    parser = LineParser("in.jsonl", key=default_key)
    assert plain_envelope_event(line + end, default_key) == parser(1, line)


@pytest.mark.parametrize("line", OTHERS)
def test_any_other_line_is_left_to_the_general_parser(line):
    assert plain_envelope_event(line + b"\n") is None
