"""``POST [base]/Task/{id}/$decide``: a physician reviewer's decision (each test names the clause it checks)."""

from __future__ import annotations

from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.decisions import parse_decision, reviewer_for
from fhir_server.services.context import RequestContext

from tests.case_management.helpers import (
    CMO,
    decide_ok,
    history_length,
    in_review,
    parameters,
    post_decide,
    recipients,
    search,
    validation_errors,
)
from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import submission, submit_ok

DENIAL_REASON = "Surgery is clearly indicated; a second opinion would not change the plan of care"


def test_90_2_17_procedure_5_approval_authorizes_the_proposed_provider(client_on_each_store):
    """90.2.17 procedure 5 (the CMO approves) and the issue: an approval without assignedProvider authorizes the
    Task's proposed-provider; a new version of the same ClaimResponse becomes A1 with preAuthRef/preAuthPeriod and
    the plan's certified notes; the Task completes (approved); the decision tag becomes A1 on both."""
    client = client_on_each_store
    case = in_review(client)
    decision = decide_ok(client, case.task["id"], parameters("approve"))
    response, task = decision.claim_response, decision.task
    assert response["id"] == case.claim_response["id"] and response["meta"]["versionId"] == "2"
    assert decision.review_action == "A1" and decision.authorized_provider == "Practitioner/pract-15"
    assert response["preAuthRef"] == case.authorization_number == decision.authorization_number
    assert response["preAuthPeriod"] == {"start": "2026-11-25", "end": "2027-02-23"}
    assert "not responsible for the cost" in decision.notes  # 90.2.17 procedure 8, the plan's certified note
    assert task["id"] == case.task["id"] and task["status"] == "completed" and decision.business_status == "approved"
    assert tag_value(response["meta"]["tag"], "decision") == tag_value(task["meta"]["tag"], "decision") == "A1"
    assert tag_value(task["meta"]["tag"], "reason") == "questions-surgery"  # the other report dimensions are kept
    assert decision.service_request["id"] == case.service_request["id"]
    assert decision.provenance["agent"][0]["who"]["reference"] == CMO
    assert search(client, "ClaimResponse?_tag=https://codesystem.x12.org/005010/306|A1")[0]["id"] == response["id"]
    for resource in (response, task, *decision.notices, decision.provenance):
        assert validation_errors(client, resource) == [], resource["resourceType"]


def test_approval_with_an_assigned_provider_authorizes_that_role_and_retiers_the_case(client):
    """The issue: optional assignedProvider (PractitionerRole): the CMO assigns the expert-panel cardiologist
    (role-19, 90.2.17 procedure 6b "contracted specialist"): pract-19 is authorized, the tier becomes network."""
    case = in_review(client)
    decision = decide_ok(
        client, case.task["id"], parameters("approve", assignedProvider={"valueReference": {"reference": "PractitionerRole/role-19"}})
    )
    assert decision.authorized_provider == "Practitioner/pract-19"
    assert tag_value(decision.claim_response["meta"]["tag"], "tier") == "network"
    assert "Jonathan Weiss" in decision.notices[0]["payload"][0]["contentString"]


def test_90_2_17_procedure_5_denial_is_A3_with_the_reason_and_grievance_rights(client_on_each_store):
    """90.2.17 procedure 5/6 (denied by the CMO after a consultative review) and the issue: A3 not certified with
    the reviewer's reason in the reason codes and processNote, the plan's grievance note, no authorization; the
    Task completes as denied with the reason; the consultative reviewer is recorded in the Provenance."""
    client = client_on_each_store
    case = in_review(client)
    decision = decide_ok(
        client,
        case.task["id"],
        parameters(
            "deny",
            reason={"valueString": DENIAL_REASON},
            consultativeReviewer={"valueReference": {"reference": "PractitionerRole/role-14"}},
        ),
    )
    response = decision.claim_response
    assert decision.review_action == "A3" and response["disposition"] == "Not certified"
    assert "preAuthRef" not in response and "preAuthPeriod" not in response and decision.authorized_provider is None
    action = response["item"][0]["adjudication"][0]["extension"][0]["extension"]
    assert {"url": "reasonCode", "valueCodeableConcept": {"text": DENIAL_REASON}} in action
    assert f"Reason: {DENIAL_REASON}" in decision.notes and "grievance" in decision.notes
    assert decision.task["status"] == "completed" and decision.business_status == "denied"
    assert decision.task["statusReason"] == {"text": DENIAL_REASON}
    assert tag_value(decision.task["meta"]["tag"], "decision") == "A3"
    agents = {a["type"]["coding"][0]["code"]: a["who"]["reference"] for a in decision.provenance["agent"]}
    assert agents == {"author": CMO, "informant": "PractitionerRole/role-14"}


