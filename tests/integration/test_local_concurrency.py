"""The local adapter shared by OS processes: one SQLite file, concurrent writers and readers.

Child processes run the adapter through ``python -c``; they start publishing together (a "go" line
on stdin) so that their transactions really interleave.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.broker import OutgoingEvent, Position, Unreachable
from workbench_local import LocalAdapter

REPO = Path(__file__).resolve().parents[2]
PER_PROCESS = 5_000
PARTITIONS = 3

# argv: path topic name count batch. Prints "ready", waits for "go", publishes; then prints where
# the events went and when publishing began and ended.
PUBLISHER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from workbench_local import LocalAdapter
    from workbench.broker import OutgoingEvent

    async def main(path, topic, name, count, batch):
        conn = await LocalAdapter({"path": path}).connect()
        print("ready", flush=True)
        sys.stdin.readline()
        placed = []
        began = time.time()
        for start in range(0, count, batch):
            events = [
                OutgoingEvent(value=f"{name}-{i}".encode(), key=f"k{i % 17}".encode())
                for i in range(start, min(start + batch, count))
            ]
            results = await conn.publish(topic, events)
            assert all(r.ok for r in results), [r for r in results if not r.ok]
            placed += [(r.partition, r.offset) for r in results]
        ended = time.time()
        await conn.close()
        print(json.dumps({"placed": placed, "span": [began, ended]}), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    """
)

