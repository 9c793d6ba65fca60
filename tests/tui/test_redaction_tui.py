"""Redaction in the TUI: values planted to match each [mask] rule (a field path, a wildcard, a
header, a pattern in free text and in a key; styles fixed, last4 and hash) appear nowhere a person
or a file sees them: the event list, the detail pane, the trace view, SVG snapshots, the clipboard
after copy value / copy envelope, a saved JSONL file, a compensation's dry run (while the
compensation itself publishes the original fields). Copy original gives the original on a normal
profile and is refused under mask_required; a filter sees a masked field only where its rule is
filterable."""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench import config, service
from workbench.broker import OutgoingEvent, Position
from workbench.cli import app as cli
from workbench.config import Target
from workbench.errors import ConfigError
from workbench.events.envelope import dumps_event
from workbench.events.redaction import REDACTED_HEADER
from workbench.tui import bindings, masking
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.detail import DetailScreen
from workbench.tui.screens.sagas import CompensateDialog
from workbench.tui.screens.save import SaveDialog
from workbench.tui.screens.trace import TraceScreen

from .conftest import NOW_MS, SIZE, enter_text, make_app, open_events, rendered, settle
from .test_sagas_screen import choose, open_sagas

TOPIC = "payments"
CORRELATION = "corr-42"
#: What each rule must hide. A value shown cut would still give away its beginning: the first ten
#: characters are looked for too.
PLANTED = {
    "value.customer.email (fixed)": "ada.leakmail@example.com",
    "value.customer.id (hash, filterable)": "CUST-LEAKID-4242",
    "value.card.* (last4)": "Zelda Leakholder",
    "a card number in value.card.* (pattern)": "4111111111111111",
    "header authorization (hash)": "Bearer sk-leaktoken-9f8e7d",
    "a card number in free text (pattern)": "5500 0000 0000 0004",
    "a card number in a key (pattern)": "4000 0000 0000 0002",
}
PROFILE_FILE = """
[profiles.demo]
broker = "local:events.db"

[profiles.locked]
broker = "local:events.db"
mask_required = true

[mask]
salt = "${WORKBENCH_MASK_SALT}"
fields = ["value.customer.email"]
patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']

[[mask.rules]]
field = "value.card.*"
style = "last4"

[[mask.rules]]
header = "authorization"
style = "hash"

[[mask.rules]]
field = "value.customer.id"
style = "hash"
filterable = true
"""
ORDER = {
    "correlationId": CORRELATION,
    "customer": {
        "id": PLANTED["value.customer.id (hash, filterable)"],
        "email": PLANTED["value.customer.email (fixed)"],
    },
    "card": {"holder": PLANTED["value.card.* (last4)"], "number": PLANTED["a card number in value.card.* (pattern)"]},
    "note": f"paid with {PLANTED['a card number in free text (pattern)']} at the desk",
    "amount": 42.5,
}
ORIGINAL_VALUE = json.dumps(ORDER)
REFUND = f"refund to card {PLANTED['a card number in free text (pattern)']}"


def leaks(text: str) -> list[str]:
    """The planted values (or their beginnings) found in ``text`` (an SVG's text included), also
    where a line wrapped inside one (whitespace left out on both sides)."""
    squeezed = "".join(html.unescape(text.replace("&#160;", " ")).split())
    return [rule for rule, value in PLANTED.items() if "".join(value[:10].split()) in squeezed]


def shown(widget) -> str:
    """What a widget shows, its wrapped lines joined (whitespace as one space)."""
    return " ".join(rendered(widget).split())


def svg_leaks(app: WorkbenchApp) -> list[str]:
    return leaks(app.export_screenshot())


def load(name: str) -> Target:
    return config.resolve(config.load_config(Path("workbench.toml")).profile(name))


@pytest.fixture
def planted(isolated_home, monkeypatch) -> None:
    """The profile file with the [mask] rules, and two events carrying the planted values."""
    monkeypatch.setenv("WORKBENCH_MASK_SALT", "a-salt-of-the-tests")
    (isolated_home / "workbench.toml").write_text(PROFILE_FILE, encoding="utf-8")

    async def seed() -> None:
        async with service.connect(config.resolve(config.url_profile("local:events.db")), originals=True) as conn:
            await conn.create_topic(TOPIC, 1)
            headers = (
                ("authorization", PLANTED["header authorization (hash)"].encode()),
                ("correlation_id", b"corr-42"),
            )
            results = await conn.publish(
                TOPIC,
                [
                    OutgoingEvent(ORIGINAL_VALUE.encode(), b"order-1", headers, timestamp=NOW_MS),
                    OutgoingEvent(
                        REFUND.encode(),
                        f"card {PLANTED['a card number in a key (pattern)']}".encode(),
                        (("correlation_id", b"corr-42"),),
                        timestamp=NOW_MS + 1000,
                    ),
                ],
            )
        assert all(r.ok for r in results), results

    asyncio.run(seed())


