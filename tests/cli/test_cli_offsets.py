"""`workbench offsets reset` against the local adapter: dry run, --execute, every --to form, refusals."""

from __future__ import annotations

import asyncio
import json

import pytest

from workbench.broker import Capabilities, OutgoingEvent, Unsupported
from workbench.errors import ExitCode, ResetRefused
from workbench_local import LocalAdapter

BASE_MS = 1_780_000_000_000  # 2026-05-28T20:26:40Z: events of the seed are 1 s apart from here
COMMITTED = {0: 5, 1: 6, 2: 7}


def local(db, *, stable_window_ms: int = 30_000) -> LocalAdapter:
    return LocalAdapter({"path": str(db), "stable_window_ms": stable_window_ms})


def seed(wb) -> None:
    """Topic t: 3 partitions of 10 events (timestamps BASE_MS + i s); group g committed COMMITTED."""

    async def go() -> None:
        async with await local(wb.db).connect() as conn:
            await conn.create_topic("t", 3)
            events = [
                OutgoingEvent(b"x", partition=p, timestamp=BASE_MS + i * 1000) for p in range(3) for i in range(10)
            ]
            assert all(r.ok for r in await conn.publish("t", events))
            await conn.commit_offsets("g", {("t", p): o for p, o in COMMITTED.items()})

    asyncio.run(go())


def committed(wb) -> dict[int, int | None]:
    async def go():
        async with await local(wb.db).connect() as conn:
            (figures,) = await conn.lag(["g"])
            return {p.partition: p.committed for p in figures.partitions if p.topic == "t"}

    return asyncio.run(go())


@pytest.fixture
def idle(wb, isolated_home):
    """`idle(*args)`: run against profile `idle`, where the local adapter reports every group Empty
    (stable_window_ms = 0), so a just-committed group may be reset without waiting 30 s."""
    (isolated_home / "workbench.toml").write_text(
        f'[profiles.idle]\nadapter = "local"\npath = "{wb.db}"\nstable_window_ms = 0\n\n'
        f'[profiles.ro]\nadapter = "local"\npath = "{wb.db}"\nstable_window_ms = 0\nread_only = true\n'
    )
    seed(wb)
    return lambda *args: wb("--profile", "idle", *args, broker=False)


def plan(run, *args: str) -> dict[int, dict]:
    result = run("offsets", "reset", "g", *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return {row["partition"]: row for row in json.loads(result.stdout)["partitions"]}


def test_dry_run_shows_old_and_new_and_changes_nothing(idle, wb):
    result = idle("offsets", "reset", "g", "--topic", "t", "--to", "earliest")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT", "TARGET", "NEW", "NOTE"]
    assert [line.split() for line in lines[1:]] == [
        ["g", "t", str(p), str(o), "earliest", "0"] for p, o in COMMITTED.items()
    ]
    assert "dry run" in result.stderr and "--execute" in result.stderr
    assert committed(wb) == COMMITTED

    data = json.loads(idle("offsets", "reset", "g", "--topic", "t:1", "--to", "3", "-o", "json").stdout)
    assert (data["group"], data["state"], data["to"], data["executed"]) == ("g", "Empty", "3", False)
    assert data["partitions"] == [
        {
            "group": "g",
            "topic": "t",
            "partition": 1,
            "current": 6,
            "target": "3",
            "requested": 3,
            "new": 3,
            "start": 0,
            "end": 10,
            "clamped": False,
            "note": "",
        }
    ]
    assert committed(wb) == COMMITTED


def test_execute_changes_exactly_the_chosen_partitions_and_reads_them_back(idle, wb):
    result = idle("offsets", "reset", "g", "--topic", "t:0,2", "--to", "2", "--execute")
    assert result.exit_code == 0, result.stderr
    assert "COMMITTED NOW" in result.stdout.splitlines()[0]
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows == [["g", "t", "0", "5", "2", "2", "2"], ["g", "t", "2", "7", "2", "2", "2"]]
    assert committed(wb) == {0: 2, 1: 6, 2: 2}

    data = json.loads(
        idle("offsets", "reset", "g", "--topic", "t:1", "--to", "latest", "--execute", "-o", "json").stdout
    )
    assert data["executed"] is True
    assert [(r["partition"], r["current"], r["new"], r["committed"]) for r in data["partitions"]] == [(1, 6, 10, 10)]
    assert committed(wb) == {0: 2, 1: 10, 2: 2}


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("earliest", {0: 0, 1: 0, 2: 0}),
        ("beginning", {0: 0, 1: 0, 2: 0}),
        ("latest", {0: 10, 1: 10, 2: 10}),
        ("4", {0: 4, 1: 4, 2: 4}),
        ("shift:+2", {0: 7, 1: 8, 2: 9}),
        ("shift:-3", {0: 2, 1: 3, 2: 4}),
        ("2026-05-28T20:26:43.500Z", {0: 4, 1: 4, 2: 4}),  # first event at or after: offset 4 (+4 s)
        ("2026-05-28T20:26:43", {0: 3, 1: 3, 2: 3}),  # no zone: UTC; exactly the event at +3 s
        ("2020-01-01", {0: 0, 1: 0, 2: 0}),  # before every event: the first one
        ("2099-01-01T00:00:00+00:00", {0: 10, 1: 10, 2: 10}),  # after every event: the end
    ],
)
def test_each_to_form(idle, wb, to, expected):
    assert {p: row["new"] for p, row in plan(idle, "--topic", "t", "--to", to).items()} == expected
    result = idle("offsets", "reset", "g", "--topic", "t", "--to", to, "--execute")
    assert result.exit_code == 0, result.stderr
    assert committed(wb) == expected