# argv: path topic. Prints "ready", waits for "go", then opens (maybe creates) the file, creates the
# topic, publishes one event and prints "ok".
CREATOR = textwrap.dedent(
    """
    import asyncio, sys
    from workbench_local import LocalAdapter
    from workbench.broker import OutgoingEvent

    async def main(path, topic):
        print("ready", flush=True)
        sys.stdin.readline()
        async with await LocalAdapter({"path": path}).connect() as conn:
            await conn.create_topic(topic, 2)
            assert (await conn.publish(topic, [OutgoingEvent(value=topic.encode())]))[0].ok
        print("ok", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)

# argv: path topic. Prints "ready"; for every "go" line publishes one event whose value is the
# wall-clock time just before publishing, then prints "ok".
PINGER = textwrap.dedent(
    """
    import asyncio, sys, time
    from workbench_local import LocalAdapter
    from workbench.broker import OutgoingEvent

    async def main(path, topic):
        conn = await LocalAdapter({"path": path}).connect()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            await conn.publish(topic, [OutgoingEvent(value=repr(time.time()).encode())])
            print("ok", flush=True)
        await conn.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def child(code: str, *args: object, hash_seed: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def reap(proc: subprocess.Popen[str]) -> None:
    """Let a child end (stdin closed; killed after 30 s) and close its pipes."""
    try:
        proc.communicate(timeout=30)  # also closes stdin
    except (subprocess.TimeoutExpired, ValueError):
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


def expect_line(proc: subprocess.Popen[str], wanted: str) -> None:
    line = proc.stdout.readline().strip()
    if line != wanted:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"child said {line!r}, expected {wanted!r}; stderr:\n{err}")


async def test_two_processes_publish_into_one_file(tmp_path):
    db = tmp_path / "shared.db"
    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        topic = "orders"
        await conn.create_topic(topic, PARTITIONS)

    # Small batches: many interleaved write transactions from both processes.
    procs = [child(PUBLISHER, db, topic, name, PER_PROCESS, 50) for name in ("a", "b")]
    try:
        for p in procs:
            await asyncio.to_thread(expect_line, p, "ready")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = []
        for p in procs:
            out, err = await asyncio.to_thread(p.communicate, None, 120)
            assert p.returncode == 0, err
            outputs.append(json.loads(out.splitlines()[-1]))
    finally:
        for p in procs:
            reap(p)

    placed = [tuple(x) for out in outputs for x in out["placed"]]
    assert len(placed) == 2 * PER_PROCESS
    assert len(set(placed)) == len(placed), "two events got the same (partition, offset)"

    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        info = await conn.describe_topic(topic)
        assert info.count == 2 * PER_PROCESS
        events = []
        async for batch in conn.read(topic, Position.beginning()):
            events.extend(batch)
    assert len(events) == 2 * PER_PROCESS
    assert sorted(e.value for e in events) == sorted(
        f"{name}-{i}".encode() for name in "ab" for i in range(PER_PROCESS)
    )
    for part in info.partitions:
        offsets = [e.offset for e in events if e.partition == part.partition]
        assert offsets == list(range(part.start, part.end)), f"partition {part.partition}: gaps or repeats"
        assert sorted(o for p, o in placed if p == part.partition) == offsets
        for name in "ab":  # each process's own events keep their publish order in a partition
            mine = [int(e.value[2:]) for e in events if e.partition == part.partition and e.value[:1] == name.encode()]
            assert mine == sorted(mine)
    # The two really published at the same time (SQLite's lock does not promise they alternate).
    spans = [out["span"] for out in outputs]
    assert max(began for began, _ in spans) < min(ended for _, ended in spans), spans

    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()


async def test_processes_creating_the_file_at_once(tmp_path):
    db = tmp_path / "fresh.db"  # does not exist yet: every child races to create it
    names = [f"topic-{i}" for i in range(4)]
    procs = [child(CREATOR, db, name) for name in names]
    try:
        for p in procs:
            await asyncio.to_thread(expect_line, p, "ready")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = await asyncio.to_thread(p.communicate, None, 60)
            assert p.returncode == 0 and out.split() == ["ok"], err
    finally:
        for p in procs:
            reap(p)
    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        topics = await conn.list_topics()
    assert [t.name for t in topics] == names
    assert [t.count for t in topics] == [1, 1, 1, 1]


async def test_follow_sees_another_process_within_a_second(tmp_path):
    db = tmp_path / "shared.db"
    conn = await LocalAdapter({"path": str(db)}).connect()
    topic = "pings"
    await conn.create_topic(topic, 1)
    proc = child(PINGER, db, topic)
    it = conn.read(topic, Position.beginning(), follow=True)  # empty topic: no start race
    latencies = []
    try:
        await asyncio.to_thread(expect_line, proc, "ready")
        for _ in range(5):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            batch = await asyncio.wait_for(anext(it), 5)
            seen = time.time()
            assert len(batch) == 1
            latencies.append(seen - float(batch[0].value))
            await asyncio.to_thread(expect_line, proc, "ok")
    finally:
        await it.aclose()
        await conn.close()
        reap(proc)  # (closing its stdin ends it)
    assert max(latencies) < 1.0, f"latencies (s): {latencies}"


async def test_key_partitioning_is_the_same_in_another_process(tmp_path):
    """Key -> partition must not depend on the process (e.g. on PYTHONHASHSEED)."""
    db = tmp_path / "shared.db"
    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        await conn.create_topic("keys", 7)
        mine = await conn.publish("keys", [OutgoingEvent(value=b"x", key=f"k{i % 17}".encode()) for i in range(40)])
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"  # surely not ours
    proc = child(PUBLISHER, db, "keys", "z", 40, 40, hash_seed=seed)
    try:
        await asyncio.to_thread(expect_line, proc, "ready")
        out, err = await asyncio.to_thread(proc.communicate, "go\n", 60)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    theirs = json.loads(out.splitlines()[-1])["placed"]
    assert [p for p, _ in theirs] == [r.partition for r in mine]


async def test_truncation_by_another_connection_under_readers(tmp_path):
    """Local-only retention (``local_truncate``) while this process reads: reads go on from the new
    start, positions are clamped to it, and timestamp positions stay exact."""
    db = tmp_path / "shared.db"
    conn = await LocalAdapter({"path": str(db)}).connect()
    try:
        await conn.create_topic("t", 1)
        base = 1_700_000_000_000
        # Out-of-order timestamps: offset 2 is the newest; it is truncated below.
        stamps = [base, base + 1, base + 9_000, base + 2, base + 3, base + 5_000, base + 6_000]
        await conn.publish("t", [OutgoingEvent(value=b"%d" % i, timestamp=t) for i, t in enumerate(stamps)])
        reader = conn.read("t", Position.beginning(), batch_size=2)
        first = await asyncio.wait_for(anext(reader), 5)
        assert [e.offset for e in first] == [0, 1]

        other = await LocalAdapter({"path": str(db)}).connect()
        try:
            assert await other.local_truncate("t", 0, 4) == 4
        finally:
            await other.close()

        rest = []
        async for batch in reader:  # offsets 2 and 3 are gone: the read goes on at 4
            rest.extend(batch)
        assert [e.offset for e in rest] == [4, 5, 6]

        async def offsets(start):
            got = []
            async for batch in conn.read("t", start):
                got.extend(e.offset for e in batch)
            return got

        info = await conn.describe_topic("t")
        assert (info.partitions[0].start, info.partitions[0].end) == (4, 7)
        assert await offsets(Position.at_offset(1)) == [4, 5, 6]  # clamped to the start
        assert await offsets(Position.last(10)) == [4, 5, 6]
        # The truncated event at offset 2 was the newest: the seek must not stop at 4 for it.
        assert await offsets(Position.at_time(base + 4_000)) == [5, 6]
        assert await offsets(Position.at_time(base + 6_001)) == []
    finally:
        await conn.close()


async def test_files_that_are_not_event_logs_are_unreachable(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a database\n" * 100)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    for path in (text, other, tmp_path, tmp_path / "missing" / "x.db"):
        with pytest.raises(Unreachable, match=re.escape(str(path))):
            await LocalAdapter({"path": str(path)}).connect()
    assert text.read_bytes() == b"not a database\n" * 100  # left as it was


async def test_two_workbench_publish_commands_into_one_file(tmp_path):
    """Two ``workbench publish --stream`` processes (the CLI, end to end) write into one file at
    once: every event is there, once, at unique and contiguous offsets per partition.

    Both get a first chunk and are seen to have published it; then both get the rest at the same
    time. So in every partition the two processes' events alternate at least twice, whatever the
    scheduling: A1 B1 (A2|B2 interleaved) or B1 A1 ...
    """
    from tests.integration.faults_support import Workbench, until

    db = tmp_path / "shared.db"
    topic, first, total = "orders", 2_000, 30_000
    async with await LocalAdapter({"path": str(db)}).connect() as conn:
        await conn.create_topic(topic, PARTITIONS)

        async def count() -> int:
            return (await conn.describe_topic(topic)).count

        def lines(name: str, start: int, stop: int) -> bytes:
            return "".join(
                json.dumps({"key": f"k{i % 17}", "value": f"{name}-{i}"}) + "\n" for i in range(start, stop)
            ).encode()

        procs = {
            name: Workbench("-b", f"local:{db}", "publish", topic, "--file", "-", "--stream", stdin=subprocess.PIPE)
            for name in "ab"
        }
        try:
            for n, (name, proc) in enumerate(procs.items(), start=1):
                proc.proc.stdin.write(lines(name, 0, first))
                proc.proc.stdin.flush()
                await until(lambda n=n: count_at_least(count, n * first), f"{name}'s first chunk", 60)

            def feed(proc: Workbench, name: str) -> None:
                proc.proc.stdin.write(lines(name, first, total))
                proc.proc.stdin.close()

            await asyncio.gather(*(asyncio.to_thread(feed, p, name) for name, p in procs.items()))
            for proc in procs.values():
                assert await asyncio.to_thread(proc.wait, 120) == 0, proc.stderr_text()
                summary = b"".join(proc.out).decode()
                assert f"{total:,} confirmed, 0 failed" in summary, (summary, proc.stderr_text())
        finally:
            for proc in procs.values():
                proc.close()

        info = await conn.describe_topic(topic)
        events = []
        async for batch in conn.read(topic, Position.beginning()):
            events.extend(batch)
    assert info.count == len(events) == 2 * total
    assert sorted(e.value for e in events) == sorted(f"{name}-{i}".encode() for name in "ab" for i in range(total))
    for part in info.partitions:
        mine = [e for e in events if e.partition == part.partition]
        assert [e.offset for e in mine] == list(range(part.start, part.end)), (
            f"partition {part.partition}: gaps or repeats"
        )
        writers = [e.value[:1] for e in mine]
        runs = 1 + sum(1 for x, y in itertools.pairwise(writers) if x != y)
        assert runs >= 3, f"partition {part.partition}: the two writers did not alternate ({runs} runs)"
        for name in (b"a", b"b"):  # each process's own events keep their order
            order = [int(e.value[2:]) for e in mine if e.value[:1] == name]
            assert order == sorted(order)


async def count_at_least(count, n: int) -> bool:
    return await count() >= n
