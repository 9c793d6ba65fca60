"""Hostile keys, values and headers through the real CLI: inert in tables, exact in JSONL.

`tail -o table` into a pipe and onto a pseudo-terminal shows no raw control byte and no
interpreted markup; `tail -o jsonl | publish --file -` copies every byte, a 10 MB value and an
event with 10,000 headers included.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
import uuid

import pytest

from tests.brokers import endpoints
from workbench.broker import OutgoingEvent
from workbench.events.envelope_input import parse_line

from .hostile import CORPUS, MARKUP_SHOWN, assert_escapes_visible, assert_inert, envelope_line, hostile_events

LOCAL = "local:events.db"
TEN_MB = 10 * 1024 * 1024


def publish_exact(cli, broker: str, topic: str, events: list[OutgoingEvent]) -> None:
    lines = "".join(envelope_line(e) + "\n" for e in events).encode()
    done = cli("--broker", broker, "publish", topic, "--file", "-", "--tombstones", input=lines)
    assert done.code == 0, done.err.decode()


def read_back(cli, broker: str, topic: str, count: int) -> list[OutgoingEvent]:
    done = cli("--broker", broker, "tail", topic, "--from", "beginning", "--max", str(count), "-o", "jsonl")
    assert done.code == 0, done.err.decode()
    lines = done.out.decode("utf-8").splitlines()
    assert len(lines) == count
    return [parse_line(line, n) for n, line in enumerate(lines, 1)]


def triples(events: list[OutgoingEvent]) -> list[tuple]:
    return [(e.key, e.value, tuple(e.headers)) for e in events]


def test_table_output_into_a_pipe_is_inert(cli):
    assert cli("--broker", LOCAL, "topics", "create", "hostile").code == 0
    publish_exact(cli, LOCAL, "hostile", hostile_events())
    done = cli("--broker", LOCAL, "tail", "hostile", "-o", "table")
    assert done.code == 0, done.err.decode()
    text = done.out.decode("utf-8")  # valid UTF-8 even though payloads are not
    assert len(text.splitlines()) == len(CORPUS)  # one line per event: no newline got through
    assert_inert(text)
    assert_escapes_visible(text)
    assert "0xfffec328eda080c080" in text  # invalid UTF-8 as hex


def _run_on_a_terminal(argv: list[str], env: dict[str, str], width: int = 400, timeout: float = 60) -> bytes:
    """Run ``argv`` with stdout on a pseudo-terminal ``width`` columns wide; all it wrote there (the
    terminal's CR LF made LF again). stderr (progress bars, which move the cursor) is dropped."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.DEVNULL, env=env, close_fds=True
    )
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0, b"".join(chunks).decode("utf-8", "replace")
    finally:
        proc.kill()
        proc.wait()
        os.close(controller)
    return b"".join(chunks).replace(b"\r\n", b"\n")


def test_table_output_on_a_terminal_is_inert(cli):
    assert cli("--broker", LOCAL, "topics", "create", "hostile").code == 0
    publish_exact(cli, LOCAL, "hostile", hostile_events())
    env = {**cli.env, "TERM": "xterm-256color", "COLUMNS": "400"}
    env.pop("NO_COLOR", None)
    shown = _run_on_a_terminal([sys.executable, "-m", "workbench", "--broker", LOCAL, "tail", "hostile"], env)
    text = shown.decode("utf-8")
    assert "\x1b[" in text, "expected Rich to colour the columns on a terminal"
    assert_inert(text, terminal=True)  # only our own colours: no OSC, no cursor movement, no C1
    assert "\x1b]" not in text and "\x1b[2J" not in text and "\x1b[?1049h" not in text
    assert MARKUP_SHOWN in text and "[link=https://evil.example/]" in text
    assert "\\x1b]52;c;" in text and "\\u202eevil" in text


def test_jsonl_round_trips_hostile_bytes_exactly_through_publish(cli):
    for topic in ("hostile", "copy"):
        assert cli("--broker", LOCAL, "topics", "create", topic).code == 0
    sent = hostile_events() + [
        OutgoingEvent(value=None, key=b"\x1b[31mtombstone"),
        OutgoingEvent(value=b"", key=b""),
    ]
    publish_exact(cli, LOCAL, "hostile", sent)
    tailed = cli("--broker", LOCAL, "tail", "hostile", "-o", "jsonl")
    assert tailed.code == 0
    assert_inert(tailed.out.decode("utf-8"))  # JSON escapes every control character
    copied = cli("--broker", LOCAL, "publish", "copy", "--file", "-", "--tombstones", input=tailed.out)
    assert copied.code == 0, copied.err.decode()
    assert triples(read_back(cli, LOCAL, "copy", len(sent))) == triples(sent)


def test_a_10_mb_value_and_10000_headers_round_trip_and_stay_bounded_in_a_table(cli):
    for topic in ("big", "big-copy"):
        assert cli("--broker", LOCAL, "topics", "create", topic).code == 0
    big_value = (CORPUS["csi_clear_screen"] + CORPUS["rich_markup"] + b"\xff") * (TEN_MB // 60)
    many_headers = tuple((f"h{i}\x1b[{i}m", CORPUS["osc52_clipboard"] + str(i).encode()) for i in range(10_000))
    sent = [OutgoingEvent(value=big_value, key=b"big"), OutgoingEvent(value=b"\x1b]0;x\x07", headers=many_headers)]
    publish_exact(cli, LOCAL, "big", sent)

    table = cli("--broker", LOCAL, "tail", "big", "-o", "table")
    assert table.code == 0
    lines = table.out.decode("utf-8").splitlines()
    assert len(lines) == 2 and all(len(line) < 1000 for line in lines)  # previews, not the payload
    assert lines[0].endswith("MB)")  # the preview says how large the value is
    assert_inert(table.out.decode("utf-8"))

    tailed = cli("--broker", LOCAL, "tail", "big", "-o", "jsonl")
    copied = cli("--broker", LOCAL, "publish", "big-copy", "--file", "-", input=tailed.out)
    assert copied.code == 0, copied.err.decode()
    back = read_back(cli, LOCAL, "big-copy", 2)
    assert back[0].value == big_value and len(back[1].headers) == 10_000
    assert triples(back) == triples(sent)


@pytest.mark.kafka
def test_hostile_bytes_against_real_kafka(cli):
    endpoints.require_kafka()
    broker = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"
    source, copy = f"sec-hostile-{uuid.uuid4().hex[:8]}", f"sec-copy-{uuid.uuid4().hex[:8]}"
    try:
        for topic in (source, copy):
            done = cli("--broker", broker, "topics", "create", topic)
            assert done.code == 0, done.err.decode()
        sent = hostile_events()
        publish_exact(cli, broker, source, sent)
        table = cli("--broker", broker, "tail", source, "--max", str(len(sent)))
        assert table.code == 0, table.err.decode()
        text = table.out.decode("utf-8")
        assert_inert(text)
        assert_escapes_visible(text)
        tailed = cli("--broker", broker, "tail", source, "--max", str(len(sent)), "-o", "jsonl")
        copied = cli("--broker", broker, "publish", copy, "--file", "-", input=tailed.out)
        assert copied.code == 0, copied.err.decode()
        assert triples(read_back(cli, broker, copy, len(sent))) == triples(sent)
    finally:
        for topic in (source, copy):
            cli("--broker", broker, "topics", "delete", topic, "--yes")