async def _open(pilot, app: WorkbenchApp) -> None:
    await open_events(pilot, TOPIC, 2)
    await settle(pilot, lambda: app.main.stream.pump.scanned >= 2, "both events read")
    await pilot.press("home")


async def test_planted_values_are_shown_copied_and_saved_masked_and_copy_original_gives_the_original(
    planted, isolated_home
):
    app = make_app(load("demo"), now=lambda: NOW_MS / 1000)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        stream = app.main.stream
        assert "redacted by [mask] (5 rules)" in rendered(stream.query_one("#stream-title"))
        listed = rendered(stream.event_list)
        assert "order-1" in listed and "****" in listed and leaks(listed) == [], listed
        assert svg_leaks(app) == []

        first = stream.event_list.selected
        assert first is not None and first.key == b"order-1"
        await pilot.press("c")  # what is shown: redacted
        assert app.clipboard == first.value.decode() and leaks(app.clipboard) == []
        masked = json.loads(app.clipboard)
        assert masked["customer"]["email"] == "****" and masked["card"]["holder"] == "****lder"
        assert masked["customer"]["id"].startswith("hash:") and masked["note"] == "paid with **** at the desk"
        await pilot.press("C")
        assert app.clipboard == dumps_event(first) and leaks(app.clipboard) == []
        assert REDACTED_HEADER in app.clipboard
        await pilot.press("O")  # the original, on a profile that allows it
        assert app.clipboard == ORIGINAL_VALUE
        assert list(app._notifications)[-1].message.startswith("Copied the original value (not redacted)")

        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail pane")
        detail = shown(app.screen.query_one("#detail"))
        assert leaks(detail) == [] and svg_leaks(app) == []
        assert "redacted by [mask]: shown, copied and saved masked · O copies the original value" in detail
        assert "****lder" in detail and "hash:" in detail  # last4 and hash styles, the header's too
        app.copy_to_clipboard("")
        await pilot.press("c")
        assert app.clipboard == first.value.decode()
        await pilot.press("O")
        assert app.clipboard == ORIGINAL_VALUE
        await pilot.press("escape")

        await pilot.press("s")  # saved as shown: redacted, each line with the marker header
        await settle(pilot, lambda: isinstance(app.screen, SaveDialog), "the save dialog")
        assert "redacted by [mask] (5 rules)" in rendered(app.screen.query_one("#save-dialog"))
        await pilot.press("enter")
        await settle(pilot, lambda: app.main.saved is not None, "the file")
        saved = app.main.saved.read_text(encoding="utf-8")
        lines = saved.splitlines()
        assert len(lines) == 2 and leaks(saved) == []
        assert all([REDACTED_HEADER, "true"] in json.loads(line)["headers"] for line in lines)

    argv = ["--profile", "demo", "publish", TOPIC, "--file", str(app.main.saved)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, argv)  # the CLI runs its own event loop
    assert result.exit_code != 0 and "redacted copy" in result.output, result.output


async def test_a_mask_required_profile_refuses_copy_original_and_keeps_no_original(planted):
    app = make_app(load("locked"))
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert all(masking.original(event) is None for event in app.main.stream.buffer)
        app.copy_to_clipboard("untouched")
        await pilot.press("O")
        assert app.clipboard == "untouched"
        note = list(app._notifications)[-1]
        assert note.title == "Copy refused" and note.message.startswith(
            "Profile 'locked' requires redaction (mask_required = true): the original value is not copied."
        )
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail pane")
        detail = shown(app.screen.query_one("#detail"))
        assert "requires redaction (mask_required = true)" in detail and leaks(detail) == []
        await pilot.press("O")
        assert app.clipboard == "untouched"


