"""Redaction on the local adapter: values planted for each kind of [mask] rule never reach an output
that a person or a file sees (tables, JSON, JSONL, raw, capture files, trace, saga show, replay
plans), unless the output is machine output asked for without --redact on a profile that allows it;
mask_required refuses those; a redacted copy is never published back; filters cannot probe a masked
value unless its rule is filterable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.events.redaction import REDACTED_HEADER

EMAIL = "ann.planted@example.com"  # field value.customer.email, fixed
CUSTOMER = "cust-planted-42"  # field value.customer.id, hash, filterable
CARD = "4000 0566 5566 5556"  # field value.card.* (wildcard), last4
FREE_TEXT_CARD = "5105105105105100"  # pattern, in free text
TOKEN = "Bearer planted-token-9f8e"  # header authorization
SSN = "078-05-1120"  # field key.ssn
CORRELATION = "corr-redaction-1"
PLANTED = (EMAIL, CUSTOMER, CARD, FREE_TEXT_CARD, TOKEN, SSN, "planted-token")

MASK = """
[mask]
fields = ["value.customer.email", "key.ssn"]
headers = ["Authorization"]
patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']

[[mask.rules]]
field = "value.card.*"
style = "last4"

[[mask.rules]]
field = "value.customer.id"
style = "hash"
filterable = true
"""


def config(tmp_path: Path, monkeypatch, db: Path, extra: str = "", salt: str | None = None) -> Path:
    path = tmp_path / "workbench.toml"
    body = MASK.replace("[mask]\n", f'[mask]\nsalt = "{salt}"\n', 1) if salt else MASK
    path.write_text(
        body
        + f"""
[profiles.dev]
broker = "local:{db}"

