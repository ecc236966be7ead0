"""Plan copies (90.2.17 procedure 10) as the group's server queues them, through its HTTP API, on both stores.

The delivery itself (to a second server on loopback, down for a while) is tested in test_plan_copy_two_servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.settings import Settings
from fhir_server.storage.base import OutboxMessage
from tests.apps import frozen_app
from tests.case_management.helpers import decide_ok, in_review, parameters
from tests.outbox.plan_servers import mappings_with_endpoint
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, FIXED_NOW, load_json
from tests.second_opinion.helpers import submission, submit_ok

PLAN_ENDPOINT = "http://plan.test/fhir"
DENIAL = {"valueCodeableConcept": {"text": "The records do not support a second opinion"}}


@pytest.fixture
def group(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The delegated group's server; its outbox is inspected, not delivered (the worker is off)."""
    settings = Settings(store=store_url, mappings_dir=mappings_with_endpoint(tmp_path / "mappings", PLAN_ENDPOINT),
                        outbox_enabled=False)
    app = frozen_app(FIXED_NOW, settings)
    with TestClient(app) as client:
        assert client.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200
        yield client


def copies(client: TestClient) -> list[OutboxMessage]:
    return client.portal.call(client.app.state.store.outbox_messages, "plan-copy")


def entries(message: OutboxMessage) -> dict[str, dict[str, Any]]:
    return {entry["resource"]["resourceType"]: entry for entry in message.payload["entry"]}


def test_a_group_decision_queues_one_copy_of_request_records_and_decision(group: TestClient):
    case = in_review(group)
    assert copies(group) == []  # pended for the physician: no decision yet
    decided = decide_ok(group, case.task["id"], parameters("approve"))
    [message] = copies(group)
    version = decided.claim_response["meta"]["versionId"]
    assert message.id == f"plan-copy:ClaimResponse/{decided.claim_response['id']}/_history/{version}"
    assert message.destination == PLAN_ENDPOINT and message.delivered_at is None
    bundle = message.payload
    assert bundle["type"] == "transaction"
    by_type = entries(message)
    assert list(by_type) == ["ServiceRequest", "Condition", "Patient", "Coverage", "Claim", "ClaimResponse", "Task"]
    for entry in bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert entry["request"]["method"] == "POST" and entry["request"]["ifNoneExist"]
        assert "id" not in entry["resource"] and "versionId" not in entry["resource"].get("meta", {})
    # the decision as decided, and references between the copied records point at their entries
    assert by_type["Task"]["resource"]["status"] == "completed"
    assert by_type["Task"]["resource"]["focus"]["reference"] == by_type["ServiceRequest"]["fullUrl"]
    assert by_type["Task"]["resource"]["output"][0]["valueReference"]["reference"] == by_type["ClaimResponse"]["fullUrl"]
    assert by_type["ClaimResponse"]["resource"]["request"]["reference"] == by_type["Claim"]["fullUrl"]
    assert by_type["ServiceRequest"]["resource"]["subject"]["reference"] == by_type["Patient"]["fullUrl"]
    assert by_type["Task"]["resource"]["owner"]["reference"] == "Organization/ipa-harbor"  # not copied: as is
    # business identifiers where the records have them, this server's own otherwise
    request_identifier = case.service_request["identifier"][0]
    assert by_type["ServiceRequest"]["request"]["ifNoneExist"] == (
        f"identifier={request_identifier['system']}|{request_identifier['value']}")
    task_identifier = by_type["Task"]["resource"]["identifier"][-1]
    assert task_identifier["value"] == case.task["id"] and task_identifier["system"].endswith("/Task")
    assert by_type["Condition"]["request"]["ifNoneExist"] == "identifier=urn:oid:2.16.840.1.113883.3.1000.3|PRB-77120"


def test_a_denial_is_copied_too_and_later_writes_of_the_case_do_not_copy_it_again(group: TestClient):
    case = in_review(group)
    decide_ok(group, case.task["id"], parameters("deny", reason=DENIAL))
    [message] = copies(group)
    assert entries(message)["Task"]["resource"]["businessStatus"]["coding"][0]["code"] == "denied"
    task = group.get(f"/fhir/Task/{case.task['id']}", headers=FHIR_JSON).json()
    task["note"] = [{"text": "filed"}]
    assert group.put(f"/fhir/Task/{task['id']}", json=task, headers=FHIR_JSON).status_code == 200
    assert [m.id for m in copies(group)] == [message.id]


def test_no_copy_for_a_plan_without_endpoint_or_a_case_the_plan_decides(group: TestClient):
    automatic = submit_ok(group, submission())  # Health Net: certified at once, no plan endpoint
    assert automatic.review_action == "A1" and automatic.task["status"] == "completed"
    assert copies(group) == []



def test_shipped_plan_data_sends_no_copy_until_the_settings_name_the_endpoint(store_url: str):
    """The shipped data names no endpoint (a copy carries patient data); FHIR_PLAN_COPY_ENDPOINT__<PLAN> does, and
    the plan's own attempt cap travels with the message."""
    outcomes = {}
    for configured in ({}, {"blue_shield_promise_cmc": PLAN_ENDPOINT}):
        app = frozen_app(FIXED_NOW, Settings(store=store_url, outbox_enabled=False, plan_copy_endpoint=configured))
        with TestClient(app) as client:
            assert client.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200
            decide_ok(client, in_review(client).task["id"], parameters("approve"))
            outcomes[bool(configured)] = copies(client)
            client.portal.call(app.state.store.clear)
    assert outcomes[False] == []
    [message] = outcomes[True]
    assert message.destination == PLAN_ENDPOINT and message.max_attempts == 15