def test_denial_reason_as_a_coded_concept(client):
    """The issue: reason is a CodeableConcept or a string; a coded reason is kept as given and read in words."""
    reason = {"coding": [{"system": "http://snomed.info/sct", "code": "183932001", "display": "Procedure contraindicated"}]}
    decision = decide_ok(client, in_review(client).task["id"], parameters("deny", reason={"valueCodeableConcept": reason}))
    assert decision.task["statusReason"] == reason
    assert "Reason: Procedure contraindicated" in decision.notes


def test_health_net_few_if_any_denials_the_server_never_denies_on_its_own(client):
    """Health Net "few, if any" denials; contract "The server never denies on its own": every sample request and
    a request with a non-qualifying reason end certified or pended, never A3; only $decide writes A3."""
    answers = [submit_ok(client, example(name)) for name in (
        "submit-health-net-cardiology", "submit-incomplete", "submit-out-of-network-choice", "submit-primary-care",
        "submit-bsp-cmc-third-opinion")]
    answers.append(submit_ok(client, submission(reason="399211009", identifier="other-reason")))
    assert {a.review_action for a in answers} <= {"A1", "A4"}
    assert search(client, "ClaimResponse?_tag=https://codesystem.x12.org/005010/306|A3") == []


def test_a_final_task_cannot_be_decided_again_and_stays_as_it_was(client_on_each_store):
    """The issue: $decide "is refused (422) for a Task that is already final": a decided case, and a case Health
    Net certified automatically; nothing is written by the refusal."""
    client = client_on_each_store
    case = in_review(client)
    decide_ok(client, case.task["id"], parameters("approve"))
    again = post_decide(client, case.task["id"], parameters("deny", reason={"valueString": "changed my mind"}))
    assert again.status_code == 422 and again.json()["issue"][0]["expression"] == ["Task.status"]
    assert history_length(client, f"ClaimResponse/{case.claim_response['id']}") == 2
    certified = submit_ok(client, submission(identifier="auto-certified"))
    assert post_decide(client, certified.task["id"], parameters("deny", reason={"valueString": "no"})).status_code == 422


def test_unknown_task_is_404(client):
    response = post_decide(client, "no-such-task", parameters("approve"))
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_a_task_that_is_not_a_second_opinion_is_422(client):
    """Only the second-opinion workflow's Tasks are decided: a generic Task is refused, unchanged."""
    created = client.post(
        "/fhir/Task", json={"resourceType": "Task", "status": "in-progress", "intent": "order"}, headers=FHIR_JSON
    )
    response = post_decide(client, created.json()["id"], parameters("approve"))
    assert response.status_code == 422 and response.json()["issue"][0]["expression"] == ["Task.meta.profile"]


