"""A small, fixed data set for the search tests (seeded into each backend's fresh store)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.search.parameters import NETWORK_REFERENCE_EXTENSION
from fhir_server.storage.base import StoredResource
from tests.storage.helpers import patient

NUCC = "http://nucc.org/provider-taxonomy"
ORG_TYPE = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS"
V2_0336 = "http://terminology.hl7.org/CodeSystem/v2-0336"


def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


SEED: list[dict[str, Any]] = [
    patient(
        "Chalmers",
        "Peter",
        "James",
        id="p1",
        birthDate="1974-12-25",
        gender="male",
        identifier=[{"system": "http://sys-a", "value": "123"}],
        meta={"tag": [{"system": "http://tags", "code": "vip"}], "profile": ["http://example.org/P"]},
    ),
    patient(
        "Müller",
        "Zoë",
        id="p2",
        birthDate="1980-05",
        gender="female",
        identifier=[{"system": "http://sys-b", "value": "123"}, {"system": "http://sys-b", "value": "a,b"}],
        meta={"security": [{"system": "http://sec", "code": "R"}]},
    ),
    patient("Chalmers-Smith", "Anna", id="p3", birthDate="1990", gender="female"),
    patient("Smith", "Chal", id="p4", identifier=[{"value": "123"}]),
    {"resourceType": "Organization", "id": "o1", "name": "Acme Health",
     "type": [{"coding": [{"system": ORG_TYPE, "code": "payer"}]}]},
    {"resourceType": "Organization", "id": "o2", "name": "Acme Network", "partOf": _ref("Organization/o1"),
     "type": [{"coding": [{"system": ORG_TYPE, "code": "ntwk"}]}]},
    {"resourceType": "Practitioner", "id": "d1", "name": [{"family": "House", "given": ["Greg"]}]},
    {"resourceType": "PractitionerRole", "id": "r1", "active": True, "practitioner": _ref("Practitioner/d1"),
     "organization": _ref("Organization/o1"),
     "specialty": [{"coding": [{"system": NUCC, "code": "207R00000X", "display": "Internal Medicine"}]}],
     "extension": [{"url": NETWORK_REFERENCE_EXTENSION, "valueReference": _ref("Organization/o2")}]},
    {"resourceType": "PractitionerRole", "id": "r2", "active": False, "practitioner": _ref("Practitioner/d1")},
    {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
     "subject": _ref("Patient/p1"), "authoredOn": "2024-03-10T10:00:00Z", "requester": _ref("Practitioner/d1"),
     "code": {"coding": [{"system": V2_0336, "code": "S", "display": "Second Opinion"}]}},
    {"resourceType": "ServiceRequest", "id": "sr2", "status": "draft", "intent": "order",
     "subject": _ref("http://other.org/fhir/Patient/p2"), "authoredOn": "2024-03-11T09:30:00+02:00",
     "code": {"text": "Consultation"}},
    {"resourceType": "ServiceRequest", "id": "sr3", "status": "active", "intent": "plan",
     "subject": _ref("Group/g1"), "authoredOn": "2023", "requester": _ref("urn:uuid:abc")},
    {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
     "focus": _ref("ServiceRequest/sr1"), "for": _ref("Patient/p1"), "owner": _ref("Organization/o1")},
    {"resourceType": "Subscription", "id": "s1", "status": "active", "criteria": "Task?",
     "channel": {"type": "rest-hook", "endpoint": "https://hooks.example.org/a"}},
]


@pytest.fixture
async def seeded(store) -> dict[str, StoredResource]:
    """The seed resources stored in order, by id."""
    stored: dict[str, StoredResource] = {}
    for resource in SEED:
        body = {k: v for k, v in resource.items() if k != "id"}
        stored[resource["id"]] = await store.create(body, resource_id=resource["id"])
    return stored
