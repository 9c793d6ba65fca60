"""Saga definitions: validation with precise errors, templates (parsing, filling, fuzzed)."""

from __future__ import annotations

import copy
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker import Event
from workbench.demo import scenario
from workbench.errors import ConfigError, UsageError
from workbench.sagas import definitions as sagas
from workbench.sagas import settings as saga_settings
from workbench.sagas import templates
from workbench.sagas.builtin import SAGA_TOML

SOURCE = "/etc/workbench.toml"


def demo_tables() -> dict:
    return tomllib.loads(SAGA_TOML)["sagas"]


def parse(tables: dict) -> dict[str, sagas.SagaDef]:
    return sagas.parse_sagas(tables, SOURCE)


def test_the_demo_definition_is_valid_and_is_the_default():
    order = parse(demo_tables())["order"]
    assert [s.kind for s in order.steps] == ["compensatable", "compensatable", "pivot", "retriable", "retriable"]
    assert order.pivot.name == "inventory" and order.stuck_after_ms == 15 * 60_000
    assert order.topics == tuple(scenario.TOPICS)

    class NoSagas:
        sagas: dict = {}
        path = None

    assert list(saga_settings.definitions(NoSagas())) == ["order"]


def broken(mutate) -> str:
    tables = copy.deepcopy(demo_tables())
    mutate(tables["order"])
    with pytest.raises(ConfigError) as caught:
        parse(tables)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: saga 'order'"), message
    return message


def step(body: dict, name: str) -> dict:
    return next(s for s in body["steps"] if s["name"] == name)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.pop("topics"), "field 'topics'"),
        (lambda b: b.update(stuck_after="soon"), "field 'stuck_after': duration 'soon' is not a duration"),
        (lambda b: b.update(colour="red"), "unknown field 'colour'"),
        (
            lambda b: step(b, "inventory").update(kind="retriable"),
            'exactly one step must be kind = "pivot" (found none)',
        ),
        (lambda b: step(b, "shipping").update(kind="pivot"), "found 'inventory', 'shipping'"),
        (
            lambda b: step(b, "order").update(kind="retriable"),
            "step 'order', field 'compensation': only a compensatable",
        ),
        (
            lambda b: step(b, "payment").pop("compensation"),
            "step 'payment', field 'compensation': a compensatable step needs a compensation",
        ),
        (
            lambda b: step(b, "shipping").update(kind="compensatable", compensation={"topic": "s", "type": "T"}),
            "step 'shipping', field 'kind': a compensatable step must come before the pivot",
        ),
        (
            lambda b: b["steps"].insert(0, {"name": "early", "kind": "retriable", "done_when": "true"}),
            "step 'early', field 'kind': a retriable step must come after the pivot",
        ),
        (
            lambda b: step(b, "payment").update(done_when='type == "PaymentProcessed'),
            "step 'payment', field 'done_when':",
        ),
        (lambda b: step(b, "payment").update(failed_when="nosuchname > 1"), "step 'payment', field 'failed_when':"),
        (lambda b: step(b, "order").pop("done_when"), "step 'order', field 'done_when': required"),
        (lambda b: step(b, "payment").update(kind="sometimes"), "step 'payment', field 'kind': 'sometimes'"),
        (lambda b: step(b, "payment")["compensation"].pop("topic"), "step 'payment', field 'compensation.topic'"),
        (
            lambda b: step(b, "order")["compensation"]["payload"].update(paid="{payment.value.paymentId}"),
            "step 'order', field 'compensation.payload.paid': {payment.value.paymentId} refers to no step at or before",
        ),
        (
            lambda b: step(b, "payment")["compensation"].update(key="{order.body}"),
            "step 'payment', field 'compensation.key': placeholder {order.body}",
        ),
        (
            lambda b: step(b, "payment")["compensation"].update(headers={"x": "{oops"}),
            "step 'payment', field 'compensation.headers.x': unclosed '{'",
        ),
        (
            lambda b: step(b, "payment")["compensation"].update(confirmed_when="1 +"),
            "step 'payment', field 'compensation.confirmed_when':",
        ),
        (
            lambda b: b["steps"].append({"name": "order", "kind": "retriable", "done_when": "true"}),
            "step 'order', field 'name': a step of that name comes earlier",
        ),
    ],
)
def test_bad_definitions_name_file_saga_step_and_field(mutate, expected):
    assert expected in broken(mutate)


def test_compensated_when_defaults_to_the_compensation_type():
    tables = demo_tables()
    step(tables["order"], "payment").pop("compensated_when")
    payment = parse(tables)["order"].step("payment")
    assert payment.compensated_when is not None and payment.compensated_when.text == 'type == "PaymentRefunded"'