def test_malformed_parameters_are_400_with_every_problem_at_once(client):
    """Contract: "all problems of a resource are reported at once": no decision, a Patient as reviewer, an unknown
    parameter; a denial without a reason; an unknown decision code; a body that is no Parameters."""
    task_id = in_review(client).task["id"]
    response = post_decide(client, task_id, parameters(None, "Patient/x", findings=None, color={"valueString": "blue"}))
    assert response.status_code == 400
    expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", ())]
    assert "Parameters.parameter[0].valueReference" in expressions and "Parameters.parameter[1].name" in expressions
    assert any("'decision' is required" in i["diagnostics"] for i in response.json()["issue"])
    # 90.2.17 procedure 5: the reviewer documents the findings on the form, for every decision
    assert any("'findings' is required" in i["diagnostics"] for i in response.json()["issue"])
    denial = post_decide(client, task_id, parameters("deny"))
    assert denial.status_code == 400 and "reason" in denial.json()["issue"][0]["diagnostics"]
    assert post_decide(client, task_id, parameters("maybe")).status_code == 400
    not_parameters = client.post(f"/fhir/Task/{task_id}/$decide", json={"resourceType": "Basic"}, headers=FHIR_JSON)
    assert not_parameters.status_code == 400
    assert history_length(client, f"Task/{task_id}") == 1


def test_nothing_half_written_when_the_decision_is_refused_inside_its_transaction(client_on_each_store):
    """All-or-nothing: an unknown reviewer (422), and an approval of a case pended for information (422: 90.2.17
    procedure 4 presents only the completed referral), leave the ClaimResponse, the Task and the notices as
    they were."""
    client = client_on_each_store
    case = in_review(client)
    unknown = post_decide(client, case.task["id"], parameters("approve", "Practitioner/nobody"))
    assert unknown.status_code == 422 and "Practitioner/nobody" in unknown.json()["issue"][0]["diagnostics"]
    pended = submit_ok(client, example("submit-incomplete"))
    assert pended.task["status"] == "on-hold" and pended.proposed_provider is None
    nobody = post_decide(client, pended.task["id"], parameters("approve"))
    assert nobody.status_code == 422 and nobody.json()["issue"][0]["expression"] == ["Task.status"]
    for answer in (case, pended):
        assert history_length(client, f"Task/{answer.task['id']}") == 1
        assert history_length(client, f"ClaimResponse/{answer.claim_response['id']}") == 1
        assert search(client, f"Communication?about=Task/{answer.task['id']}") == []
    assert search(client, "Provenance") == []


def test_90_2_17_procedure_5_both_member_and_provider_are_notified_of_a_physician_decision(client):
    """90.2.17 procedure 5: "Both the member and provider will be notified of the determination": one notice to
    the member and one to the requesting physician, about the ClaimResponse and the Task."""
    case = in_review(client)
    decision = decide_ok(client, case.task["id"], parameters("deny", reason={"valueString": DENIAL_REASON}))
    patient = case.service_request["subject"]["reference"]
    assert recipients(decision.notices) == sorted([patient, case.service_request["requester"]["reference"]])
    stored = search(client, f"Communication?recipient={patient}")
    assert [n["id"] for n in stored] == [n["id"] for n in decision.notices if n["recipient"][0]["reference"] == patient]


def test_90_2_17_procedure_5_the_consultative_reviewer_is_of_the_requested_specialty(client):
    """90.2.17 procedure 5: "a consultative review with a physician within the same specialty as the one being
    requested": a surgeon (role-16) consulting on a cardiology request is refused (422, nothing written); a
    cardiologist named as a Practitioner (pract-14, through their cardiology role) is accepted."""
    case = in_review(client)
    surgeon = {"valueReference": {"reference": "PractitionerRole/role-16"}}
    refused = post_decide(client, case.task["id"], parameters("approve", consultativeReviewer=surgeon))
    assert refused.status_code == 422 and "207RC0000X" in refused.json()["issue"][0]["diagnostics"]
    assert history_length(client, f"Task/{case.task['id']}") == 1
    cardiologist = {"valueReference": {"reference": "Practitioner/pract-14"}}
    decision = decide_ok(client, case.task["id"], parameters("approve", consultativeReviewer=cardiologist))
    assert decision.provenance["agent"][1]["who"]["reference"] == "Practitioner/pract-14"


