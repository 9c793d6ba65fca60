"""The publish engine's parts: the two passes over an input, the journal's line set, the engine on a
real (local) event log, and -o json's events written aside."""

from __future__ import annotations

import io
import json
import os

import pytest

from workbench import service
from workbench.broker import OutgoingEvent, PublishResult
from workbench.config import Target
from workbench.errors import BadInput
from workbench.journal import LineSet
from workbench.publishing import Batch, LineInput, LineParser, PublishReport, repeated, send
from workbench.triage.capture import local_target

# --------------------------------------------------------------------------- the line set


def test_line_set_keeps_ranges_and_equals_the_set_of_its_numbers():
    lines = LineSet([1, 2, 3, 7, 8, 20])
    lines.update([4, 5])  # joins 1-3
    lines.add_range(10, 12)
    lines.add_range(6, 6)  # joins 1-5 and 7-8
    lines.add_range(11, 25)  # overlaps 10-12 and swallows 20
    assert lines == set(range(1, 9)) | set(range(10, 26))
    assert (lines._starts, lines._ends) == ([1, 10], [8, 25])
    assert 9 not in lines and 0 not in lines and 26 not in lines and "3" not in lines
    assert len(lines) == 24 and sorted(lines) == list(lines)


def test_line_set_of_a_million_lines_is_one_range():
    lines = LineSet()
    for first in range(1, 1_000_001, 5000):
        lines.update(range(first, first + 5000))
    assert len(lines) == 1_000_000 and len(lines._starts) == 1


# --------------------------------------------------------------------------- two passes


def parser(source="in.jsonl", **options) -> LineParser:
    return LineParser(source, **options)


def test_the_check_counts_events_and_notes_partitions_with_their_first_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'{"value": "a", "partition": 2}\r\n\n  \n{"value": "b", "partition": 0}\nplain\n{"value": "c", "partition": 2}'
    )
    with LineInput(str(path)) as lines:
        checked = lines.check(parser(str(path)))
        assert (checked.lines, checked.events, checked.partitions) == (6, 4, {2: 1, 0: 4})
        batches = list(lines.batches(parser(str(path)), batch_size=3))
    assert [b.linenos for b in batches] == [[1, 4, 5], [6]]
    assert [e.value for b in batches for e in b.events] == [b"a", b"b", b"plain", b"c"]
    assert [batches[0].origin(i) for i in range(3)] == [f"{path}:1", f"{path}:4", f"{path}:5"]


def test_a_failed_check_names_the_first_problem_and_the_next_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    rows = [b'{"value": "ok"}'] * 30
    for bad in (3, 9, 10, 12):
        rows[bad - 1] = b"{nope"
    rows[19] = b'{"value": null}'
    path.write_bytes(b"\n".join(rows))
    with LineInput(str(path)) as lines, pytest.raises(BadInput) as failed:
        lines.check(parser(str(path)))
    first, more = str(failed.value).split("\n")
    assert first.startswith(f"{path}:3: not valid JSON")
    assert more == "4 more line(s) with problems: 9, 10, 12, 20"
    assert failed.value.hint == "use --raw to publish every line as it is"


def test_more_problems_than_shown_are_counted(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"{\n" * 50)
    with LineInput(str(path)) as lines, pytest.raises(BadInput) as failed:
        lines.check(parser())
    assert str(failed.value).split("\n")[1] == "49 more line(s) with problems: 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ..."


