"""A Task change queues, in its own transaction, one notification per Subscription it concerns (both stores)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_server.second_opinion.codes import STATUS_SYSTEM, TASK_PROFILE
from fhir_server.storage.base import ResourceStore, StoredResource
from fhir_server.subscriptions.notifications import notify_subscribers
from fhir_server.subscriptions.topic import NOTIFICATION_CHANNEL, NOTIFICATION_PROFILE, STATUS_PROFILE, TOPIC_URL

from tests.second_opinion.conftest import DIRECTORY_FILE
from tests.subscriptions.builders import subscription
from tests.subscriptions.receiver import status_value

BASE = "http://fhir.example.org/fhir"
VALLEY, COASTAL = "Organization/ppg-valley", "Organization/ppg-coastal"


def case_task(owner: str, requester: str, status: str = "completed", business: str = "approved") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": "case-1",
        "meta": {"profile": [TASK_PROFILE]},
        "status": status,
        "businessStatus": {"coding": [{"system": STATUS_SYSTEM, "code": business}]},
        "intent": "order",
        "for": {"reference": "Patient/member-1"},
        "requester": {"reference": requester},
        "owner": {"reference": owner},
        "output": [{"type": {"text": "authorization"}, "valueReference": {"reference": "ClaimResponse/auth-1"}}],
    }


@pytest.fixture
async def directory(store: ResourceStore) -> ResourceStore:
    """The test directory's organizations and roles, and an authorization for the case."""
    for entry in json.loads(DIRECTORY_FILE.read_text(encoding="utf-8"))["entry"]:
        if entry["resource"]["resourceType"] in ("Organization", "PractitionerRole"):
            await store.update(entry["resource"])
    await store.update({"resourceType": "ClaimResponse", "id": "auth-1", "status": "active", "use": "preauthorization",
                        "outcome": "complete"})
    return store


async def subscribe(store: ResourceStore, name: str, *filters: str, **options: Any) -> None:
    await store.update({**subscription(f"http://127.0.0.1:9/{name}", *filters, status="active", **options), "id": name})


async def write_task(store: ResourceStore, task: dict[str, Any]) -> tuple[StoredResource, int]:
    async with store.transaction() as tx:
        stored, _ = await tx.update(task)
        return stored, await notify_subscribers(tx, stored, BASE)


async def queued(store: ResourceStore) -> dict[str, dict[str, Any]]:
    """Subscription id -> the payloads queued for it, newest last."""
    by_subscription: dict[str, list[dict[str, Any]]] = {}
    for message in await store.outbox_messages(NOTIFICATION_CHANNEL):
        by_subscription.setdefault(message.destination.rsplit("/", 1)[1], []).append(message.payload)
    return by_subscription


async def test_a_full_resource_notification_is_a_history_bundle_led_by_the_status(directory: ResourceStore):
    await subscribe(directory, "valley")
    stored, count = await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    assert count == 1
    [bundle] = (await queued(directory))["valley"]
    assert bundle["type"] == "history" and bundle["meta"]["profile"] == [NOTIFICATION_PROFILE]
    status, task_entry, claim_entry = bundle["entry"]
    assert status["resource"]["meta"]["profile"] == [STATUS_PROFILE]
    assert status["fullUrl"] == f"urn:uuid:{status['resource']['id']}"
    assert status_value(bundle, "subscription") == {"reference": f"{BASE}/Subscription/valley"}
    assert status_value(bundle, "topic") == TOPIC_URL
    assert status_value(bundle, "status") == "active"
    assert status_value(bundle, "type") == "event-notification"
    assert status_value(bundle, "events-since-subscription-start") == "1"
    event = next(p for p in status["resource"]["parameter"] if p["name"] == "notification-event")
    parts = {p["name"]: p for p in event["part"]}
    assert parts["event-number"]["valueString"] == "1"
    assert parts["focus"]["valueReference"]["reference"] == f"{BASE}/Task/case-1"
    assert parts["additional-context"]["valueReference"]["reference"] == f"{BASE}/ClaimResponse/auth-1"
    assert parts["timestamp"]["valueInstant"].startswith(stored.last_updated.strftime("%Y-%m-%dT%H:%M"))
    assert task_entry["resource"]["id"] == "case-1" and task_entry["request"] == {"method": "POST", "url": "Task"}
    assert task_entry["response"]["status"] == "201"
    assert claim_entry["resource"]["id"] == "auth-1" and claim_entry["fullUrl"] == f"{BASE}/ClaimResponse/auth-1"


