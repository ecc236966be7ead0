"""A Task created through plain REST for a request its EHR stored before shares that request (and the member, the
coverage and the documents it names) with the Task's owner, in the Task's own transaction; an EHR cannot use a Task
to reach another tenant's request: naming one is refused exactly as naming an unknown request is. On both stores."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.second_opinion.codes import TASK_PROFILE
from tests.case_management.helpers import BSP
from tests.second_opinion.helpers import entry_resource, submission
from tests.security.conftest import EHR_SCOPES, load_directory, register

SCOPES = EHR_SCOPES + " system/Task.c"
GROUP_SCOPES = ("system/Task.rs system/ServiceRequest.rs system/ClaimResponse.rs system/Patient.rs system/Coverage.rs "
                "system/Claim.rs")


@pytest.fixture
def parties(secure_each):
    load_directory(secure_each)
    ehr_a = register(secure_each, "Organization/ehr-a", "ehr", SCOPES).sign_in(SCOPES)
    ehr_b = register(secure_each, "Organization/ehr-b", "ehr", SCOPES).sign_in(SCOPES)
    harbor = register(secure_each, "Organization/ipa-harbor", "group", GROUP_SCOPES).sign_in(GROUP_SCOPES)
    valley = register(secure_each, "Organization/ppg-valley", "group", GROUP_SCOPES).sign_in(GROUP_SCOPES)
    return ehr_a, ehr_b, harbor, valley


def store_request(ehr, *, group: str | None = None) -> dict[str, str]:
    """The request, its member, coverage and condition stored through REST (one transaction); ``Type`` -> ``Type/id``."""
    bundle = submission(plan=BSP, group=group, treating=[])
    if group is None:
        entry_resource(bundle, "Patient").pop("generalPractitioner", None)
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": entry["fullUrl"], "resource": entry["resource"],
         "request": {"method": "POST", "url": entry["resource"]["resourceType"]}} for entry in bundle["entry"]]}
    answer = ehr.post("/fhir", transaction)
    assert answer.status_code == 200, answer.text
    locations = [entry["response"]["location"].split("/_history")[0] for entry in answer.json()["entry"]]
    return {location.split("/")[0]: location for location in locations}


def task(focus: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "status": "requested", "intent": "order", "focus": {"reference": focus}, **fields}


def test_a_rest_task_shares_the_request_it_names_with_its_owner(parties):
    ehr_a, ehr_b, harbor, valley = parties
    stored = store_request(ehr_a)
    request = stored["ServiceRequest"]
    assert harbor.get(f"/fhir/{request}").status_code == 404  # nobody shared it yet

    created = ehr_a.post("/fhir/Task", task(request, owner={"reference": "Organization/ipa-harbor"}))
    assert created.status_code == 201, created.text
    for reference in (request, stored["Patient"], stored["Coverage"], f"Task/{created.json()['id']}"):
        assert harbor.get(f"/fhir/{reference}").status_code == 200, reference
        assert valley.get(f"/fhir/{reference}").status_code == 404, reference
        assert ehr_b.get(f"/fhir/{reference}").status_code == 404, reference
    assert ehr_a.get(f"/fhir/{request}").status_code == 200  # the EHR keeps its own
    assert harbor.get("/fhir/ServiceRequest?_total=accurate").json()["total"] == 1


def test_a_rest_task_that_starts_the_workflow_shares_the_case_with_the_deciding_group(parties):
    ehr_a, _, harbor, valley = parties
    stored = store_request(ehr_a, group="Organization/ipa-harbor")
    workflow = task(stored["ServiceRequest"], meta={"profile": [TASK_PROFILE]}, **{"for": {"reference": stored["Patient"]}},
                    code={"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "approve"}]})
    created = ehr_a.post("/fhir/Task", workflow)
    assert created.status_code == 201, created.text
    routed = ehr_a.get(f"/fhir/Task/{created.json()['id']}").json()
    assert routed["owner"]["reference"] == "Organization/ipa-harbor"  # the workflow named the deciding group
    authorization = routed["output"][0]["valueReference"]["reference"]
    for reference in (stored["ServiceRequest"], f"Task/{routed['id']}", authorization):
        assert harbor.get(f"/fhir/{reference}").status_code == 200, reference
        assert valley.get(f"/fhir/{reference}").status_code == 404, reference


@pytest.mark.parametrize("element", ["focus", "basedOn"])
def test_a_task_naming_another_tenants_request_is_refused_as_an_unknown_one(parties, element):
    ehr_a, ehr_b, _, _ = parties
    theirs = store_request(ehr_a)["ServiceRequest"]

    def attempt(reference: str) -> Any:
        named = {"focus": {"reference": reference}} if element == "focus" else {"basedOn": [{"reference": reference}]}
        body = {**task("Patient/x"), **named, "owner": {"reference": "Organization/ehr-b"}}
        if element == "basedOn":
            body.pop("focus")
        return ehr_b.post("/fhir/Task", body)

    hidden, unknown = attempt(theirs), attempt("ServiceRequest/never-was")
    assert hidden.status_code == unknown.status_code == 422, hidden.text
    assert hidden.json()["issue"] == [
        {**issue, "diagnostics": issue["diagnostics"].replace("ServiceRequest/never-was", theirs)}
        for issue in unknown.json()["issue"]]
    assert attempt(f"http://testserver/fhir/{theirs}").status_code == 422  # an absolute URL is no way round
    assert ehr_b.get(f"/fhir/{theirs}").status_code == 404  # still not shared with the caller
    assert ehr_b.get("/fhir/Task?_total=accurate").json()["total"] == 0


def test_only_what_the_writer_sees_is_shared(parties):
    """EHR B's own request naming EHR A's member: a Task B creates for it shares B's request, never A's member."""
    ehr_a, ehr_b, _, valley = parties
    member = store_request(ehr_a)["Patient"]
    own = ehr_b.post("/fhir/ServiceRequest", {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": member}})
    assert own.status_code == 201, own.text
    request = f"ServiceRequest/{own.json()['id']}"
    assert ehr_b.post("/fhir/Task", task(request, owner={"reference": "Organization/ppg-valley"})).status_code == 201
    assert valley.get(f"/fhir/{request}").status_code == 200
    assert valley.get(f"/fhir/{member}").status_code == 404
