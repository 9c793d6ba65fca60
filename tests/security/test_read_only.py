"""`read_only` profiles: every verb that changes the broker is refused with exit code 6 and a clear
message, and nothing changed (topics, event counts, committed offsets). The TUI refuses to publish.

VERBS is the list of every state-changing verb; a new one belongs here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from workbench.errors import ExitCode

from .conftest import write_profiles

PROFILES = """
[profiles.rw]
broker = "local:events.db"
[profiles.ro]
broker = "local:events.db"
read_only = true
"""

FAILED_SAGA = "<failed saga id>"

#: Every verb that changes something on the broker, as run against the read-only profile.
VERBS = {
    "publish": ["publish", "orders", "--value", "x"],
    "publish --file": ["publish", "orders", "--file", "-"],
    "topics create": ["topics", "create", "new-topic"],
    "topics delete": ["topics", "delete", "orders", "--yes"],
    "offsets reset --execute": ["offsets", "reset", "analytics", "--topic", "orders", "--to", "earliest", "--execute"],
    "peek": ["peek", "orders", "--yes"],
    "demo": ["demo", "--force"],
    "demo --live": ["demo", "--live", "--rate", "100"],
    "replay --execute": ["replay", "orders", "--to", "orders-copy", "--execute"],
    "replay --to-origin --execute": ["replay", "orders", "--to-origin", "--execute"],
    "saga compensate --execute": ["saga", "compensate", FAILED_SAGA, "--execute", "--yes", "--reason", "test"],
}


@pytest.fixture(scope="module")
def seeded_log(tmp_path_factory) -> tuple[Path, str]:
    """A demo-seeded event log and a failed saga's id, made once for the module (seeding takes seconds);
    each test works on a copy."""
    where = tmp_path_factory.mktemp("seeded")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XDG_CONFIG_HOME": str(where / "config"),
        "XDG_DATA_HOME": str(where / "data"),
    }
    for argv in (
        ["demo", "--orders", "20"],
        ["topics", "create", "orders-copy"],
        ["saga", "list", "--state", "failed", "-o", "json"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "workbench", "--broker", "local:events.db", *argv],
            cwd=where,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
    failed = json.loads(done.stdout)
    assert failed, "the demo has failed sagas"
    return where / "events.db", failed[0]["correlation_id"]


def use_copy_of(log: Path, home: Path) -> None:
    for part in log.parent.glob(log.name + "*"):  # the file and any WAL left beside it
        shutil.copy(part, home / part.name)


def state() -> dict:
    """Everything a refused verb could have changed: topics, their offsets, committed group offsets."""
    from workbench import config, service

    async def read() -> dict:
        async with service.connect(config.resolve(config.url_profile("local:events.db"))) as conn:
            topics = await conn.list_topics()
            lag = await conn.lag()
        return {
            "topics": {t.name: [(p.start, p.end) for p in t.partitions] for t in topics},
            "committed": {(g.group_id, p.topic, p.partition): p.committed for g in lag for p in g.partitions},
        }

    return asyncio.run(read())


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_state_changing_verb_is_refused_and_changes_nothing(cli, seeded_log, verb):
    log, failed_saga = seeded_log
    write_profiles(cli.home, PROFILES)
    use_copy_of(log, cli.home)
    args = [failed_saga if a == FAILED_SAGA else a for a in VERBS[verb]]
    before = state()
    done = cli("--profile", "ro", *args, input=b'{"value": "x"}\n', timeout=60)
    err = done.err.decode()
    assert done.code == ExitCode.DENIED, f"{verb}: exit {done.code}\n{done.text}"
    assert "profile 'ro' is read-only: refusing to" in err, err
    assert "read_only = true" in err  # the hint says where it comes from
    assert state() == before


def test_the_list_covers_every_verb_of_the_cli():
    """A new verb that changes things must be added to VERBS (or to the read verbs here)."""
    import typer.main

    from workbench.cli import app

    command = typer.main.get_command(app)
    names = set()
    for name, sub in command.commands.items():
        subs = getattr(sub, "commands", None)
        names |= {f"{name} {s}" for s in subs} if subs else {name}
    read_verbs = {
        "describe",
        "groups",
        "tail",
        "lag",
        "trace",
        "capture",
        "profiles",
        "adapters",
        "topics",
        "saga list",
        "saga show",
        "saga history",
        "offsets reset",
        "replay",
        "saga compensate",
        "schemas",  # reads the schema registry only
        "dlq summary",  # its --peek requeues, and is refused on read-only profiles as peek is
        "dlq history",
        "lag explain",  # peeks a queue's head only on a writable profile
        "filters",  # reads the profile file only
    }
    covered = {verb.split(" --")[0] for verb in VERBS}
    unknown = names - read_verbs - covered
    assert not unknown, f"verbs neither in VERBS nor known to only read: {sorted(unknown)}"


async def test_the_tui_refuses_to_publish_on_a_read_only_profile(isolated_home):
    import dataclasses

    from tests.tui.conftest import make_app, make_target, open_topic, settle
    from workbench import service
    from workbench.broker import OutgoingEvent
    from workbench.tui.screens.publish import PublishDialog

    writable = make_target()
    async with service.connect(writable) as conn:
        await conn.create_topic("orders", 1)
        await conn.publish("orders", [OutgoingEvent(value=b"one")])
    read_only = dataclasses.replace(writable, profile=dataclasses.replace(writable.profile, read_only=True))
    before = await asyncio.to_thread(state)
    app = make_app(read_only)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_topic(pilot, "orders")
        for attempt in (lambda: pilot.press("p"), lambda: app.run_action("publish")):
            app.clear_notifications()
            await attempt()
            await settle(pilot, lambda: app._notifications, "the refusal")
            note = list(app._notifications)[-1]
            assert note.title == "Publish refused" and "read-only" in note.message
            assert not isinstance(app.screen, PublishDialog)
        with pytest.raises(Exception, match="read-only: refusing to publish"):
            await app.conn.publish("orders", [OutgoingEvent(value=b"two")])  # the connection refuses too
    assert await asyncio.to_thread(state) == before
