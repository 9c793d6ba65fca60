"""The [keys] table (checked against every binding of the app and its screens) and the publish
dialog's drafts, without running an app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench import config
from workbench.errors import ConfigError, UsageError
from workbench.tui import bindings, drafts, keys
from workbench.tui.app import WorkbenchApp

FILE = Path("workbench.toml")


def keymap(raw):
    return bindings.keymap(raw, FILE, WorkbenchApp)


def error_of(raw) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        keymap(raw)
    return caught.value


def test_overrides_are_normalised_to_textual_key_names():
    assert keymap({"publish": "P", "lag": "L", "help": "?", "switch_profile": "ctrl+k"}) == {
        "publish": "P",
        "lag": "L",
        "help": "question_mark",
        "switch_profile": "ctrl+k",
    }
    assert keymap({}) == {}
    assert keys.display("question_mark") == "?" and keys.display("ctrl+k") == "ctrl+k"


def test_a_screen_or_widget_binding_is_rebound_by_its_id_too():
    assert keymap({"lag.refresh": "f5", "events.toggle_pause": "x", "confirm.yes": "j"}) == {
        "lag.refresh": "f5",
        "events.toggle_pause": "x",
        "confirm.yes": "j",
    }
    assert keymap({"detail.top": "k,home"}) == {"detail.top": "k,home"}  # several keys, comma-separated
    assert keymap({"lag": {"refresh": "f5"}}) == {"lag.refresh": "f5"}  # lag.refresh = "f5" unquoted, in TOML


def test_a_dotted_id_from_the_profile_file_quoted_or_not(tmp_path):
    path = tmp_path / "workbench.toml"
    path.write_text('[keys]\nlag = "L"\n"lag.sort" = "o"\nevents.toggle_pause = "x"\n')
    settings = config.load_config(path)
    assert bindings.keymap(settings.keys, settings.path, WorkbenchApp) == {
        "lag": "L",
        "lag.sort": "o",
        "events.toggle_pause": "x",
    }


def test_an_unknown_id_is_named_and_the_known_ones_are_listed():
    error = error_of({"pubish": "p"})
    assert str(error) == "workbench.toml: [keys] field 'pubish': no key binding has the id 'pubish'"
    assert error.hint is not None
    listed = error.hint.split(": ", 1)[1].split(", ")
    assert {"publish", "lag", "lag.refresh", "events.toggle_pause", "help.close", "groups.top"} <= set(listed)
    assert listed == sorted(listed)


def test_the_saga_and_trace_views_are_ordinary_bindings():
    assert keymap({"sagas": "ctrl+g", "trace": "y"}) == {"sagas": "ctrl+g", "trace": "y"}
    assert "key 'S' is bound twice (lag and sagas)" in str(error_of({"lag": "S"}))
    assert keymap({"lag": "S", "sagas": "ctrl+g"}) == {"lag": "S", "sagas": "ctrl+g"}


def test_an_empty_key_is_refused():
    assert str(error_of({"lag": "  "})) == "workbench.toml: [keys] field 'lag': empty key"


def test_a_key_bound_twice_where_both_apply_is_refused_naming_both():
    assert "key 'l' is bound twice (lag and publish)" in str(error_of({"publish": "l"}))
    assert "field 'lag': key 'x' is bound twice (events and lag)" in str(error_of({"lag": "x", "events": "x"}))
    # the app's keys are in force on every screen, the main screen's under its widgets
    assert "key 'q' is bound twice (lag.refresh and quit)" in str(error_of({"lag.refresh": "q"}))
    assert "key 'space' is bound twice (events.toggle_pause and lag)" in str(error_of({"lag": "space"}))
    assert "key 'p' is bound twice (events.filter and publish)" in str(error_of({"events.filter": "p"}))


def test_a_key_may_repeat_where_the_bindings_never_apply_together():
    assert keymap({"lag.refresh": "p"}) == {"lag.refresh": "p"}  # p is the main screen's (publish), not the lag view's
    assert keymap({"save.cancel": "n"}) == {"save.cancel": "n"}  # n is the confirmation's, another dialog
    assert keymap({"events": "y"}) == {"events": "y"}  # y confirms in a dialog, where the main keys are not in force
    assert "bound twice (confirm.yes and quit_anywhere)" in str(error_of({"confirm.yes": "ctrl+c"}))  # ctrl+c is


def test_keys_that_are_not_keys_or_are_reserved_are_refused():
    assert "'hyper+q' is not a key" in str(error_of({"lag": "hyper+q"}))
    assert "is not a key" in str(error_of({"lag": "two words"}))
    assert "must be a string" in str(error_of({"lag": 3}))
    assert "reserved for the command palette" in str(error_of({"lag": "ctrl+p"}))
    assert "reserved for moving the focus" in str(error_of({"lag.refresh": "tab"}))


def test_the_profile_file_keys_table_reaches_the_validation(tmp_path):
    path = tmp_path / "workbench.toml"
    path.write_text('[profiles.dev]\nbroker = "local:events.db"\n[keys]\nlag = ""\n')
    settings = config.load_config(path)
    with pytest.raises(ConfigError, match=r"workbench.toml: \[keys\] field 'lag': empty key"):
        bindings.keymap(settings.keys, settings.path, WorkbenchApp)


# --------------------------------------------------------------------------- drafts


def test_json_errors_say_the_line_and_column():
    assert drafts.check_json('{"a": 1}').ok
    bad = drafts.check_json('{\n  "a": 1\n  "b": 2\n}')
    assert not bad.ok and (bad.line, bad.column) == (3, 3)
    assert bad.message == "line 3, column 3: Expecting ',' delimiter"
    assert "empty" in drafts.check_json("  ").message


def test_headers_are_name_value_lines():
    assert drafts.parse_headers("a=1\n\n# comment\n b = x=y\n") == (("a", b"1"), ("b", b" x=y"))
    with pytest.raises(UsageError, match="headers, line 2: 'nope' is not NAME=VALUE"):
        drafts.parse_headers("a=1\nnope")


def test_build_makes_n_copies_and_refuses_bad_fields():
    events = drafts.build("orders", "k1", "h=v", '{"n": 1}', "3")
    assert [origin for origin, _ in events] == ["copy 1", "copy 2", "copy 3"]
    event = events[0][1]
    assert (event.key, event.value, event.headers) == (b"k1", b'{"n": 1}', (("h", b"v"),))
    assert drafts.build("orders", "", "", "{}", "1")[0][1].key is None
    for args, message in (
        (("", "", "", "{}", "1"), "topic: empty"),
        (("t", "", "", "{", "1"), "value: line 1, column 2"),
        (("t", "", "", "{}", "0"), "copies: 0 is out of range"),
        (("t", "", "", "{}", "x"), "copies: 'x' is not a whole number"),
        (("t", "", "", "{}", "10001"), "out of range"),
    ):
        with pytest.raises(UsageError, match=message):
            drafts.build(*args)


def test_the_cloudevent_template_has_fresh_ids_and_time():
    ids = iter(["id-1", "corr-1", "id-2", "corr-2"])
    first = drafts.template("cloudevent", now=1_800_000_000.5, make_id=lambda: next(ids))
    headers = dict((k, v.decode()) for k, v in drafts.parse_headers(first.headers))
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": "id-1",
        "ce_time": "2027-01-15T08:00:00.500Z",
        "ce_type": "com.example.SomethingHappened",
        "ce_source": "/event-workbench",
        "content-type": "application/json",
        "correlation_id": "corr-1",
    }
    assert json.loads(first.value) == {"message": "hello"}
    second = drafts.template("cloudevent", now=1_800_000_001, make_id=lambda: next(ids))
    assert "ce_id=id-2" in second.headers and "correlation_id=corr-2" in second.headers
    assert drafts.template("empty", now=0) == drafts.Template("empty", "Empty JSON object", "", "{}")
    assert len(drafts.new_id()) == 36 and drafts.new_id() != drafts.new_id()


def order_schema_template(topic: str = "orders") -> drafts.SchemaTemplate:
    """An Avro schema template, as a registry lookup would make it (no registry needed here)."""
    from workbench.events.schemas.encoder import SchemaEncoder
    from workbench.events.schemas.formats import SchemaText, parse
    from workbench.events.schemas.registry import Registered

    schema = SchemaText(
        "avro",
        json.dumps(
            {
                "type": "record",
                "name": "Order",
                "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}],
            }
        ),
    )
    registered = Registered(7, schema, f"{topic}-value", 2)
    encoder = SchemaEncoder(registered, parse(schema))
    return drafts.SchemaTemplate(topic, encoder, json.dumps(encoder.codec.template()))


def test_the_schema_template_is_offered_only_with_a_registry():
    assert drafts.SCHEMA not in dict(drafts.template_labels(False))
    assert drafts.SCHEMA in dict(drafts.template_labels(True))


def test_a_schema_template_checks_the_value_and_encodes_it_in_the_wire_format():
    schema = order_schema_template()
    assert set(json.loads(schema.value)) == {"id", "amount"}
    fits = drafts.check_value('{"id": "o-1", "amount": 2.5}', schema)
    assert fits.ok and fits.message == "valid JSON, fits the avro schema orders-value v2 (id 7)"
    wrong = drafts.check_value('{"id": "o-1", "amount": "lots"}', schema)
    assert not wrong.ok and wrong.message.startswith("field 'amount': ")
    [(_, event)] = drafts.build("orders", "", "", '{"id": "o-1", "amount": 2.5}', "1", schema)
    assert event.value is not None and event.value[:5] == b"\x00\x00\x00\x00\x07"  # magic byte, schema id 7
    with pytest.raises(UsageError, match="value: field 'amount'"):
        drafts.build("orders", "", "", '{"id": "o-1", "amount": "lots"}', "1", schema)
    with pytest.raises(UsageError, match="the schema template is orders-value, not topic 'payments'"):
        drafts.build("payments", "", "", '{"id": "o-1", "amount": 2.5}', "1", schema)