def test_the_reviewer_seam_the_signed_in_physician_decides():
    """The issue: "When authorization is on, the reviewer is the signed-in physician": a request context with a
    physician identity replaces the reviewer the Parameters name; without one the Parameters' reviewer stands."""
    request = parse_decision(parameters("approve"))
    signed_in = RequestContext(base_url="http://test/fhir", identity="Practitioner/pract-12")
    assert reviewer_for(signed_in, request).reviewer == "Practitioner/pract-12"
    assert reviewer_for(RequestContext(base_url="http://test/fhir"), request).reviewer == CMO


def test_capability_statement_lists_decide_on_task(client):
    """Issue: "Put each operation in the CapabilityStatement": $decide on Task with its OperationDefinition,
    which the server serves."""
    statement = client.get("/fhir/metadata", headers=FHIR_JSON).json()
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    decide = next(o for o in task["operation"] if o["name"] == "decide")
    assert decide["definition"] == "http://example.org/fhir/second-opinion/OperationDefinition/Task-decide"
    assert client.get("/fhir/OperationDefinition/Task-decide", headers=FHIR_JSON).status_code == 200


def test_90_2_17_third_opinion_2_the_approval_says_it_is_covered_even_if_the_surgery_is_not(client):
    """90.2.17 Third Opinion 2: "Second and third opinions are covered even though the surgery or other procedure,
    if performed, is determined not covered": the approved third opinion says so, in the plan's words, with the
    out-of-network cost note of procedure 6b (the only qualified cardiologist left is out of network)."""
    case = submit_ok(client, example("submit-bsp-cmc-third-opinion"))
    decision = decide_ok(client, case.task["id"], parameters("approve"))
    assert decision.review_action == "A1"
    assert "covered even though the surgery or other procedure" in decision.notes
    assert "incurs the cost" in decision.notes
    assert decision.authorized_provider not in ("Practitioner/pract-15", "Practitioner/pract-19")


def test_90_2_17_purpose_the_reviewer_cannot_assign_a_professional_already_involved(client):
    """90.2.17 purpose: "not previously involved in the member's treatment plan": pract-19 treats the member
    (named as Practitioner); assigning his PractitionerRole role-19 is refused (422) and nothing is written."""
    case = in_review(client, treating=["Practitioner/pract-19"])
    assigned = {"valueReference": {"reference": "PractitionerRole/role-19"}}
    refused = post_decide(client, case.task["id"], parameters("approve", assignedProvider=assigned))
    assert refused.status_code == 422, refused.text
    assert "not previously involved" in refused.json()["issue"][0]["diagnostics"]
    assert history_length(client, f"Task/{case.task['id']}") == 1
    assert history_length(client, f"ClaimResponse/{case.claim_response['id']}") == 1


def test_90_2_17_procedure_5_refer_for_a_consultative_review_then_decide(client):
    """90.2.17 procedure 5: the CMO "may approve or deny the request or refer it for a consultative review with a
    physician within the same specialty": ``refer`` keeps the case in review (Task in-progress, businessStatus
    consultative-review, ClaimResponse still A4, no notice: no determination yet); the approval then decides."""
    case = in_review(client)
    consultant = {"valueReference": {"reference": "Practitioner/pract-19"}}
    referred = decide_ok(client, case.task["id"], parameters("refer", consultativeReviewer=consultant))
    assert referred.task["status"] == "in-progress" and referred.business_status == "consultative-review"
    assert referred.review_action == "A4" and "preAuthRef" not in referred.claim_response
    assert referred.notices == []
    assert referred.provenance["agent"][1]["who"]["reference"] == "Practitioner/pract-19"
    approved = decide_ok(client, case.task["id"], parameters("approve"))
    assert approved.review_action == "A1" and approved.task["status"] == "completed"
    assert len(approved.notices) == 3  # the member, the requesting provider and the authorized consultant


def test_a_referral_needs_the_consultative_reviewer(client):
    """90.2.17 procedure 5 names who reviews: ``refer`` without consultativeReviewer is malformed (400)."""
    case = in_review(client)
    refused = post_decide(client, case.task["id"], parameters("refer"))
    assert refused.status_code == 400 and "consultativeReviewer" in refused.text
