"""LineInput.check(stop=...): publish checks its input in a thread while it connects; a stop (Ctrl-C,
or the broker's error ended the command) ends the check early instead of reading a huge input to its end."""

from __future__ import annotations

import threading

import pytest

from workbench.errors import BadInput
from workbench.publishing import LineInput, LineParser


def test_a_set_stop_ends_the_check_early(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"value": "v"}\n' * 10_000)
    stop = threading.Event()
    stop.set()
    with LineInput(str(source)) as lines, pytest.raises(BadInput, match="the check was stopped at line 4096"):
        lines.check(LineParser(str(source)), stop=stop)


def test_an_unset_stop_changes_nothing(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"value": "v"}\n' * 10_000)
    with LineInput(str(source)) as lines:
        assert lines.check(LineParser(str(source)), stop=threading.Event()).events == 10_000
