"""The test schema registry that tests/brokers/brokers.sh runs (Apicurio Registry, Confluent-compatible API).

These check the harness itself against the real registry: the script reports it, the Confluent API
registers and serves an Avro schema, refuses a BACKWARD-incompatible change with 409, deletes a subject
for good, and the suite's leak inventory sees a subject a test would leave behind. A registry that is
down fails them (start it with ``tests/brokers/brokers.sh up registry``).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.brokers import inventory
from tests.brokers.endpoints import (
    BROKERS_SCRIPT,
    REGISTRY_CONTENT_TYPE,
    REGISTRY_URL,
    delete_subject,
    registry_subjects,
    require_registry,
)

pytestmark = pytest.mark.registry

RECORD_V1 = {
    "type": "record",
    "name": "OrderPlaced",
    "namespace": "test.workbench",
    "fields": [{"name": "order_id", "type": "string"}],
}
# A new field without a default: readers of v2 cannot read v1 data, so BACKWARD refuses it.
RECORD_INCOMPATIBLE = {**RECORD_V1, "fields": [*RECORD_V1["fields"], {"name": "amount", "type": "int"}]}
# The same field with a default: BACKWARD accepts it.
RECORD_V2 = {**RECORD_V1, "fields": [*RECORD_V1["fields"], {"name": "amount", "type": "int", "default": 0}]}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    require_registry()
    with httpx.Client(base_url=REGISTRY_URL, headers={"Content-Type": REGISTRY_CONTENT_TYPE}, timeout=30) as client:
        yield client


@pytest.fixture
def subject(http: httpx.Client) -> Iterator[str]:
    """A unique subject name; deleted for good (soft, then permanent) after the test, and checked gone."""
    name = f"ew-test-registry-{uuid.uuid4().hex[:12]}-value"
    yield name
    delete_subject(name, missing_ok=True)
    assert name not in registry_subjects(deleted=True), f"subject {name} is still listed after delete_subject"


def register(http: httpx.Client, subject: str, schema: dict) -> httpx.Response:
    return http.post(f"/subjects/{quote(subject, safe='')}/versions", json={"schema": json.dumps(schema)})


def test_status_names_the_registry_and_its_confluent_url() -> None:
    result = subprocess.run(
        ["bash", str(BROKERS_SCRIPT), "status", "registry"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"status registry exited {result.returncode}:\n{result.stdout}{result.stderr}"
    assert result.stdout.startswith("brokers: registry running  ")
    assert REGISTRY_URL in result.stdout


def test_register_fetch_refuse_incompatible_and_delete(http: httpx.Client, subject: str) -> None:
    first = register(http, subject, RECORD_V1)
    assert first.status_code == 200, first.text
    schema_id = first.json()["id"]
    assert isinstance(schema_id, int) and schema_id > 0

    fetched = http.get(f"/schemas/ids/{schema_id}")
    assert fetched.status_code == 200, fetched.text
    assert json.loads(fetched.json()["schema"]) == RECORD_V1
    assert fetched.json().get("schemaType", "AVRO") == "AVRO"

    # Registering the same schema again gives the same id and no new version.
    again = register(http, subject, RECORD_V1)
    assert again.status_code == 200 and again.json()["id"] == schema_id

    # BACKWARD (the registry's global rule): a field without a default is refused, and nothing is stored.
    refused = register(http, subject, RECORD_INCOMPATIBLE)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_code"] == 409
    check = http.post(
        f"/compatibility/subjects/{quote(subject, safe='')}/versions/latest",
        json={"schema": json.dumps(RECORD_INCOMPATIBLE)},
    )
    assert check.status_code == 200 and check.json()["is_compatible"] is False, check.text

    accepted = register(http, subject, RECORD_V2)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] != schema_id
    versions = http.get(f"/subjects/{quote(subject, safe='')}/versions")
    assert versions.json() == [1, 2]
    latest = http.get(f"/subjects/{quote(subject, safe='')}/versions/latest").json()
    assert latest["subject"] == subject and latest["version"] == 2 and json.loads(latest["schema"]) == RECORD_V2

    assert subject in registry_subjects()
    delete_subject(subject)
    assert subject not in registry_subjects(deleted=True)
    gone = http.get(f"/subjects/{quote(subject, safe='')}/versions")
    assert gone.status_code == 404 and gone.json()["error_code"] == 40401, gone.text


def test_leak_inventory_sees_a_subject_left_behind_even_soft_deleted(http: httpx.Client, subject: str) -> None:
    # Only the registry's part of the inventory: other runs may make Kafka or RabbitMQ objects meanwhile.
    item = f"registry subject {subject}"
    before = inventory.registry_items()
    assert item not in before
    assert register(http, subject, RECORD_V1).status_code == 200
    assert item in inventory.leaks(before, inventory.registry_items())
    assert item in inventory.inventory()

    # A soft delete alone still leaves the subject on the registry: still a leak.
    soft = http.delete(f"/subjects/{quote(subject, safe='')}")
    assert soft.status_code == 200 and soft.json() == [1], soft.text
    assert subject not in registry_subjects(deleted=False)
    assert item in inventory.leaks(before, inventory.registry_items())

    delete_subject(subject)  # already soft-deleted: the permanent delete follows
    assert item not in inventory.leaks(before, inventory.registry_items())


def test_delete_subject_of_an_unknown_subject(http: httpx.Client) -> None:
    missing = f"ew-test-registry-missing-{uuid.uuid4().hex[:12]}"
    delete_subject(missing, missing_ok=True)
    with pytest.raises(httpx.HTTPStatusError):
        delete_subject(missing)