def test_targets_are_clamped_and_the_clamping_shown(idle, wb):
    result = idle("offsets", "reset", "g", "--topic", "t:0", "--to", "9999")
    assert result.exit_code == 0, result.stderr
    assert "clamped from 9999 to 10" in result.stdout
    rows = plan(idle, "--topic", "t", "--to", "shift:-6")
    assert [(r["requested"], r["new"], r["clamped"]) for r in rows.values()] == [
        (-1, 0, True),
        (0, 0, False),
        (1, 1, False),
    ]
    assert rows[0]["note"] == "clamped from -1 to 0"

    async def truncate() -> None:  # retention moved partition 1's start past the target
        async with await local(wb.db).connect() as conn:
            await conn.local_truncate("t", 1, 8)

    asyncio.run(truncate())
    executed = idle("offsets", "reset", "g", "--topic", "t:1", "--to", "earliest", "--execute")
    assert executed.exit_code == 0 and committed(wb)[1] == 8
    assert plan(idle, "--topic", "t:1", "--to", "3")[1]["note"] == "clamped from 3 to 8"


def test_read_only_profile_refused_before_anything_is_read(idle, wb):
    result = wb(
        "--profile", "ro", "offsets", "reset", "g", "--topic", "t", "--to", "earliest", "--execute", broker=False
    )
    assert result.exit_code == ExitCode.DENIED and "read-only" in result.stderr and result.stdout == ""
    # refused before it connects: even a topic that does not exist is not looked up
    result = wb("--profile", "ro", "offsets", "reset", "g", "--topic", "nope", "--to", "1", "--execute", broker=False)
    assert result.exit_code == ExitCode.DENIED
    assert committed(wb) == COMMITTED
    # a dry run reads only: allowed
    assert wb("--profile", "ro", "offsets", "reset", "g", "--topic", "t", "--to", "1", broker=False).exit_code == 0


def test_a_stable_group_is_refused(wb):
    seed(wb)  # just committed: the local adapter (default 30 s window) says Stable
    dry = wb("offsets", "reset", "g", "--topic", "t", "--to", "earliest")
    assert dry.exit_code == 0 and "refused while the group is Stable" in dry.stderr
    result = wb("offsets", "reset", "g", "--topic", "t", "--to", "earliest", "--execute")
    assert result.exit_code == ExitCode.DENIED
    assert "'g' is Stable" in result.stderr and result.stdout == ""
    assert committed(wb) == COMMITTED


def test_the_state_is_checked_again_right_before_the_commit(wb):
    """A consumer that joins between the plan and the change stops it: groups() is asked again."""
    from workbench import offsets_reset

    seed(wb)

    async def go() -> None:
        async with await local(wb.db, stable_window_ms=0).connect() as idle_view:
            reset = await offsets_reset.plan_offsets_reset(
                idle_view, "g", [("t", None)], offsets_reset.parse_reset_to("earliest")
            )
        assert reset.state == "Empty"
        async with await local(wb.db).connect() as live_view:  # now the group looks Stable
            with pytest.raises(ResetRefused, match="is Stable"):
                await offsets_reset.execute_offsets_reset(live_view, reset)

    asyncio.run(go())
    assert committed(wb) == COMMITTED


