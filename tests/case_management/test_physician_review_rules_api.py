"""Who may decide a case and whom a decision may authorize (90.2.17 procedures 4-6; contract "Review and
decisions"). Each test names the clause it enforces and the competitor that passes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.case_management.helpers import CMO, decide_ok, history_length, in_review, parameters, post_decide
from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import submission, submit_ok

ASSIGN = "assignedProvider"


def put(client: TestClient, resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


def nurse_at_harbor(client: TestClient) -> str:
    """A registered nurse with an active role at Harbor IPA: a licence, but no MD or DO."""
    put(client, {"resourceType": "Practitioner", "id": "rn-01", "name": [{"family": "Ortiz", "given": ["Lena"]}],
                 "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360",
                                                         "code": "RN"}]}}]})
    put(client, {"resourceType": "PractitionerRole", "id": "rn-01-harbor", "active": True,
                 "practitioner": {"reference": "Practitioner/rn-01"}, "organization": {"reference": "Organization/ipa-harbor"}})
    return "Practitioner/rn-01"


def refused(client: TestClient, task_id: str, body: dict[str, Any], words: str) -> None:
    response = post_decide(client, task_id, body)
    assert response.status_code == 422, response.text
    assert any(words in issue["diagnostics"] for issue in response.json()["issue"]), response.text
    assert history_length(client, f"Task/{task_id}") == 1  # nothing written


def assigned(reference: str) -> dict[str, Any]:
    return {ASSIGN: {"valueReference": {"reference": reference}}}


def test_90_2_17_procedure_4_a_reviewer_who_is_not_a_physician_is_refused_on_each_store(client_on_each_store):
    """90.2.17 procedure 4: "presented to the Chief Medical Officer or physician designee": a nurse with an active
    role at the deciding IPA is refused (422 naming the rule); the IPA's physician pract-13 decides."""
    client = client_on_each_store
    case = in_review(client)
    refused(client, case.task["id"], parameters("approve", nurse_at_harbor(client)), "is not a physician")
    assert decide_ok(client, case.task["id"], parameters("approve", CMO)).business_status == "approved"


def test_90_2_17_the_reviewer_needs_an_active_role_at_the_organization_that_owns_the_task(client):
    """90.2.17 procedure 10 (the IPA processes its requests) and the contract: the reviewer has an active role at
    Task.owner (ipa-harbor): a Sunrise IPA physician (pract-17) and a Health Net PPG physician (pract-03) are
    refused; the Harbor physician decides."""
    case = in_review(client)
    assert case.task["owner"]["reference"] == "Organization/ipa-harbor"
    for outsider in ("Practitioner/pract-17", "Practitioner/pract-03", "PractitionerRole/role-17"):
        refused(client, case.task["id"], parameters("approve", outsider), "has no active role at 'Organization/ipa-harbor'")
    decide_ok(client, case.task["id"], parameters("approve", "PractitionerRole/role-13"))


def test_90_2_17_purpose_the_requester_or_a_treating_physician_does_not_decide(client):
    """90.2.17 purpose ("not previously involved in the member's treatment plan"): the physician who asked
    (pract-13) cannot decide the request, nor can a physician treating the member (pract-12); a colleague of the
    same IPA who is not involved (pract-16, a surgeon and MD) can."""
    case = in_review(client, requester="Practitioner/pract-13", treating=["Practitioner/pract-12"])
    refused(client, case.task["id"], parameters("approve", "Practitioner/pract-13"), "requested this second opinion")
    refused(client, case.task["id"], parameters("approve", "Practitioner/pract-12"), "involved in the member's care")
    decide_ok(client, case.task["id"], parameters("approve", "Practitioner/pract-16"))


def test_90_2_17_procedure_4_a_case_on_hold_for_information_is_neither_approved_nor_denied(client):
    """90.2.17 procedures 3-4: only "the completed referral" is presented: a case on hold for missing information
    is refused for approve, deny and refer alike (422 on Task.status)."""
    pended = submit_ok(client, example("submit-incomplete"))
    assert pended.task["status"] == "on-hold"
    task_id = pended.task["id"]
    reviewer = "Practitioner/pract-03"  # a Valley physician: the reviewer rules pass, the state does not
    for body in (
        parameters("approve", reviewer, **assigned("PractitionerRole/role-05")),
        parameters("deny", reviewer, reason={"valueString": "not indicated"}),
        parameters("refer", reviewer, consultativeReviewer={"valueReference": {"reference": "Practitioner/pract-05"}}),
    ):
        response = post_decide(client, task_id, body)
        assert response.status_code == 422 and response.json()["issue"][0]["expression"] == ["Task.status"], response.text


def test_90_2_17_procedure_6b_assigned_provider_must_be_board_certified_in_the_requested_specialty(client):
    """90.2.17 procedure 6b: "a Board Certified Physician of the same specialty": role-14 (a cardiology role,
    board-certified in internal medicine only) is refused; role-15 (board-certified cardiologist) is authorized."""
    case = in_review(client)
    refused(client, case.task["id"], parameters("approve", **assigned("PractitionerRole/role-14")), "not board-certified")
    decision = decide_ok(client, case.task["id"], parameters("approve", **assigned("PractitionerRole/role-15")))
    assert decision.authorized_provider == "Practitioner/pract-15"


def test_90_2_17_procedure_5_assigned_provider_of_another_specialty_is_refused(client):
    """90.2.17 procedure 6b "of the same specialty": a surgeon (role-16) for a cardiology request is refused, so the
    member is never told about a consultation the plan would not authorize."""
    case = in_review(client)
    refused(client, case.task["id"], parameters("approve", **assigned("PractitionerRole/role-16")), "specialty is not 207RC0000X")


def test_90_2_17_procedure_6b_assigned_provider_out_of_network_while_one_in_network_qualifies_is_refused(client):
    """90.2.17 procedure 6b (the PPG, then a contracted specialist; out of network only "If the specialty is not
    available within Blue Shield Promise"): role-05, a board-certified cardiologist of a Health Net group, is out of
    the Blue Shield Promise network while pract-15 qualifies in it: refused."""
    case = in_review(client)
    refused(client, case.task["id"], parameters("approve", **assigned("PractitionerRole/role-05")), "out of network")


def test_health_net_assigned_provider_must_hold_an_active_role(client):
    """Health Net "appropriately qualified health care professional" (routing proposes only active roles): in a
    Valley case in physician review, the retired cardiologist's inactive role-25 is refused; the active role-10 (Health
    Net does not require board certification) is authorized."""
    case = submit_ok(client, submission(reason="417163006", identifier="hn-review"))  # a coded reason of its own
    assert case.business_status == "physician-review" and case.task["owner"]["reference"] == "Organization/ppg-valley"
    reviewer = "Practitioner/pract-03"
    refused(client, case.task["id"], parameters("approve", reviewer, **assigned("PractitionerRole/role-25")), "not active")
    decision = decide_ok(client, case.task["id"], parameters("approve", reviewer, **assigned("PractitionerRole/role-10")))
    assert decision.authorized_provider == "Practitioner/pract-10"
