"""Pended PAS requests are followed through Da Vinci PAS's own subscription topic, alongside the project's:
the same events, filters and organization scoping, the ClaimResponse as the focus (both stores)."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.storage.base import ResourceStore
from fhir_server.subscriptions.criteria import read_subscription
from fhir_server.subscriptions.topic import PAS_TOPIC_URL, TOPIC_URL
from tests.subscriptions.builders import subscription
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
