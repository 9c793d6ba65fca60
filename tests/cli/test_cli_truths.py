"""The CLI says what is true (issue 19): not found is 5 everywhere, a missing local file is not a new
empty log, all-or-nothing publishing, real counts, saga windows, complete machine output, warnings."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from workbench.broker import Event, PublishResult
from workbench.cli import app
from workbench.errors import ExitCode


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- item 1: a missing local file


@pytest.mark.parametrize(
    "verb",
    [
        ("topics",),
        ("describe", "orders"),
        ("tail", "orders"),
        ("groups",),
        ("publish", "orders", "--value", "x"),
        ("saga", "list"),
        ("topics", "delete", "x", "--yes"),
    ],
)
def test_a_mistyped_local_path_is_no_such_file_and_creates_nothing(tmp_path, verb):
    typo = tmp_path / "incidnet.db"
    result = CliRunner().invoke(app, ["--broker", f"local:{typo}", *verb], catch_exceptions=False)
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert "no such file" in result.stderr and str(typo) in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no log, no -wal, no -shm


def test_a_missing_directory_is_no_such_file_for_reads_and_unreachable_for_creating(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    read = CliRunner().invoke(app, ["--broker", f"local:{missing}", "topics"])
    assert read.exit_code == ExitCode.NOT_FOUND and "no such file" in read.stderr
    create = CliRunner().invoke(app, ["--broker", f"local:{missing}", "topics", "create", "t"])
    assert create.exit_code == ExitCode.UNREACHABLE and "no/such/dir" in create.stderr


def test_only_verbs_that_create_something_create_the_log(wb):
    assert not wb.db.exists()
    assert wb("topics", "create", "orders").exit_code == 0 and wb.db.exists()
    wb.db.unlink()
    assert wb("demo", "--orders", "1").exit_code == 0 and wb.db.exists()
    assert wb("topics").exit_code == 0


def test_a_configured_log_is_created_on_first_use_unless_its_profile_says_not(tmp_path):
    config = tmp_path / "workbench.toml"
    config.write_text(
        '[profiles.scratch]\nadapter = "local"\npath = "scratch.db"\n'
        '[profiles.strict]\nadapter = "local"\npath = "strict.db"\ncreate = false\n'
    )
    env = {"WORKBENCH_CONFIG": str(config)}
    scratch = CliRunner().invoke(app, ["-p", "scratch", "topics"], env=env)
    assert scratch.exit_code == 0, scratch.output
    assert (tmp_path / "scratch.db").exists()
    strict = CliRunner().invoke(app, ["-p", "strict", "topics"], env=env)
    assert strict.exit_code == ExitCode.NOT_FOUND and "no such file" in strict.stderr
    assert not (tmp_path / "strict.db").exists()


def test_the_builtin_default_log_still_works_before_the_demo(isolated_home):
    result = CliRunner().invoke(app, ["topics"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "no topics" in result.stderr and "workbench demo" in result.stderr


# --------------------------------------------------------------------------- items 2, 3: publish checks first


def test_publishing_to_a_missing_topic_is_not_found(wb):
    wb("topics", "create", "orders")
    result = wb("publish", "nope", "--value", "x")
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert "'nope' does not exist" in result.stderr


def test_an_out_of_range_partition_on_line_2_publishes_nothing(wb, tmp_path):
    wb("topics", "create", "orders", "--partitions", "3")
    source = tmp_path / "events.jsonl"
    source.write_text('{"value": "a", "partition": 0}\n\n{"value": "b", "partition": 9}\n')
    result = wb("publish", "orders", "--file", str(source))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"{source}:3: field 'partition': topic 'orders' has no partition 9 (partitions 0..2)" in result.stderr
    assert wb("tail", "orders", "-o", "jsonl").stdout == ""  # nothing was sent, not even line 1
    value = wb("publish", "orders", "--value", "x", "--partition", "9")
    assert value.exit_code == ExitCode.NOT_FOUND and "--partition 9" in value.stderr
    assert wb("tail", "orders", "-o", "jsonl").stdout == ""


def test_stream_mode_stops_at_an_out_of_range_partition(wb):
    wb("topics", "create", "orders", "--partitions", "3")
    result = wb(
        "publish",
        "orders",
        "--file",
        "-",
        "--stream",
        input='{"value": "a", "partition": 0}\n{"value": "b", "partition": 9}\n',
    )
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "stdin:2: field 'partition'" in result.stderr and "the lines before it were published" in result.stderr


# --------------------------------------------------------------------------- item 4: sparse logs


def test_describe_counts_events_of_a_sparse_log(tmp_path):
    from workbench_local import LocalAdapter

    path = tmp_path / "trace.db"

    async def restore() -> None:
        conn = await LocalAdapter({"path": str(path)}).connect()
        try:
            await conn.local_restore(
                "orders",
                1,
                [Event("orders", 0, 3, 1000, None, b"a", ()), Event("orders", 0, 141, 2000, None, b"b", ())],
            )
        finally:
            await conn.close()

    asyncio.run(restore())
    runner = CliRunner()
    table = runner.invoke(app, ["--broker", f"local:{path}", "describe", "orders"])
    assert table.exit_code == 0, table.output
    assert "orders: 2 events" in table.stdout and "142 events" not in table.stdout
    assert "offsets have gaps" in table.stderr
    data = json.loads(runner.invoke(app, ["--broker", f"local:{path}", "describe", "orders", "-o", "json"]).stdout)
    assert data["count"] == 2 and data["partitions"][0]["count"] == 2 and data["partitions"][0]["end"] == 142
    assert "event_counts" not in data["metadata"]


# --------------------------------------------------------------------------- item 7: machine output


def test_describe_jsonl_is_one_line(wb):
    wb("topics", "create", "orders", "--partitions", "2")
    out = wb("describe", "orders", "-o", "jsonl").stdout
    assert len(out.splitlines()) == 1 and json.loads(out)["name"] == "orders"


def test_publish_json_says_where_each_event_landed(wb, tmp_path):
    wb("topics", "create", "orders", "--partitions", "2")
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"value": "a", "partition": 1}\n{"value": "b", "partition": 0}\n{"value": "c", "partition": 1}\n'
    )
    result = wb("publish", "orders", "--file", str(source), "-o", "json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    assert events == [
        {"origin": f"{source}:1", "partition": 1, "offset": 0},
        {"origin": f"{source}:2", "partition": 0, "offset": 0},
        {"origin": f"{source}:3", "partition": 1, "offset": 1},
    ]
    streamed = wb(
        "publish", "orders", "--file", "-", "--stream", "-o", "jsonl", input='{"value": "d", "partition": 0}\n'
    )
    assert json.loads(streamed.stdout)["events"] == [{"origin": "stdin:1", "partition": 0, "offset": 1}]


def test_demo_and_topic_changes_have_json_results(wb):
    created = wb("topics", "create", "t", "--partitions", "2", "-o", "json")
    assert created.exit_code == 0 and json.loads(created.stdout)["name"] == "t"
    assert len(json.loads(created.stdout)["partitions"]) == 2
    deleted = wb("-o", "json", "topics", "delete", "t", "--yes")
    assert deleted.exit_code == 0 and json.loads(deleted.stdout) == {"name": "t", "deleted": True}
    demo = wb("demo", "--orders", "2", "-o", "json")
    assert demo.exit_code == 0, demo.output
    summary = json.loads(demo.stdout)
    assert summary["published"] > 0 and set(summary["topics"]) == {"orders", "payments", "inventory", "shipping"}


def test_tail_json_is_the_same_before_and_after_the_verb(wb):
    wb("topics", "create", "t")
    wb("publish", "t", "--value", "x", "--count", "2")
    local, global_ = wb("tail", "t", "-o", "json"), wb("-o", "json", "tail", "t")
    assert local.exit_code == global_.exit_code == 0
    assert local.stdout == global_.stdout and len(lines(local)) == 2


def test_a_result_without_an_offset_never_says_offset_none(capsys):
    from workbench.cli.publish_report import report_publish
    from workbench.service import PublishReport

    report = PublishReport(confirmed=1, first=PublishResult(0, 0, None))
    assert report_publish("billing", report, "table") is None
    assert capsys.readouterr().out.strip() == "1 confirmed, 0 failed, 0 not sent -> billing at partition 0"
    report_publish("billing", report, "json", [("--value", PublishResult(0, 0, None))])
    assert json.loads(capsys.readouterr().out)["events"] == [{"origin": "--value", "partition": 0}]


# --------------------------------------------------------------------------- item 11: numbers for people


def test_counts_have_thousands_separators_for_people_only(wb):
    wb("topics", "create", "t")
    published = wb("publish", "t", "--value", "x", "--count", "1500")
    assert published.exit_code == 0 and published.stdout.startswith("1,500 confirmed, 0 failed, 0 not sent")
    assert "1,500" in wb("topics").stdout and "1,500 events" in wb("describe", "t").stdout
    assert json.loads(wb("topics", "-o", "json").stdout)[0]["count"] == 1500
