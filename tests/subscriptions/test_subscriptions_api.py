"""Subscriptions over HTTP: handshake, notifications of second-opinion cases, organization isolation, retries
through the outbox worker, ``$status``, and nothing lost across a restart."""

from __future__ import annotations

from typing import Any

import httpx

from fhir_server.storage.base import ResourceStore
from fhir_server.subscriptions.topic import (
    NOTIFICATION_CHANNEL,
    PAS_TOPIC_URL,
    TOPIC_CANONICAL_CAPABILITY_EXT,
    TOPIC_URL,
)

from tests.second_opinion.conftest import FHIR_JSON
from tests.second_opinion.helpers import Answer, submission
from tests.subscriptions.builders import subscription
from tests.subscriptions.conftest import Delivery, load_directory, served
from tests.subscriptions.receiver import Receiver, status_value

COASTAL = "Organization/ppg-coastal"


async def subscribe(client: httpx.AsyncClient, endpoint: str, *filters: str, **options: Any) -> dict[str, Any]:
    response = await client.post("/Subscription", json=subscription(endpoint, *filters, **options), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


async def submit(client: httpx.AsyncClient, bundle: dict[str, Any]) -> Answer:
    response = await client.post("/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return Answer(response.json())


def coastal_case(identifier: str = "SO-COASTAL-1") -> dict[str, Any]:
    """A case of Coastal Physicians: its member's group, asked by one of its physicians (pract-07)."""
    return submission(group=COASTAL, requester="Practitioner/pract-07", identifier=identifier)


async def status_of(client: httpx.AsyncClient, subscription_id: str) -> dict[str, Any]:
    response = await client.get(f"/Subscription/{subscription_id}/$status")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset" and len(bundle["entry"]) == 1
    return bundle


# ------------------------------------------------------------------------------------------------- handshake


async def test_a_requested_subscription_is_activated_by_its_handshake(client, receiver: Receiver):
    created = await subscribe(client, receiver.url)
    assert created["status"] == "active" and "error" not in created
    [handshake] = receiver.received
    assert handshake.headers["authorization"] == "Bearer secret-token"
    assert handshake.headers["content-type"].startswith("application/fhir+json")
    assert handshake.body["type"] == "history" and len(handshake.body["entry"]) == 1
    assert status_value(handshake.body, "type") == "handshake"
    assert status_value(handshake.body, "status") == "requested"
    assert status_value(handshake.body, "topic") == TOPIC_URL
    assert status_value(handshake.body, "subscription")["reference"].endswith(f"/Subscription/{created['id']}")
    assert (await client.get(f"/Subscription/{created['id']}")).json()["status"] == "active"


async def test_a_refused_or_unreachable_handshake_leaves_the_subscription_in_error(client):
    with Receiver(500) as refusing:
        refused = await subscribe(client, refusing.url)
    assert refused["status"] == "error" and "HTTP 500" in refused["error"]
    unreachable = await subscribe(client, refusing.url)  # the receiver is gone: connection refused
    assert unreachable["status"] == "error" and "ConnectError" in unreachable["error"]


async def test_an_invalid_subscription_is_refused_with_every_problem_and_nothing_stored(client, receiver):
    response = await client.post(
        "/Subscription",
        json=subscription(receiver.url, topic="http://example.org/SubscriptionTopic/other", channel_type="email",
                          organization=None),
        headers=FHIR_JSON,
    )
    assert response.status_code == 422
    expressions = {e for issue in response.json()["issue"] for e in issue["expression"]}
    assert {"Subscription.criteria", "Subscription.channel.type", "Subscription.criteria.extension"} <= expressions
    assert (await client.get("/Subscription")).json()["total"] == 0
    assert receiver.received == []


async def test_a_subscription_in_a_bundle_is_checked_too(client, receiver):
    bad = subscription(receiver.url, channel_type="websocket")
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": bad, "request": {"method": "POST", "url": "Subscription"}}]}
    response = await client.post("", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert (await client.get("/Subscription")).json()["total"] == 0


# -------------------------------------------------------------------------------------------- notifications


async def test_a_decision_notifies_the_subscriber_with_the_task_and_its_authorization(client, receiver, delivery):
    created = await subscribe(client, receiver.url)
    answer = await submit(client, submission())
    assert await delivery.run() == 1
    [notification] = receiver.bundles("event-notification")
    assert notification["type"] == "history"
    assert status_value(notification, "events-since-subscription-start") == "1"
    assert status_value(notification, "subscription")["reference"].endswith(f"/Subscription/{created['id']}")
    task, claim_response = (entry["resource"] for entry in notification["entry"][1:])
    assert task == answer.task and claim_response == answer.claim_response
    assert receiver.received[-1].headers["authorization"] == "Bearer secret-token"


async def test_each_subscriber_receives_only_its_own_organizations_cases(client, delivery):
    with Receiver() as valley, Receiver() as coastal:
        await subscribe(client, valley.url)
        await subscribe(client, coastal.url, organization=COASTAL)
        valley_case = await submit(client, submission())
        coastal_answer = await submit(client, coastal_case())
        assert await delivery.run() == 2
    [to_valley] = valley.bundles("event-notification")
    [to_coastal] = coastal.bundles("event-notification")
    assert to_valley["entry"][1]["resource"]["id"] == valley_case.task["id"]
    assert to_coastal["entry"][1]["resource"]["id"] == coastal_answer.task["id"]


async def test_a_subscriber_answering_500_gets_the_notification_again_after_a_back_off(client, delivery):
    with Receiver(200, 500) as flaky:  # the handshake succeeds, the first notification fails
        created = await subscribe(client, flaky.url)
        await submit(client, submission())
        assert await delivery.run() == 0
        errors = [p for p in (await status_of(client, created["id"]))["entry"][0]["resource"]["parameter"]
                  if p["name"] == "error"]
        assert "HTTP 500" in errors[0]["valueCodeableConcept"]["text"]
        assert await delivery.run() == 0 and len(flaky.received) == 2  # not due yet: nothing sent
        assert await delivery.run(after_seconds=3) == 1
    first, second = flaky.bundles("event-notification")
    assert first == second  # the same notification, event number and all
    status = await status_of(client, created["id"])
    assert status_value(status, "events-since-subscription-start") == "1"
    assert status_value(status, "error") is None


async def test_a_physicians_denial_is_notified_after_the_pend(client, delivery):
    """Harbor IPA's case goes to its physician designee (pend: event 1), who denies it (event 2)."""
    harbor_case = submission(plan="blue-shield-promise-cmc", group="Organization/ipa-harbor", treating=[],
                             identifier="SO-HARBOR-1")
    with Receiver() as harbor:
        await subscribe(client, harbor.url, organization="Organization/ipa-harbor")
        pended = await submit(client, harbor_case)
        assert pended.business_status == "physician-review"
        decided = await client.post(f"/Task/{pended.task['id']}/$decide", headers=FHIR_JSON, json={
            "resourceType": "Parameters",
            "parameter": [{"name": "decision", "valueCode": "deny"},
                          {"name": "reviewer", "valueReference": {"reference": "Practitioner/pract-13"}},
                          {"name": "reason", "valueString": "The proposed surgery is clearly indicated"},
                          {"name": "findings", "valueString": "Two concordant opinions on file"}]})
        assert decided.status_code == 200, decided.text
        await delivery.run()  # the two notifications (and the plan copy, wherever the plan endpoint answers)
    pend, denial = sorted(harbor.bundles("event-notification"),
                          key=lambda b: status_value(b, "events-since-subscription-start"))
    assert pend["entry"][1]["resource"]["status"] == "in-progress"
    task, claim_response = (entry["resource"] for entry in denial["entry"][1:])
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "denied"
    assert claim_response["id"] == pended.claim_response["id"]
    assert claim_response["meta"]["versionId"] != pended.claim_response["meta"]["versionId"]


async def test_status_reports_the_subscription_and_its_event_count(client, receiver, delivery):
    created = await subscribe(client, receiver.url)
    await submit(client, submission())
    await submit(client, submission(identifier="SO-1002"))
    status = await status_of(client, created["id"])
    parameters = status["entry"][0]["resource"]
    assert parameters["resourceType"] == "Parameters"
    assert status_value(status, "type") == "query-status"
    assert status_value(status, "status") == "active"
    assert status_value(status, "events-since-subscription-start") == "2"
    assert (await client.get("/Subscription/unknown/$status")).status_code == 404


async def test_an_update_keeps_the_event_count_and_a_new_request_shakes_hands_again(client, receiver):
    created = await subscribe(client, receiver.url)
    await submit(client, submission())
    resent = {**subscription(receiver.url), "id": created["id"]}
    updated = await client.put(f"/Subscription/{created['id']}", json=resent, headers=FHIR_JSON)
    assert updated.status_code == 200 and updated.json()["status"] == "active"
    handshakes = receiver.bundles("handshake")
    assert [status_value(h, "events-since-subscription-start") for h in handshakes] == ["0", "1"]
    assert status_value(await status_of(client, created["id"]), "events-since-subscription-start") == "1"


async def test_the_capability_statement_offers_status_the_backport_profile_and_the_topic(server):
    _, client = server
    statement = (await client.get("/metadata")).json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    assert any(op["name"] == "status" for op in entry["operation"])
    assert any(url.endswith("/backport-subscription") for url in entry["supportedProfile"])
    assert entry["extension"] == [{"url": TOPIC_CANONICAL_CAPABILITY_EXT, "valueCanonical": topic}
                                  for topic in (TOPIC_URL, PAS_TOPIC_URL)]  # the project's, then Da Vinci PAS's


# ---------------------------------------------------------------------------------------------------- restart


async def test_queued_notifications_survive_a_restart(store_url: str, receiver: Receiver):
    async with served(store_url) as (_, client):
        await load_directory(client)
        created = await subscribe(client, receiver.url)
        await submit(client, submission())  # queued; the server stops before delivering it
    async with served(store_url) as (app, client):
        store: ResourceStore = app.state.store
        [queued] = await store.outbox_messages(NOTIFICATION_CHANNEL)
        assert queued.delivered_at is None
        delivery = Delivery(app)
        try:
            assert await delivery.run() == 1
        finally:
            await delivery.close()
        status = await status_of(client, created["id"])
    [notification] = receiver.bundles("event-notification")
    assert status_value(notification, "events-since-subscription-start") == "1"
    assert status_value(status, "events-since-subscription-start") == "1"