async def test_headers_and_endpoint_go_with_the_message(directory: ResourceStore):
    await subscribe(directory, "valley")
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    [message] = await directory.outbox_messages(NOTIFICATION_CHANNEL)
    assert message.destination == "http://127.0.0.1:9/valley"
    assert message.headers == {"Authorization": "Bearer secret-token"}


async def test_a_subscriber_never_receives_another_organizations_case(directory: ResourceStore):
    await subscribe(directory, "valley")
    await subscribe(directory, "coastal", organization=COASTAL)
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    assert set(await queued(directory)) == {"valley"}


async def test_the_requesters_organization_shares_the_case(directory: ResourceStore):
    """Owned by Valley, asked by a Coastal physician (role-07): both groups hear of it, nobody else does."""
    await subscribe(directory, "valley")
    await subscribe(directory, "coastal", organization=COASTAL)
    await subscribe(directory, "harbor", organization="Organization/ipa-harbor")
    await write_task(directory, case_task(VALLEY, "PractitionerRole/role-07"))
    assert set(await queued(directory)) == {"valley", "coastal"}


async def test_filters_narrow_but_never_widen_the_organization(directory: ResourceStore):
    await subscribe(directory, "denials", "Task?business-status=denied")
    await subscribe(directory, "coastal-asking-valley", "Task?owner=Organization/ppg-valley", organization=COASTAL)
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    assert await queued(directory) == {}
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04", business="denied"))
    assert set(await queued(directory)) == {"denials"}


async def test_events_are_counted_per_subscription_in_the_same_transaction(directory: ResourceStore):
    await subscribe(directory, "valley")
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04", "in-progress", "physician-review"))
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    first, second = (await queued(directory))["valley"]
    assert [status_value(b, "events-since-subscription-start") for b in (first, second)] == ["1", "2"]
    assert second["entry"][1]["request"] == {"method": "PUT", "url": "Task/case-1"}
    counter = (await directory.read("Subscription", "valley")).resource["extension"]
    assert counter[0]["valueUnsignedInt"] == 2


async def test_a_failed_write_queues_nothing_and_counts_nothing(directory: ResourceStore):
    await subscribe(directory, "valley")
    with pytest.raises(RuntimeError):
        async with directory.transaction() as tx:
            stored, _ = await tx.update(case_task(VALLEY, "Practitioner/pract-04"))
            await notify_subscribers(tx, stored, BASE)
            raise RuntimeError("the decision fails after the notification was queued")
    assert await queued(directory) == {}
    assert "extension" not in (await directory.read("Subscription", "valley")).resource


async def test_id_only_and_empty_payloads(directory: ResourceStore):
    await subscribe(directory, "ids", content="id-only")
    await subscribe(directory, "empty", content="empty")
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04"))
    payloads = await queued(directory)
    [ids] = payloads["ids"]
    assert [e["fullUrl"] for e in ids["entry"][1:]] == [f"{BASE}/Task/case-1", f"{BASE}/ClaimResponse/auth-1"]
    assert all("resource" not in e for e in ids["entry"][1:])
    [empty] = payloads["empty"]
    assert len(empty["entry"]) == 1 and status_value(empty, "topic") is None


async def test_inactive_subscriptions_and_other_tasks_are_left_alone(directory: ResourceStore):
    await directory.update({**subscription("http://127.0.0.1:9/off", status="off"), "id": "off"})
    assert (await write_task(directory, case_task(VALLEY, "Practitioner/pract-04")))[1] == 0
    await subscribe(directory, "valley")
    plain_task = {**case_task(VALLEY, "Practitioner/pract-04"), "id": "plain", "meta": {}}
    assert (await write_task(directory, plain_task))[1] == 0
    assert await queued(directory) == {}