async def test_a_filter_sees_a_masked_field_only_where_its_rule_is_filterable(planted):
    app = make_app(load("demo"))
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        stream = app.main.stream

        async def filtered(expression: str) -> int:
            await pilot.press("slash")
            await enter_text(pilot, expression)
            await settle(
                pilot, lambda: stream.pump is not None and stream.pump.scanned >= 2, f"the read of {expression}"
            )
            return len(stream.buffer)

        assert await filtered(f'value.customer.email == "{PLANTED["value.customer.email (fixed)"]}"') == 0
        assert await filtered(f'value.card.holder == "{PLANTED["value.card.* (last4)"]}"') == 0
        assert await filtered(f'value.customer.id == "{PLANTED["value.customer.id (hash, filterable)"]}"') == 1
        assert (
            leaks(rendered(stream.event_list)) == []
        )  # matched, still shown masked (the filter box has what was typed)
        assert await filtered('value.customer.email == "****"') == 1  # what is shown can be filtered on


async def test_the_trace_view_and_its_hops_show_the_planted_values_masked(planted):
    app = make_app(load("demo"))
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TraceScreen), "the trace view")
        trace = app.screen
        assert trace.initial == CORRELATION
        await settle(pilot, lambda: trace.searches == 1, "the trace")
        assert trace.result is not None and len(trace.result.hops) == 2
        assert svg_leaks(app) == []
        await pilot.press("down", "enter")  # the second hop: the key with a card number
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "a hop's detail")
        assert app.screen.event.key is not None and app.screen.event.key.startswith(b"card ")
        assert leaks(shown(app.screen.query_one("#detail"))) == [] and svg_leaks(app) == []


async def test_a_compensation_from_the_saga_view_publishes_original_fields_and_shows_them_masked(target, isolated_home):
    """The saga view's events are redacted; the compensation is filled from the originals (as
    `saga compensate`), and its dry run is shown redacted."""
    (isolated_home / "workbench.toml").write_text(
        '[profiles.demo]\nbroker = "local:events.db"\n\n[mask]\nfields = ["value.customerId"]\n', encoding="utf-8"
    )
    masked = load("demo")
    app = make_app(masked)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sagas(pilot, app, masked)
        await choose(pilot, screen, "FAILED", compensations=2)
        corr = screen.current().correlation_id
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompensateDialog), "the compensation dialog")
        dialog = app.screen
        await settle(pilot, lambda: dialog.plan is not None, "the plan from the original events")
        plan = shown(dialog.query_one("#compensate-plan"))
        assert "Dry run: 2 event(s)" in plan and '"customerId": "****"' in plan and "CUS-" not in plan
        await enter_text(pilot, corr)
        await settle(pilot, lambda: dialog.result is not None and not dialog.running, "the execution", timeout=60)
        assert dialog.result.outcome == "done" and all(r.confirmed for r in dialog.result.results)

    async with service.connect(masked, originals=True) as conn:
        batches = conn.read("orders", Position.beginning())
        values = [json.loads(event.value) async for batch in batches for event in batch]
    cancelled = [v for v in values if v.get("correlationId") == corr and v.get("reason") == "saga compensation"]
    assert len(cancelled) == 1 and re.fullmatch(r"CUS-\d{5}", cancelled[0]["customerId"]), cancelled


def test_copy_original_is_rebindable_and_may_not_take_a_copy_key():
    assert bindings.keymap({"copy_original": "ctrl+o"}, "workbench.toml", WorkbenchApp) == {"copy_original": "ctrl+o"}
    with pytest.raises(ConfigError, match="key 'c' is bound twice \\(copy_original and copy_value\\)"):
        bindings.keymap({"copy_original": "c"}, "workbench.toml", WorkbenchApp)


async def test_without_mask_rules_copy_original_is_not_offered(target, counts):
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await open_events(pilot, "orders", counts["orders"])
        assert app.check_action("copy_value", ()) and not app.check_action("copy_original", ())
        assert "redacted" not in rendered(app.main.stream.query_one("#stream-title"))


def _stored_snapshot(request) -> str:
    found = list((Path(__file__).parent / "__snapshots__").rglob(f"{request.node.name}.svg"))
    assert len(found) == 1, found
    return found[0].read_text(encoding="utf-8")


def test_snapshot_of_the_redacted_event_list(planted, snap_compare, request):
    app = make_app(load("demo"))

    async def run_before(pilot):
        await _open(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert leaks(_stored_snapshot(request)) == []


def test_snapshot_of_the_detail_pane_of_a_redacted_event(planted, snap_compare, request):
    app = make_app(load("demo"))

    async def run_before(pilot):
        await _open(pilot, app)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail pane")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert leaks(_stored_snapshot(request)) == []