[profiles.prod]
broker = "local:{db}"
mask_required = true
"""
        + extra
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    return path


def event_line(n: int = 1) -> str:
    value = {
        "type": "OrderPlaced",
        "customer": {"email": EMAIL, "id": CUSTOMER, "name": "Ann"},
        "card": {"number": CARD, "expiry": "12/29"},
        "note": f"paid with {FREE_TEXT_CARD} at the desk",
        "n": n,
    }
    return json.dumps(
        {
            "key": json.dumps({"ssn": SSN}),
            "value": json.dumps(value),
            "headers": [["authorization", TOKEN], ["correlation_id", CORRELATION]],
        }
    )


@pytest.fixture
def planted(wb, tmp_path, monkeypatch):
    config(tmp_path, monkeypatch, wb.db)
    assert wb("topics", "create", "orders").exit_code == 0
    result = wb("publish", "orders", "--file", "-", input=event_line(1) + "\n" + event_line(2) + "\n")
    assert result.exit_code == 0, result.output
    return wb


def assert_clean(text: str) -> None:
    for value in PLANTED:
        assert value not in text, f"{value!r} leaked"


def test_table_json_and_raw_outputs_show_no_planted_value(planted):
    for args in (
        ["tail", "orders"],
        ["tail", "orders", "-o", "jsonl", "--redact"],
        ["tail", "orders", "-o", "json", "--redact"],
        ["tail", "orders", "--follow", "--max", "2", "--from", "beginning"],
    ):
        result = planted(*args)
        assert result.exit_code == 0, result.output
        assert "****" in result.stdout
        assert_clean(result.stdout + result.stderr)
    raw = planted.subprocess("tail", "orders", "-o", "raw", "--redact")  # raw refuses a terminal: a pipe here
    assert raw.returncode == 0, raw.stderr
    assert_clean(raw.stdout.decode())


def test_each_style_and_the_marker(planted):
    lines = [json.loads(x) for x in planted("tail", "orders", "-o", "jsonl", "--redact").stdout.splitlines()]
    first, second = (json.loads(x["value"]) for x in lines)
    assert first["customer"]["email"] == "****"
    assert first["card"] == {"number": "****5556", "expiry": "****2/29"}  # last4 of the wildcard
    assert first["note"] == "paid with **** at the desk"
    assert re.fullmatch(r"hash:[0-9a-f]{16}", first["customer"]["id"])
    assert first["customer"]["id"] == second["customer"]["id"]  # equal values stay equal
    assert first["customer"]["name"] == "Ann" and first["n"] == 1  # what no rule names is untouched
    assert json.loads(lines[0]["key"]) == {"ssn": "****"}
    assert dict(lines[0]["headers"]) == {
        "authorization": "****",
        "correlation_id": CORRELATION,
        REDACTED_HEADER: "true",
    }


def test_the_hash_is_the_same_across_runs_with_a_salt(wb, tmp_path, monkeypatch):
    config(tmp_path, monkeypatch, wb.db, salt="${MASK_SALT}")
    monkeypatch.setenv("MASK_SALT", "team-salt")
    wb("topics", "create", "orders")
    wb("publish", "orders", "--file", "-", input=event_line() + "\n")

    def hashed() -> str:
        line = wb("tail", "orders", "-o", "jsonl", "--redact").stdout
        return json.loads(json.loads(line)["value"])["customer"]["id"]

    assert hashed() == hashed()  # two processes' worth of runs, one salt: the same hash
    first = hashed()
    monkeypatch.setenv("MASK_SALT", "another-salt")
    assert hashed() != first


def test_machine_output_without_redact_is_the_original_on_a_profile_that_allows_it(planted):
    line = planted("tail", "orders", "-o", "jsonl").stdout.splitlines()[0]
    assert EMAIL in line and REDACTED_HEADER not in line  # exactly what `publish --file` copies back


def test_mask_required_refuses_every_unredacted_machine_output(planted):
    for args in (
        ["-p", "prod", "tail", "orders", "-o", "jsonl"],
        ["-p", "prod", "tail", "orders", "-o", "json"],
        ["-p", "prod", "capture", "orders", "--to", "x.db"],
        ["-p", "prod", "trace", CORRELATION, "--since", "beginning", "--to", "t.db"],
    ):
        result = planted(*args, broker=False)
        assert result.exit_code == 6, (args, result.output)
        assert "requires redaction (mask_required = true)" in result.stderr
        assert "--redact" in result.stderr
    raw = planted.subprocess("tail", "orders", "-o", "raw")
    assert raw.returncode == 0  # (the default profile allows it)
    argv = ["-p", "prod", "tail", "orders", "-o", "raw"]
    import subprocess
    import sys

    refused = subprocess.run([sys.executable, "-m", "workbench", *argv], capture_output=True, timeout=60)
    assert refused.returncode == 6 and b"mask_required" in refused.stderr
    assert not Path("x.db").exists() and not Path("t.db").exists()  # nothing half-done
    allowed = planted("-p", "prod", "tail", "orders", "-o", "jsonl", "--redact", broker=False)
    assert allowed.exit_code == 0
    assert_clean(allowed.stdout)
    table = planted("-p", "prod", "tail", "orders", broker=False)
    assert table.exit_code == 0 and "****" in table.stdout
    assert_clean(table.stdout)


def test_redact_without_rules_is_a_usage_error(wb, tmp_path, monkeypatch):
    (tmp_path / "none.toml").write_text(f'[profiles.dev]\nbroker = "local:{wb.db}"\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(tmp_path / "none.toml"))
    wb("topics", "create", "orders")
    result = wb("tail", "orders", "-o", "jsonl", "--redact")
    assert result.exit_code == 2 and "no [mask] rules" in result.stderr


def test_a_redacted_copy_is_never_published_back(planted, tmp_path):
    redacted = planted("tail", "orders", "-o", "jsonl", "--redact").stdout
    before = planted("topics", "-o", "json").stdout
    result = planted("publish", "orders", "--file", "-", input=redacted)
    assert result.exit_code == 8
    assert "<stdin>:1" in result.stderr or "-:1" in result.stderr or ":1:" in result.stderr
    assert "a redacted copy" in result.stderr and "without --redact" in result.stderr
    assert planted("topics", "-o", "json").stdout == before  # nothing sent


def test_capture_with_redact_is_clean_and_replay_refuses_it(planted, tmp_path):
    file = tmp_path / "ticket.db"
    assert planted("capture", "orders", "--redact", "--to", str(file)).exit_code == 0
    assert_clean(file.read_bytes().decode("utf-8", "replace"))
    offline = planted("--broker", f"local:{file}", "tail", "orders", "-o", "jsonl", broker=False)
    assert offline.exit_code == 0 and REDACTED_HEADER in offline.stdout
    assert_clean(offline.stdout)
    planted("topics", "create", "orders-again")
    refused = planted("replay", str(file), "--to", "orders-again", "--execute")
    assert refused.exit_code == 8, refused.output
    assert "a redacted copy" in refused.stderr
    assert json.loads(planted("describe", "orders-again", "-o", "json").stdout)["partitions"][0]["end"] == 0
    original = tmp_path / "original.db"
    assert planted("capture", "orders", "--to", str(original)).exit_code == 0
    assert EMAIL.encode() in original.read_bytes()  # without --redact, the capture is exact


def test_trace_and_its_capture_file(planted, tmp_path):
    shown = planted("trace", CORRELATION, "--since", "beginning", "-o", "json")
    assert shown.exit_code == 0, shown.output
    assert_clean(shown.stdout)
    table = planted("trace", CORRELATION, "--since", "beginning")
    assert table.exit_code == 0
    assert_clean(table.stdout)
    kept = tmp_path / "trace.db"
    assert planted("trace", CORRELATION, "--since", "beginning", "--to", str(kept), "--redact").exit_code == 0
    assert_clean(kept.read_bytes().decode("utf-8", "replace"))
    exact = tmp_path / "trace-exact.db"
    assert planted("trace", CORRELATION, "--since", "beginning", "--to", str(exact)).exit_code == 0
    assert EMAIL.encode() in exact.read_bytes()


def test_replay_plan_is_shown_redacted_and_sends_the_originals(planted):
    planted("topics", "create", "orders-copy")
    for fmt in ("table", "json"):
        plan = planted("replay", "orders", "--to", "orders-copy", "-o", fmt)
        assert plan.exit_code == 0, plan.output
        assert_clean(plan.stdout)
    done = planted("replay", "orders", "--to", "orders-copy", "--execute")
    assert done.exit_code == 0, done.output
    copied = planted("tail", "orders-copy", "-o", "jsonl").stdout
    assert EMAIL in copied and REDACTED_HEADER not in copied


def test_filters_cannot_probe_a_masked_value_unless_its_rule_is_filterable(planted):
    for expression in (
        f'value.customer.email == "{EMAIL}"',
        f'contains(raw, "{EMAIL}")',
        f'headers.authorization == "{TOKEN}"',
        f'contains(value.note, "{FREE_TEXT_CARD}")',
        f'value.card.number == "{CARD}"',
    ):
        probe = planted("tail", "orders", "--filter", expression, "-o", "jsonl", "--redact")
        assert probe.exit_code == 0
        assert probe.stdout == "", expression
        unmasked = planted("tail", "orders", "--filter", expression, "-o", "jsonl")  # originals: it matches
        assert len(unmasked.stdout.splitlines()) == 2, expression
    allowed = planted("tail", "orders", "--filter", f'value.customer.id == "{CUSTOMER}"')
    assert allowed.exit_code == 0
    assert allowed.stdout.count("****") >= 2 and CUSTOMER not in allowed.stdout
    assert "2 matched" in allowed.stderr


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ('[mask]\nfields = ["customer.email"]\n', "field 'customer.email' is not a path"),
        ('[mask]\nfields = ["value.a"]\nstyle = "blur"\n', "'blur' is not a mask style"),
        ("[mask]\npatterns = ['(unclosed']\n", "is not a regular expression"),
        ('[mask]\n[[mask.rules]]\nfield = "value.a"\nheader = "x"\n', "needs exactly one of field, header or pattern"),
        ('[mask]\nfields = ["value.a"]\nsalt = ""\n', "salt must be a non-empty string"),
        ('[mask]\nfeilds = ["value.a"]\n', "unknown field 'feilds'"),
    ],
)
def test_a_wrong_mask_table_is_named(wb, tmp_path, monkeypatch, mask, message):
    path = tmp_path / "workbench.toml"
    path.write_text(mask + f'\n[profiles.dev]\nbroker = "local:{wb.db}"\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    result = wb("-p", "dev", "topics", broker=False)
    assert result.exit_code == 3
    assert message in result.stderr and "[mask]" in result.stderr and str(path) in result.stderr


def test_mask_required_needs_rules(wb, tmp_path, monkeypatch):
    path = tmp_path / "workbench.toml"
    path.write_text(f'[profiles.prod]\nbroker = "local:{wb.db}"\nmask_required = true\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    result = wb("-p", "prod", "topics", broker=False)
    assert result.exit_code == 3 and "mask_required = true, but the file has no [mask] rules" in result.stderr


def test_the_demo_data_shown_through_sagas_is_redacted(wb, tmp_path, monkeypatch):
    """The demo's customers and cards (its personal data) stay hidden in saga show and tail."""
    from workbench.demo.scenario import FIRST_NAMES, TEST_CARDS

    path = tmp_path / "workbench.toml"
    path.write_text(
        "[mask]\n"
        'fields = ["value.customer.email", "value.customer.phone", "value.customer.name", "value.card.holder"]\n'
        "patterns = ['\\b(?:\\d[ -]?){12,18}\\d\\b']\n"
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    assert wb("demo", "--orders", "40").exit_code == 0
    originals = wb("tail", "payments", "-o", "jsonl").stdout + wb("tail", "orders", "-o", "jsonl").stdout
    assert "@example.com" in originals and any(card in originals for card in TEST_CARDS)
    shown = wb("tail", "orders").stdout + wb("tail", "payments").stdout
    instances = [json.loads(x) for x in wb("saga", "list", "-o", "jsonl").stdout.splitlines()]
    for instance in instances[:10]:
        shown += wb("saga", "show", instance["correlation_id"], "-o", "json").stdout
    assert "****" in shown
    assert "@example.com" not in shown and "+44 7700" not in shown
    assert not any(card in shown for card in TEST_CARDS)
    assert not any(f'"{name} ' in shown for name in FIRST_NAMES)


def test_profiles_say_which_redact(planted):
    rows = {r["name"]: r["redaction"] for r in json.loads(planted("profiles", "-o", "json", broker=False).stdout)}
    assert rows == {"dev": "on", "prod": "required"}
    assert "REDACTION" in planted("profiles", broker=False).stdout


def test_a_compensation_is_shown_redacted_and_published_from_the_originals(wb, tmp_path, monkeypatch):
    """saga compensate reads the originals (a compensation filled from masked events would publish
    masked fields) and prints its plan, dry run and report, redacted."""
    path = tmp_path / "workbench.toml"
    path.write_text('[mask]\nfields = ["value.customerId"]\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    assert wb("demo", "--orders", "60").exit_code == 0
    failed = [json.loads(x) for x in wb("saga", "list", "--state", "failed", "-o", "jsonl").stdout.splitlines()]
    target = next(i for i in failed if not i["past_pivot"])
    corr = target["correlation_id"]
    for fmt in ("table", "json"):
        dry = wb("saga", "compensate", corr, "-o", fmt)
        assert dry.exit_code == 0, dry.output
        assert "CUS-" not in dry.stdout and "****" in dry.stdout
    done = wb("saga", "compensate", corr, "--execute", "--yes", "--wait", "10", "-o", "json")
    assert done.exit_code == 0, done.output
    assert "CUS-" not in done.stdout
    published = {e["id"] for e in json.loads(done.stdout)["events"]}
    originals = [json.loads(x) for x in wb("tail", "orders", "-o", "jsonl").stdout.splitlines()]
    originals += [json.loads(x) for x in wb("tail", "payments", "-o", "jsonl").stdout.splitlines()]
    sent = [json.loads(e["value"]) for e in originals if dict(e["headers"]).get("ce_id") in published]
    assert sent and all(v["customerId"].startswith("CUS-") for v in sent)  # the originals, not "****"
    history = wb("saga", "history", corr, "-o", "json")  # the audit log is a file people read
    assert history.exit_code == 0 and "****" in history.stdout and "CUS-" not in history.stdout


def test_lag_explain_shows_the_stuck_event_redacted(planted):
    import asyncio

    from workbench import config, service

    async def commit() -> None:
        target = config.resolve(config.url_profile(f"local:{planted.db}"))
        async with service.connect(target) as conn:
            await conn.commit_offsets("billing", {("orders", 0): 0})

    asyncio.run(commit())
    for fmt in ("table", "json"):
        explained = planted("lag", "explain", "billing", "--samples", "2", "--interval", "0.1", "-o", fmt)
        assert explained.exit_code == 0, explained.output
        assert "****" in explained.stdout
        assert_clean(explained.stdout)


@pytest.mark.parametrize("filterable", [False, True])
def test_trace_finds_a_masked_correlation_id_only_where_its_rule_is_filterable(wb, tmp_path, monkeypatch, filterable):
    path = tmp_path / "workbench.toml"
    path.write_text(
        f'[mask]\n[[mask.rules]]\nheader = "correlation_id"\nstyle = "hash"\nfilterable = {str(filterable).lower()}\n'
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    wb("topics", "create", "orders")
    wb("publish", "orders", "--file", "-", input=event_line() + "\n")
    found = wb("trace", CORRELATION, "--since", "beginning", "-o", "json")
    if not filterable:
        assert found.exit_code == 5  # nobody probes a masked id by tracing it
        return
    assert found.exit_code == 0, found.output
    (hop,) = json.loads(found.stdout)["hops"]
    assert CORRELATION not in json.dumps(hop)  # found by its original, shown hashed
