"""Pended PAS requests are followed through Da Vinci PAS's own subscription topic, alongside the project's:
the same events, filters and organization scoping, the ClaimResponse as the focus (both stores)."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.storage.base import ResourceStore
from fhir_server.subscriptions.criteria import read_subscription
from fhir_server.subscriptions.topic import PAS_TOPIC_URL, TOPIC_URL
from tests.case_management.helpers import parameters
from tests.pas.builders import pas_request
from tests.pas.reading import review_action
from tests.second_opinion.conftest import FHIR_JSON
from tests.second_opinion.helpers import submission
from tests.subscriptions.builders import subscription
from tests.subscriptions.conftest import Delivery, load_directory, served
from tests.subscriptions.receiver import Receiver
from tests.subscriptions.receiver import status_value
from tests.subscriptions.test_notifications import (  # noqa: F401 (the directory fixture)
    BASE,
    VALLEY,
    case_task,
    directory,
    queued,
    subscribe,
    write_task,
)


HARBOR = "Organization/ipa-harbor"


def test_the_pas_topic_is_accepted_and_others_are_not():
    spec = read_subscription(subscription("https://ehr.example.org/pas-hook", topic=PAS_TOPIC_URL))
    assert spec.topic == PAS_TOPIC_URL
    with pytest.raises(FhirError) as refused:
        read_subscription(subscription("https://ehr.example.org/pas-hook",
                                       topic="http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/Other"))
    assert refused.value.status == 422 and PAS_TOPIC_URL in refused.value.issues[0].diagnostics


async def test_a_pas_subscriber_hears_of_the_claim_response(directory: ResourceStore):  # noqa: F811
    await subscribe(directory, "pas", topic=PAS_TOPIC_URL)
    await subscribe(directory, "own")
    await subscribe(directory, "pas-coastal", topic=PAS_TOPIC_URL, organization="Organization/ppg-coastal")
    await write_task(directory, case_task(VALLEY, "Practitioner/pract-04", "in-progress", "physician-review"))
    notifications = await queued(directory)
    assert set(notifications) == {"pas", "own"}  # the Coastal group's PAS subscription hears nothing of Valley's
    [pas] = notifications["pas"]
    assert status_value(pas, "topic") == PAS_TOPIC_URL
    _, focus, context = pas["entry"]
    assert (focus["resource"]["resourceType"], context["resource"]["resourceType"]) == ("ClaimResponse", "Task")
    event = next(p for p in pas["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event")
    parts = {p["name"]: p["valueReference"]["reference"] for p in event["part"] if "valueReference" in p}
    assert parts == {"focus": f"{BASE}/ClaimResponse/auth-1", "additional-context": f"{BASE}/Task/case-1"}
    [own] = notifications["own"]
    assert status_value(own, "topic") == TOPIC_URL
    assert own["entry"][1]["resource"]["resourceType"] == "Task"


async def test_a_pas_client_learns_of_the_decision_on_its_pended_request(tmp_path):
    """End to end: a PAS-topic Subscription of Harbor IPA shakes hands, its member's PAS request is pended for
    the CMO, the CMO approves it, and the subscriber receives the certified ClaimResponse as the focus."""
    async with served(f"sqlite:///{tmp_path / 'fhir.db'}") as (app, http):
        await load_directory(http)
        with Receiver() as receiver:
            delivery = Delivery(app)
            try:
                pas_subscription = subscription(receiver.url, topic=PAS_TOPIC_URL, organization=HARBOR)
                created = (await http.post("/Subscription", json=pas_subscription, headers=FHIR_JSON)).json()
                assert created["status"] == "active"
                assert status_value(receiver.bundles("handshake")[0], "topic") == PAS_TOPIC_URL

                submitted = await http.post("/Claim/$submit", headers=FHIR_JSON, json=pas_request(
                    submission(plan="blue-shield-promise-cmc", group=HARBOR, treating=[]), number="PA-2001"))
                claim_response = submitted.json()["entry"][0]["resource"]
                service_request = next(e["resource"]["referral"]["reference"] for e in submitted.json()["entry"]
                                       if e["resource"]["resourceType"] == "Claim")
                task = (await http.get("/Task", params={"focus": service_request})).json()["entry"][0]["resource"]
                decided = await http.post(f"/Task/{task['id']}/$decide", headers=FHIR_JSON,
                                          json=parameters("approve", "Practitioner/pract-13"))
                assert decided.status_code == 200, decided.text
                assert await delivery.run() == 2  # the pend, then the decision

                pended, certified = receiver.bundles("event-notification")
                for notification, code in ((pended, "A4"), (certified, "A1")):
                    assert status_value(notification, "topic") == PAS_TOPIC_URL
                    focus = notification["entry"][1]["resource"]
                    assert (focus["resourceType"], focus["id"]) == ("ClaimResponse", claim_response["id"])
                    assert review_action(focus)["code"] == code
                assert certified["entry"][1]["resource"]["preAuthRef"].startswith("BSP-")
            finally:
                await delivery.close()