def test_an_input_of_blank_lines_has_no_events(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n  \r\n\t\n\xe3\x80\x80\n")  # the last line: an ideographic space, blank too
    with LineInput(str(path)) as lines, pytest.raises(BadInput, match="no events"):
        lines.check(parser())


def test_standard_input_is_spooled_as_it_is_checked_then_sent_from_the_spool():
    stdin = io.BytesIO(b'{"key": "k", "value": "v"}\n\xff raw bytes\n')
    with LineInput("-", stdin=stdin) as lines:
        assert lines.source == "stdin"
        assert lines.check(parser("stdin")).events == 2
        assert stdin.read() == b""  # read once, never again
        (batch,) = lines.batches(parser("stdin"))
        from workbench.journal import input_digest

        assert lines.digest("x") == input_digest(b'{"key": "k", "value": "v"}\n\xff raw bytes\n', "x")
    assert batch.events == [OutgoingEvent(b"v", b"k"), OutgoingEvent(b"\xff raw bytes")]
    assert batch.origin(1) == "stdin:2"


def test_a_named_pipe_is_read_once_and_spooled(tmp_path):
    import threading

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(b'{"value": "a"}\n{"value": "b"}\n')

    writer = threading.Thread(target=write)
    writer.start()
    with LineInput(str(fifo)) as lines:
        assert lines.check(parser(str(fifo))).events == 2
        (batch,) = lines.batches(parser(str(fifo)))
    writer.join()
    assert [e.value for e in batch.events] == [b"a", b"b"] and batch.origin(1) == f"{fifo}:2"


def test_a_file_changed_after_its_check_is_refused_before_anything_is_sent(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"value": "a"}\n')
    with LineInput(str(path)) as lines:
        lines.check(parser())
        with open(path, "ab") as f:
            f.write(b"{broken\n")
        with pytest.raises(BadInput, match="changed after it was checked"):
            next(lines.batches(parser()))


def test_journal_lines_are_skipped_and_options_apply(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(b'{"value": "v%d"}\n' % i for i in range(1, 11)))
    parse = parser(key=b"dflt", headers=(("h", b"1"),))
    with LineInput(str(path)) as lines:
        lines.check(parse)
        batches = list(lines.batches(parse, batch_size=4, skip=LineSet([1, 2, 3, 7])))
    assert [b.linenos for b in batches] == [[4, 5, 6, 8], [9, 10]]
    assert batches[0].events[0] == OutgoingEvent(b"v4", b"dflt", (("h", b"1"),))


def test_tombstones_need_the_option():
    with pytest.raises(BadInput, match="tombstone"):
        parser()(4, b'{"value": null, "key": "k"}')
    assert parser(tombstones=True)(4, b'{"value": null, "key": "k"}') == OutgoingEvent(None, b"k")


def test_repeated_numbers_its_copies():
    batches = list(repeated(OutgoingEvent(b"x"), 7, "--value", batch_size=3))
    assert [len(b.events) for b in batches] == [3, 3, 1]
    assert [b.origin(i) for b in batches for i in range(len(b.events))][-2:] == ["--value #6", "--value #7"]
    (single,) = repeated(OutgoingEvent(b"x"), 1, "--value")
    assert single.origin(0) == "--value"


# --------------------------------------------------------------------------- the engine, on a local event log


def local(tmp_path) -> Target:
    return local_target(tmp_path / "events.db")


async def test_send_counts_confirmations_and_keeps_only_failures(tmp_path):
    async with service.connect(local(tmp_path)) as conn:
        await conn.create_topic("t", 2)
        heard: list[tuple[list[int], int]] = []
        progress: list[int] = []

        def batches():
            for first in range(0, 12, 4):
                linenos = list(range(first + 1, first + 5))
                yield Batch([OutgoingEvent(b"v%d" % n) for n in linenos], lambda i, ln=linenos: f"f:{ln[i]}", linenos)

        report = await send(
            conn,
            "t",
            batches(),
            on_results=lambda batch, results: heard.append((list(batch.linenos), len(results))),
            on_progress=lambda r: progress.append(r.confirmed),
        )
        assert (report.confirmed, report.failures, report.unsent, report.stopped) == (12, [], 0, False)
        assert heard == [([1, 2, 3, 4], 4), ([5, 6, 7, 8], 4), ([9, 10, 11, 12], 4)]
        assert progress == [4, 8, 12] and report.first is not None and report.seconds > 0

        missing = await send(conn, "missing", batches(), total=12)
        assert (missing.confirmed, len(missing.failures), missing.unsent, missing.stopped) == (0, 4, 8, True)
        assert [f.origin for f in missing.failures] == ["f:1", "f:2", "f:3", "f:4"]
        assert type(missing.failures[0].error).__name__ == "NotFound"


async def test_send_reports_an_input_error_after_what_came_before(tmp_path):
    async with service.connect(local(tmp_path)) as conn:
        await conn.create_topic("t")

        async def batches():
            yield Batch([OutgoingEvent(b"a")], lambda i: "stdin:1", [1])
            raise BadInput("stdin:2: not valid JSON")

        report = await send(conn, "t", batches())
        assert report.confirmed == 1 and str(report.input_error) == "stdin:2: not valid JSON"


async def test_send_counts_from_the_given_start(tmp_path):
    import time

    async with service.connect(local(tmp_path)) as conn:
        await conn.create_topic("t")
        report = await send(conn, "t", repeated(OutgoingEvent(b"x"), 3, "--value"), started=time.monotonic() - 5)
        assert report.seconds >= 5


async def test_service_publish_keeps_its_first_positions(tmp_path):
    async with service.connect(local(tmp_path)) as conn:
        await conn.create_topic("t")
        firsts: list[int] = []
        report = await service.publish(
            conn,
            "t",
            [(f"o{i}", OutgoingEvent(b"x")) for i in range(7)],
            batch_size=3,
            on_results=lambda first, results: firsts.append(first),
        )
        assert isinstance(report, PublishReport) and report.confirmed == 7 and firsts == [0, 3, 6]


# --------------------------------------------------------------------------- -o json's events


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("count", [0, 1, 5])
def test_events_written_aside_make_the_document_json_dumps_makes(fmt, count, capsys):
    from workbench.cli.publish_report import Placed

    placed = [(f'in "é".jsonl:{i}', PublishResult(i, i % 2, None if i == 3 else 100 + i)) for i in range(count)]
    document = {"topic": "t", "confirmed": count, "failures": [{"origin": "x", "message": '"events": []'}]}
    aside = Placed(fmt)
    aside.extend(placed[:2])
    aside.extend(placed[2:])
    aside.write_into(document)
    listed = [
        {"origin": o, "partition": r.partition, **({} if r.offset is None else {"offset": r.offset})} for o, r in placed
    ]
    expected = json.dumps({**document, "events": listed}, ensure_ascii=False, indent=2 if fmt == "json" else None)
    assert capsys.readouterr().out == expected + "\n"


def test_command_start_is_the_process_start(tmp_path):
    import subprocess
    import sys

    code = (
        "import time; t0 = time.monotonic(); time.sleep(0.3)\n"
        "from workbench.cli.publish import _command_started\n"
        "print(t0 - _command_started())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    before = float(done.stdout)
    assert 0 <= before < 5  # the process started before its first line ran (the interpreter's start-up)


async def test_replay_as_read_publishes_each_batch_as_it_is_read(tmp_path):
    from workbench.broker import Position
    from workbench.triage.replay import REPLAYED_FROM, ReplaySource, execute_replay, plan_replay, replay_as_read

    target = local(tmp_path)
    async with service.connect(target) as conn:
        await conn.create_topic("dlt", 2)
        await conn.create_topic("to")
        await conn.create_topic("planned")
        events = [OutgoingEvent(b"v%d" % i, b"k", (("x-death", b"1"), ("keep", b"y")), i % 2) for i in range(2500)]
        await conn.publish("dlt", events)
        source = ReplaySource("dlt", target, False)
        report = await replay_as_read(conn, source, conn, "to", Position.beginning(), limit=2100)
        assert (report.confirmed, report.failures) == (2100, [])
        plan = await plan_replay(conn, source, "planned", Position.beginning(), limit=2100)
        assert (await execute_replay(conn, plan)).confirmed == 2100
        copied = [e async for batch in service.tail(conn, "to", Position.beginning()) for e in batch]
        planned = [e async for batch in service.tail(conn, "planned", Position.beginning()) for e in batch]
    assert len(copied) == len(planned) == 2100
    assert sorted(e.value for e in copied) == sorted(e.value for e in planned)
    assert all([name for name, _ in e.headers][:1] == ["keep"] for e in copied)
    assert {dict(e.headers)[REPLAYED_FROM].decode().rsplit("/", 2)[0] for e in copied} == {"dlt"}
