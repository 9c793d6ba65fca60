"""The publish dialog's schema template, against the real schema registry and real Kafka: the
topic's registered value schema gives the sample value, the value is checked against it as it is
typed, and what is published is the Confluent wire format that ``tail`` decodes back. A topic
without a registered schema says so in the dialog. Needs ``bash tests/brokers/brokers.sh up``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from textual.widgets import Input, Select, TextArea

from tests.brokers import endpoints
from tests.integration.test_schemas_interop import BROKER, Names, cli, remove, require_brokers
from workbench import config
from workbench.tui import drafts
from workbench.tui.screens.publish import PublishDialog

from .conftest import SIZE, make_app, rendered, settle

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

WAIT = 60.0
ORDER = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def names() -> Iterator[Names]:
    require_brokers()
    made = Names(f"ew-tui-schema-{uuid.uuid4().hex[:10]}")
    made.new_topic()
    made.new_topic("-plain")
    try:
        yield made
    finally:
        remove(made)


async def choose(pilot, dialog: PublishDialog, template: str, lookups: int) -> None:
    dialog.query_one("#publish-template", Select).value = template
    await settle(pilot, lambda: dialog.schema_lookups == lookups, "the schema lookup", WAIT)


async def test_the_topics_schema_is_a_template_checked_as_typed_and_published_encoded(names: Names) -> None:
    topic, plain = names.topics
    client = SchemaRegistryClient({"url": endpoints.REGISTRY_URL, "timeout": 20})
    schema_id = client.register_schema(f"{topic}-value", Schema(json.dumps(ORDER), "AVRO"))
    app = make_app(config.resolve(config.url_profile(BROKER)), lag_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.connection_state == "connected", "the connection", WAIT)
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PublishDialog), "the publish dialog")
        dialog = app.screen
        assert isinstance(dialog, PublishDialog)
        dialog.query_one("#publish-topic", Input).value = topic
        await choose(pilot, dialog, drafts.SCHEMA, 1)
        assert dialog.schema is not None
        value = dialog.query_one("#publish-value", TextArea)
        assert set(json.loads(value.text)) == {"id", "amount", "note"}
        check = dialog.query_one("#publish-check")
        assert f"fits the avro schema {topic}-value v1 (id {schema_id})" in rendered(check)

        value.load_text('{"id": "o-1", "amount": "lots"}')
        await pilot.pause()
        assert "✗ field 'amount'" in rendered(check)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not published" in rendered(dialog.query_one("#publish-result"))

        value.load_text('{"id": "o-1", "amount": 12.5, "note": null}')
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: dialog.published == 1, "the publish", WAIT)
        assert "✓ 1 of 1 confirmed" in rendered(dialog.query_one("#publish-result"))

        # another topic, with no registered schema: the dialog says so, and publishes plain JSON
        dialog.query_one("#publish-topic", Input).value = plain
        await pilot.pause()
        assert "choose the schema template again" in rendered(check)
        await choose(pilot, dialog, "empty", 1)
        await choose(pilot, dialog, drafts.SCHEMA, 2)
        assert dialog.schema is None
        assert "no schema template" in rendered(check) and f"{plain}-value" in rendered(check)

    tailed = await asyncio.to_thread(cli, "tail", topic, "-o", "json")  # the CLI runs its own event loop
    assert tailed.exit_code == 0, tailed.output
    [line] = [json.loads(x) for x in tailed.stdout.splitlines()]
    assert line["value_decoded"] == {"id": "o-1", "amount": 12.5, "note": None}
