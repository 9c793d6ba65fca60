"""Schemas kept beside captured events, so that an incident file decodes offline, without the registry.

A capture writes the schemas its events were decoded with into the topic :data:`SCHEMAS_TOPIC` of the
capture file, one event per schema id (the key is the id, the value the schema and where it was
registered). Opening the file reads them back; ids the file does not hold stay undecoded, with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from workbench.broker import Event, OutgoingEvent
from workbench.events.schemas.formats import SchemaError, SchemaText
from workbench.events.schemas.registry import Registered

SCHEMAS_TOPIC = "__workbench.schemas"


def to_events(used: Mapping[int, Registered]) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(
            value=json.dumps(
                {
                    "id": r.id,
                    "subject": r.subject,
                    "version": r.version,
                    "schema": r.schema.to_json(),
                },
                separators=(",", ":"),
            ).encode(),
            key=str(schema_id).encode(),
        )
        for schema_id, r in sorted(used.items())
    ]


def from_events(events: Iterable[Event]) -> dict[int, Registered]:
    """The schemas of a capture file's :data:`SCHEMAS_TOPIC` (entries that do not parse are left out)."""
    found: dict[int, Registered] = {}
    for event in events:
        try:
            data = json.loads(event.value or b"")
            schema_id = int(data["id"])
            found[schema_id] = Registered(
                schema_id, SchemaText.from_json(data["schema"]), data.get("subject"), data.get("version")
            )
        except (ValueError, KeyError, TypeError, SchemaError):
            continue
    return found