def test_audit_log_setting_is_not_a_saga(tmp_path):
    tables = {**demo_tables(), "audit_log": "audit/saga.jsonl"}
    assert list(parse(tables)) == ["order"]

    class Config:
        sagas = tables
        path = tmp_path / "workbench.toml"

    assert saga_settings.audit_log_setting(Config()) == str(tmp_path / "audit" / "saga.jsonl")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90", 90_000),
        ("90s", 90_000),
        ("15m", 900_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("250ms", 250),
        ("1.5h", 5_400_000),
    ],
)
def test_durations(text, ms):
    assert sagas.parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "0", "-5m", "5 weeks", "m"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        sagas.parse_duration(text, "--since")


# --------------------------------------------------------------------------- templates

EVENT = Event(
    "orders",
    2,
    7,
    1_800_000_000_000,
    b"ORD-1",
    b'{"orderId": "ORD-1", "amount": 12.5, "items": [{"sku": "A"}], "nested": {"n": null}}',
    (("ce_type", b"OrderPlaced"), ("ce_id", b"e-1"), ("x-tenant", b"acme")),
)


def context() -> templates.TemplateContext:
    return templates.TemplateContext("corr-1", "order", {"order": EVENT})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{correlation_id}", "corr-1"),
        ("{saga}/{order.key}", "order/ORD-1"),
        ("{order.value.amount}", 12.5),  # alone: keeps its JSON type
        ("total {order.value.amount} EUR", "total 12.5 EUR"),
        ("{order.value.items[0].sku}", "A"),
        ("{order.headers.x-tenant}", "acme"),
        ("{order.type}/{order.id}/{order.topic}/{order.partition}/{order.offset}", "OrderPlaced/e-1/orders/2/7"),
        ("{{literal}} {{{correlation_id}}}", "{literal} {corr-1}"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_templates_fill_from_the_correlation_id_and_observed_events(text, expected):
    assert templates.parse_template(text).render(context()) == expected


@pytest.mark.parametrize(
    "text", ["{order.value.missing}", "{order.value.nested.n}", "{order.value.items[3]}", "{payment.value.id}"]
)
def test_a_field_the_events_lack_is_a_template_error(text):
    with pytest.raises(templates.TemplateError):
        templates.parse_template(text).render(context())


@pytest.mark.parametrize(
    "text",
    ["{", "}", "{}", "{order}", "{order.body}", "{order.value.}", "{1x}", "{correlation_id.x}", "{order.value[x]}"],
)
def test_malformed_templates(text):
    with pytest.raises(templates.TemplateError):
        templates.parse_template(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_template_error(text):
    try:
        template = templates.parse_template(text)
    except templates.TemplateError:
        return
    try:
        result = template.render(context())
    except templates.TemplateError:
        return
    assert isinstance(result, str | int | float | bool | dict | list)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=60) | json_values.map(lambda v: __import__("json").dumps(v).encode()),
    key=st.none() | st.binary(max_size=10),
    path=st.sampled_from(
        [
            "{order.value.a}",
            "{order.value[0]}",
            "{order.key}",
            "{order.type} {order.id}",
            "{order.headers.h}",
            "{order.value.a.b[1]}",
            "x{order.value}y",
        ]
    ),
)
def test_filling_from_any_event_gives_a_value_or_a_template_error(value, key, path):
    event = Event("t", 0, 0, None, key, value, (("h", b"\xff\xfe"),))
    template = templates.parse_template(path)
    try:
        template.render(templates.TemplateContext("c", "s", {"order": event}))
    except templates.TemplateError:
        pass


toml_values = st.recursive(
    st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(["saga", "order", "payment", "payment.compensation", "inventory"]),
    field=st.sampled_from(
        [
            "topics",
            "steps",
            "stuck_after",
            "correlation",
            "name",
            "kind",
            "done_when",
            "failed_when",
            "compensated_when",
            "compensation",
            "topic",
            "type",
            "key",
            "headers",
            "payload",
            "confirmed_when",
            "other",
        ]
    ),
    value=toml_values,
)
def test_any_value_anywhere_is_accepted_or_a_config_error(where, field, value):
    tables = demo_tables()
    body = tables["order"]
    target = {
        "saga": body,
        "order": step(body, "order"),
        "payment": step(body, "payment"),
        "payment.compensation": step(body, "payment")["compensation"],
        "inventory": step(body, "inventory"),
    }[where]
    target[field] = value
    try:
        parse(tables)
    except ConfigError as exc:
        assert str(exc).startswith(f"{SOURCE}: saga 'order'")