def test_unknown_topic_partition_and_group_are_not_found(idle):
    result = idle("offsets", "reset", "g", "--topic", "nope", "--to", "1")
    assert result.exit_code == ExitCode.NOT_FOUND and "nope" in result.stderr
    result = idle("offsets", "reset", "g", "--topic", "t:1,7", "--to", "1")
    assert result.exit_code == ExitCode.NOT_FOUND and "no partition 7" in result.stderr
    result = idle("offsets", "reset", "nobody", "--topic", "t", "--to", "1")
    assert result.exit_code == ExitCode.NOT_FOUND and "'nobody'" in result.stderr


def test_bad_to_and_topic_are_usage_errors(idle):
    for bad in ("yesterday", "-5", "shift:5", "shift:+x", ""):
        result = idle("offsets", "reset", "g", "--topic", "t", "--to", bad)
        assert result.exit_code == ExitCode.USAGE, bad
        assert "earliest | latest | OFFSET" in result.stderr and "shift:+N" in result.stderr
    assert "shift:-5" in idle("offsets", "reset", "g", "--topic", "t", "--to", "-5").stderr
    for bad in ("t:x", "t:", ":1"):
        result = idle("offsets", "reset", "g", "--topic", bad, "--to", "1")
        assert result.exit_code == ExitCode.USAGE, bad
    assert idle("offsets", "reset", "g", "--to", "1").exit_code == ExitCode.USAGE  # --topic is required


def test_shift_without_a_committed_offset_names_the_partition(idle, wb):
    async def go() -> None:
        async with await local(wb.db).connect() as conn:
            await conn.create_topic("u", 2)
            await conn.commit_offsets("g", {("u", 0): 0})

    asyncio.run(go())
    result = idle("offsets", "reset", "g", "--topic", "u", "--to", "shift:+1")
    assert result.exit_code == ExitCode.USAGE
    assert "'u' partition 1" in result.stderr
    # absolute targets work there: "-" for the partition never committed
    rows = plan(idle, "--topic", "u", "--to", "earliest")
    assert (rows[1]["current"], rows[1]["new"]) == (None, 0)
    table = idle("offsets", "reset", "g", "--topic", "u:1", "--to", "latest").stdout
    assert table.splitlines()[1].split()[:4] == ["g", "u", "1", "-"]


def test_adapters_without_groups_or_offset_changes_are_unsupported():
    from workbench import offsets_reset

    with pytest.raises(Unsupported, match="no consumer groups"):
        offsets_reset.ensure_reset_supported(Capabilities(), "x", execute=False)
    readable = Capabilities(consumer_groups=True)
    offsets_reset.ensure_reset_supported(readable, "rabbitmq", execute=False)  # a plan is fine
    with pytest.raises(Unsupported, match="cannot set"):
        offsets_reset.ensure_reset_supported(readable, "rabbitmq", execute=True)


def test_help_has_examples(wb):
    for argv in (("offsets", "--help"), ("offsets", "reset", "--help")):
        result = wb(*argv, broker=False)
        assert result.exit_code == 0 and "Example" in result.stdout, argv


def test_a_reset_asks_about_its_own_group_only(wb):
    """On a shared cluster groups() describes thousands of groups: the reset never calls it."""
    from workbench import offsets_reset

    seed(wb)

    async def every_group() -> list:
        raise AssertionError("groups() was called: it describes every group of the cluster")

    async def go() -> dict[int, int | None]:
        async with await local(wb.db, stable_window_ms=0).connect() as conn:
            conn.groups = every_group
            reset = await offsets_reset.plan_offsets_reset(
                conn, "g", [("t", [1])], offsets_reset.parse_reset_to("earliest")
            )
            assert reset.state == "Empty" and reset.resettable
            figures = await offsets_reset.execute_offsets_reset(conn, reset)
            return {p.partition: p.committed for p in figures.partitions}

    assert asyncio.run(go()) == {0: 5, 1: 0, 2: 7}
