"""The publish journal: what it records, what it loads back, and what it refuses."""

from __future__ import annotations

import pytest

from workbench.errors import BadInput
from workbench.journal import Journal, input_digest


def opened(path, **changes):
    args = {"topic": "orders", "broker": "local:x.db", "digest": input_digest(b"a\nb\n"), "lines": 2} | changes
    return Journal.open(path, **args)


def test_recorded_lines_come_back_on_reopen(tmp_path):
    path = tmp_path / "j"
    book = opened(path)
    assert book.confirmed == set()
    book.record([1, 2, 3, 5, 9, 10])
    book.record([3, 4])  # 3 again: recorded once
    book.close()
    assert path.read_text().splitlines()[1:] == ["c 1-3,5,9-10", "c 4"]
    assert opened(path).confirmed == {1, 2, 3, 4, 5, 9, 10}


def test_a_torn_last_record_counts_as_not_confirmed(tmp_path):
    path = tmp_path / "j"
    opened(path).record([1, 2])
    with open(path, "a") as f:
        f.write("c 3-")  # killed while writing
    assert opened(path).confirmed == {1, 2}


def test_a_run_after_a_torn_record_leaves_a_journal_the_next_run_reads(tmp_path):
    path = tmp_path / "j"
    opened(path).record([1, 2])
    with open(path, "a") as f:
        f.write("c 3-")  # killed while writing
    second = opened(path)
    second.record([3, 4])
    second.close()
    assert opened(path).confirmed == {1, 2, 3, 4}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"topic": "payments"}, "topic"),
        ({"broker": "local:y.db"}, "broker"),
        ({"digest": input_digest(b"a\nc\n")}, "input"),
    ],
)
def test_another_destination_or_input_is_refused(tmp_path, change, named):
    path = tmp_path / "j"
    opened(path).close()
    with pytest.raises(BadInput, match=f"another {named}"):
        opened(path, **change)


def test_options_that_shape_events_change_the_digest():
    assert input_digest(b"x\n") != input_digest(b"x\n", "--raw")
    assert input_digest(b"x\n", None, ["h=1"]) != input_digest(b"x\n", None, ["h=2"])


def test_a_file_that_is_not_a_journal_is_refused_with_its_line(tmp_path):
    path = tmp_path / "j"
    path.write_text("hello\n")
    with pytest.raises(BadInput, match=r"j:1: not a publish journal"):
        opened(path)
    opened(tmp_path / "k").close()
    with open(tmp_path / "k", "a") as f:
        f.write("c 5-2\n")
    with pytest.raises(BadInput, match=r"k:2: malformed record"):
        opened(tmp_path / "k")
