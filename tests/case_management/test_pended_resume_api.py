"""A case pended for information resumes when the provider updates the ServiceRequest (issue 5 "Pended for
information"; 90.2.17 procedure 3: the case manager obtains the missing information from the treating provider)."""

from __future__ import annotations

from typing import Any

from tests.case_management.helpers import history_length, notices_of, search
from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import Answer, submit_ok


def read(client, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}", headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return response.json()


def put(client, resource: dict[str, Any]) -> Any:
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)


def pended_for_the_clinical_basis_only(client) -> Answer:
    """The incomplete sample with its demographics completed: only the clinical basis (a Condition or supporting
    documents) is missing, which the provider supplies by updating the request."""
    bundle = example("submit-incomplete")
    complete = example("submit-health-net-cardiology")
    for resource_type in ("Patient", "Coverage"):
        index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == resource_type)
        bundle["entry"][index]["resource"] = next(
            e["resource"] for e in complete["entry"] if e["resource"]["resourceType"] == resource_type)
    answer = submit_ok(client, bundle)
    assert answer.task["status"] == "on-hold"
    assert answer.inputs("missing-information") == ["ServiceRequest.reasonReference | ServiceRequest.supportingInfo"]
    return answer


def test_an_update_of_the_pended_request_resumes_and_decides_the_case(client_on_each_store):
    """The provider PUTs the ServiceRequest with its supporting documents: in the same transaction the case is
    re-evaluated (Health Net: certified automatically), as new versions of the same Task and ClaimResponse, and the
    member and the provider are notified."""
    client = client_on_each_store
    pended = pended_for_the_clinical_basis_only(client)
    request = read(client, f"ServiceRequest/{pended.service_request['id']}")
    condition = client.post("/fhir/Condition", json={
        "resourceType": "Condition", "subject": request["subject"],
        "code": {"text": "Coronary artery disease, three vessels"}}, headers=FHIR_JSON)
    assert condition.status_code == 201, condition.text
    request["reasonReference"] = [{"reference": f"Condition/{condition.json()['id']}"}]
    assert put(client, request).status_code == 200
    task = read(client, f"Task/{pended.task['id']}")
    response = read(client, f"ClaimResponse/{pended.claim_response['id']}")
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "approved"
    assert "input" not in task or all(i["type"]["coding"][0]["code"] != "missing-information" for i in task["input"])
    assert response["meta"]["versionId"] == "2" and "preAuthRef" in response
    assert len(search(client, f"Communication?about=Task/{pended.task['id']}")) == 3  # member, provider, consultant


def test_an_update_that_still_lacks_the_information_keeps_the_case_pended_and_silent(client):
    """An update that does not supply what is missing leaves the case on hold (a new evaluation, no notice); an
    update of a request whose case is decided changes nothing of the case."""
    pended = pended_for_the_clinical_basis_only(client)
    request = read(client, f"ServiceRequest/{pended.service_request['id']}")
    request["note"] = [{"text": "records will follow"}]
    assert put(client, request).status_code == 200
    task = read(client, f"Task/{pended.task['id']}")
    assert task["status"] == "on-hold"
    assert search(client, f"Communication?about=Task/{pended.task['id']}") == []
    decided = submit_ok(client, example("submit-primary-care"))
    versions = history_length(client, f"Task/{decided.task['id']}")
    decided_request = read(client, f"ServiceRequest/{decided.service_request['id']}")
    decided_request["note"] = [{"text": "a later remark"}]
    assert put(client, decided_request).status_code == 200
    assert history_length(client, f"Task/{decided.task['id']}") == versions


def test_a_resubmission_of_the_pended_request_decides_once(client):
    """The other way to resume (a $submit with the same identifier) updates the stored request too: the case is
    decided once, by the resubmission, with one set of notices (member, provider, consultant)."""
    pended = submit_ok(client, example("submit-incomplete"))
    decided = submit_ok(client, example("submit-health-net-cardiology"))
    assert decided.task["id"] == pended.task["id"] and decided.business_status == "approved"
    assert history_length(client, f"Task/{pended.task['id']}") == 2
    assert len(notices_of(decided.bundle)) == 3
    assert len(search(client, f"Communication?about=Task/{pended.task['id']}")) == 3
