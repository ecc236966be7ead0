"""``POST [base]/ServiceRequest/$submit`` end to end, on the fixed test directory (each test names its clause)."""

from __future__ import annotations

from datetime import datetime, timezone

from fhir_server.second_opinion import references
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.codes import AUTHORIZATION_PROFILE, TASK_PROFILE, X12_SERVICE_TYPE_SYSTEM

from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import post_submit, submission, submit_ok

BSP = "blue-shield-promise-cmc"
CARDIOLOGY, MEDICAL_ONCOLOGY, FAMILY_MEDICINE = "207RC0000X", "207RX0202X", "207Q00000X"


def test_health_net_certifies_a_complete_qualifying_request_automatically(client):
    """Health Net "few, if any" denials, rule 1 and 10: A1 at once, one consultation, authorization number,
    validity period, authorized provider, and the plan's notes (copayment; tests/lab/X-ray back to the PPG/PCP)."""
    answer = submit_ok(client, submission())
    assert answer.review_action == "A1"
    assert answer.task["status"] == "completed" and answer.business_status == "approved"
    assert answer.claim_response["outcome"] == "complete"
    assert answer.claim_response["preAuthRef"] == answer.authorization_number
    assert answer.claim_response["preAuthPeriod"] == {"start": "2026-11-25", "end": "2027-02-23"}
    # pract-04 is the treating cardiologist: the group's other board-certified cardiologist gets it.
    assert answer.authorized_provider == "Practitioner/pract-05"
    assert "copayment" in answer.notes and "X-ray" in answer.notes and "one-time-only" in answer.notes
    assert answer.claim["use"] == "preauthorization"
    assert answer.claim["item"][0]["quantity"]["value"] == 1
    assert answer.claim["item"][0]["productOrService"]["coding"][0] == {
        "system": X12_SERVICE_TYPE_SYSTEM, "code": "3", "display": "Consultation"}
    assert answer.claim_response["request"]["reference"] == f"Claim/{answer.claim['id']}"
    assert answer.claim["referral"]["reference"] == f"ServiceRequest/{answer.service_request['id']}"
    assert answer.task["owner"]["reference"] == "Organization/ppg-valley"  # the delegated PPG decides


def test_90_2_17_procedure_4_every_request_goes_to_the_chief_medical_officer(client):
    """90.2.17 procedure 4 and 6b: pended A4 for physician review with a proposed board-certified cardiologist
    of the member's IPA; pract-14 (not board-certified in cardiology) is never proposed."""
    answer = submit_ok(client, submission(plan=BSP, group="Organization/ipa-harbor", treating=[]))
    assert answer.review_action == "A4"
    assert answer.task["status"] == "in-progress" and answer.business_status == "physician-review"
    assert answer.proposed_provider == "Practitioner/pract-15"
    assert "preAuthRef" not in answer.claim_response and answer.authorized_provider is None
    assert "not responsible for the cost" not in answer.notes  # certified notes only once certified
    assert answer.task["owner"]["reference"] == "Organization/ipa-harbor"  # 90.2.17 procedure 10: IPA level


def test_90_2_17_procedure_6b_expert_panel_when_the_ipa_has_no_qualified_specialist(client):
    """90.2.17 procedure 6b and the expert panel: pract-15 treats, pract-14 is not board-certified: the
    panel cardiologist pract-19 is proposed (tier network)."""
    answer = submit_ok(client, submission(plan=BSP, group="Organization/ipa-harbor", treating=["Practitioner/pract-15"]))
    assert answer.proposed_provider == "Practitioner/pract-19"
    assert tag_value(answer.tags, "tier") == "network"


def test_health_net_equivalent_specialty_medical_oncology_to_hematology_oncology(client):
    """Health Net "same or equivalent specialty": no Medical Oncology in network, Hematology & Oncology is."""
    answer = submit_ok(client, submission(specialty=MEDICAL_ONCOLOGY, treating=[]))
    assert answer.review_action == "A1"
    assert answer.authorized_provider == "Practitioner/pract-08"


def test_primary_care_goes_to_another_pcp_of_the_members_own_group(client):
    """90.2.17 procedure 6a / Health Net PCP: a PCP in the member's own physician group, never their own PCP."""
    answer = submit_ok(client, example("submit-primary-care"))
    assert answer.authorized_provider == "Practitioner/pract-02"
    assert tag_value(answer.tags, "tier") == "group" and tag_value(answer.tags, "group") == "ppg-valley"


def test_health_net_out_of_network_choice_while_in_network_exists_goes_to_member_services(client):
    """Health Net Out-of-Network Requests: a member refusing in-network care is directed to Member Services
    (A4, Task owned by the plan, businessStatus member-services, note says so); never A3."""
    answer = submit_ok(client, example("submit-out-of-network-choice"))
    assert answer.review_action == "A4"
    assert answer.business_status == "member-services"
    assert answer.task["owner"]["reference"] == "Organization/org-health-net"
    assert "Member Services" in answer.notes
    assert answer.proposed_provider == "Practitioner/pract-09"  # the in-network redirection


def test_90_2_17_specialty_care_a_named_out_of_network_professional_goes_to_physician_review(client):
    """90.2.17 procedure 6b: specialty care follows the policy's order (the IPA's board-certified cardiologist
    is proposed, not the out-of-network pract-04 the request names) and the physician reviewer decides; never A3."""
    bundle = submission(plan=BSP, group="Organization/ipa-harbor", treating=[], performer="Practitioner/pract-04")
    answer = submit_ok(client, bundle)
    assert answer.review_action == "A4" and answer.business_status == "physician-review"
    assert answer.proposed_provider == "Practitioner/pract-15"


def test_90_2_17_procedure_6a_the_enrollee_designates_a_pcp_only_on_their_own_request(client):
    """90.2.17 procedure 6a: "If the enrollee is making the request, he or she may designate one of their choice
    from the same network": the member's own request naming pract-17 (Sunrise IPA, same network) proposes
    pract-17; the same request made by a physician stays "within the same physician organization" (pract-12)."""
    changes = {"plan": BSP, "group": "Organization/ipa-harbor", "treating": [], "performer": "Practitioner/pract-17"}
    by_member = submit_ok(client, submission("submit-primary-care", **changes))
    assert by_member.proposed_provider == "Practitioner/pract-17"
    assert tag_value(by_member.tags, "tier") == "network"
    by_physician = submit_ok(
        client, submission("submit-primary-care", **changes, requester="Practitioner/pract-13", identifier="SO-6A")
    )
    assert by_physician.proposed_provider == "Practitioner/pract-12"
    assert tag_value(by_physician.tags, "tier") == "group"


def test_member_choice_in_network_is_honoured(client):
    """Health Net "of the member's choice ... from Health Net's network": a qualified in-network choice wins."""
    answer = submit_ok(client, submission(specialty="207X00000X", treating=[], performer="Practitioner/pract-11"))
    assert answer.review_action == "A1" and answer.authorized_provider == "Practitioner/pract-11"
    assert tag_value(answer.tags, "tier") == "network"  # pract-11 is in ppg-coastal, the member is in ppg-valley


def test_no_in_network_specialist_refers_out_of_network_at_the_plans_cost(client):
    """Health Net "authorizes ... out-of-network ... when no participating provider is available" and rule 4:
    rheumatology exists only out of network; certified with the plan's out-of-network cost note."""
    answer = submit_ok(client, submission(specialty="207RR0500X", treating=[]))
    assert answer.review_action == "A1" and answer.authorized_provider == "Practitioner/pract-23"
    assert tag_value(answer.tags, "tier") == "out-of-network"
    assert "out-of-network" in answer.notes and "cost of Health Net" in answer.notes


def test_incomplete_request_is_pended_then_completed_by_resubmission(client):
    """Contract "Complete information" and 90.2.17 procedures 2-3: A4 on-hold information-missing with one
    input per missing item; the same identifier resubmitted with the data is decided, as new versions of the
    same Task and ClaimResponse."""
    pended = submit_ok(client, example("submit-incomplete"))
    assert pended.review_action == "A4"
    assert pended.task["status"] == "on-hold" and pended.business_status == "information-missing"
    assert pended.inputs("missing-information") == [
        "Patient.birthDate",
        "Coverage.subscriberId",
        "ServiceRequest.reasonReference | ServiceRequest.supportingInfo",
    ]
    assert "Patient.birthDate" in pended.task["statusReason"]["text"]
    decided = submit_ok(client, example("submit-health-net-cardiology"))
    assert decided.review_action == "A1"
    assert decided.claim_response["id"] == pended.claim_response["id"]
    assert decided.task["id"] == pended.task["id"]
    assert decided.service_request["id"] == pended.service_request["id"]
    assert decided.claim_response["meta"]["versionId"] == "2" and decided.task["meta"]["versionId"] == "2"
    assert decided.inputs("missing-information") == []


def test_pended_then_decided_on_each_store(client_on_each_store):
    """The one-transaction write and the resubmission as new versions work on SQLite and on MongoDB."""
    pended = submit_ok(client_on_each_store, example("submit-incomplete"))
    decided = submit_ok(client_on_each_store, example("submit-health-net-cardiology"))
    assert (pended.review_action, decided.review_action) == ("A4", "A1")
    assert decided.claim_response["id"] == pended.claim_response["id"]
    assert decided.claim_response["meta"]["versionId"] == "2"


def test_resubmitting_a_decided_request_returns_the_stored_answer(client):
    """Contract "Submitting": the same identifier while decided answers the stored decision, writing nothing."""
    first = submit_ok(client, submission())
    again = submit_ok(client, submission(specialty="207RR0500X"))
    assert again.claim_response == first.claim_response and again.task == first.task


def test_other_reason_is_accepted_and_goes_to_physician_review(client):
    """Reasons "include, but are not limited to" (90.2.17, §1383.1): another reason is accepted (extensible
    binding) and a physician decides (A4, in-progress, physician-review)."""
    answer = submit_ok(client, submission(reason="ZZ123"))
    assert answer.review_action == "A4" and answer.business_status == "physician-review"
    assert answer.task["status"] == "in-progress"


def test_nobody_qualified_anywhere_goes_to_physician_review(client):
    """Rule 7: no qualified professional in the group, the network or outside: physician review, tier none."""
    answer = submit_ok(client, submission(specialty="2084N0400X", treating=["Practitioner/pract-18"]))
    assert answer.business_status == "physician-review" and answer.proposed_provider is None
    assert tag_value(answer.tags, "tier") == "none"


def test_90_2_17_third_opinion_is_covered_and_routed_away_from_both_prior_physicians(client):
    """90.2.17 Third Opinion 1: covered when the first two opinions differ; neither pract-15 nor pract-19 is
    proposed; pract-14 is not board-certified. The plan's out-of-network cost note (procedure 6b) belongs to the
    certification: the pended answer does not carry it, since that decision is not taken yet."""
    answer = submit_ok(client, example("submit-bsp-cmc-third-opinion"))
    assert answer.business_status == "physician-review"
    assert answer.proposed_provider not in (None, "Practitioner/pract-15", "Practitioner/pract-19", "Practitioner/pract-14")
    assert tag_value(answer.tags, "tier") == "out-of-network"
    assert tag_value(answer.tags, "reason") == "opinions-differ"
    assert "incurs the cost" not in answer.notes and "Chief Medical Officer" in answer.notes


def test_health_net_third_opinion_goes_to_physician_review(client):
    """Health Net: third opinions are not a separately covered benefit in the manual: physician review."""
    bundle = example("submit-bsp-cmc-third-opinion")
    for cls in next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")["class"]:
        cls["value"] = "health-net-commercial"
    next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")["generalPractitioner"] = [
        {"reference": "PractitionerRole/role-01"}]
    bundle["entry"][0]["resource"]["requester"] = {"reference": "PractitionerRole/role-01"}  # the member's PCP asks
    answer = submit_ok(client, bundle)
    assert answer.review_action == "A4" and answer.business_status == "physician-review"


def test_expedited_request_is_due_72_hours_after_receipt(client):
    """Cal. Health & Safety Code §1367.01(h) via plan data: urgent -> 72 hours from receipt."""
    answer = submit_ok(client, submission(priority="urgent"))
    assert answer.task["restriction"]["period"]["end"] == "2026-11-28T17:00:00Z"
    assert answer.claim["priority"]["coding"][0]["code"] == "stat"


def test_routine_request_is_due_in_five_business_days(client):
    """Routine: 5 business days; received Wed 25 Nov 2026, Thanksgiving and the day after and the weekend
    are skipped (Mon 30 Nov to Fri 4 Dec are the five): due Friday 4 December at the same local time."""
    answer = submit_ok(client, submission())
    assert answer.task["restriction"]["period"]["end"] == "2026-12-04T17:00:00Z"


def test_decisions_are_coded_by_category_and_searchable(client):
    """90.2.17 procedure 11: "approvals and denials are coded by category ... for tracking and reporting"."""
    answer = submit_ok(client, submission())
    assert {t["code"] for t in answer.tags} >= {"questions-surgery", "A1", "group", "health-net-commercial", "ppg-valley"}
    found = client.get("/fhir/ClaimResponse", params={"_tag": "https://codesystem.x12.org/005010/306|A1"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", []) if e.get("search", {}).get("mode") != "outcome"] == [
        answer.claim_response["id"]]


def test_answers_validate_against_the_hosted_profiles(client):
    """The ClaimResponse and Task built conform to second-opinion-authorization and second-opinion-task."""
    validator = client.app.state.validator
    for bundle in (submission(), example("submit-incomplete"), example("submit-bsp-cmc-third-opinion")):
        answer = submit_ok(client, bundle)
        for resource, profile in ((answer.claim_response, AUTHORIZATION_PROFILE), (answer.task, TASK_PROFILE)):
            issues = validator.validate_structure(resource) + validator.validate_profiles(resource, (profile,))
            assert [i for i in issues if i.is_error] == [], (profile, issues)


def test_answers_parse_as_r4_models(client):
    """The plain-dict builders produce valid R4 resources (fhir.resources R4B models)."""
    from fhir.resources.R4B.claim import Claim
    from fhir.resources.R4B.claimresponse import ClaimResponse
    from fhir.resources.R4B.task import Task

    answer = submit_ok(client, submission())
    ClaimResponse.model_validate(answer.claim_response)
    Task.model_validate(answer.task)
    Claim.model_validate(answer.claim)


def counts(client) -> dict[str, int]:
    return {t: client.get(f"/fhir/{t}", params={"_summary": "count"}).json()["total"]
            for t in ("ServiceRequest", "Task", "ClaimResponse", "Claim", "Patient")}


def test_unknown_plan_is_422_and_nothing_is_stored(client):
    """Contract: plan rules keyed by the plan value; an unknown plan is a business-rule violation."""
    before = counts(client)
    response = post_submit(client, submission(plan="acme-gold"))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[2].resource.class"]
    assert counts(client) == before


def test_unresolvable_reference_is_422_naming_the_element(client):
    bundle = submission()
    bundle["entry"][0]["resource"]["insurance"] = [{"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}]
    bundle["entry"][0]["resource"]["requester"] = {"reference": "Practitioner/nobody"}
    response = post_submit(client, bundle)
    assert response.status_code == 422
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {"Bundle.entry[0].resource.insurance[0]", "Bundle.entry[0].resource.requester"} <= expressions
    assert counts(client)["ServiceRequest"] == 0


def test_profile_violation_is_422_with_the_fhirpath_of_each_element(client):
    bundle = submission()
    del bundle["entry"][0]["resource"]["performerType"]
    response = post_submit(client, bundle)
    assert response.status_code == 422
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert any(e.startswith("Bundle.entry[0].resource") and "performerType" in e for e in expressions), expressions
    assert counts(client)["ServiceRequest"] == 0


def test_structurally_invalid_entry_is_400(client):
    bundle = submission()
    bundle["entry"][1]["resource"]["birthDate"] = "not a date"
    response = post_submit(client, bundle)
    assert response.status_code == 400
    assert any("Bundle.entry[1].resource" in e for i in response.json()["issue"] for e in i.get("expression", []))


def test_bundle_must_be_a_collection_starting_with_the_service_request(client):
    bundle = submission()
    bundle["type"] = "transaction"
    assert post_submit(client, bundle).status_code == 400
    bundle = submission()
    bundle["entry"].reverse()
    assert post_submit(client, bundle).status_code == 422
    assert counts(client)["ServiceRequest"] == 0


def test_task_created_through_rest_starts_the_same_workflow(client):
    """Contract "Submitting", last paragraph: a second-opinion Task (intent order, code approve, focus an
    existing ServiceRequest, status requested) created through REST ends in the same states as $submit."""
    pended = submit_ok(client, example("submit-incomplete"))  # stores a ServiceRequest (pended)
    task = {
        "resourceType": "Task",
        "meta": {"profile": [TASK_PROFILE]},
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "approve"}]},
        "focus": {"reference": f"ServiceRequest/{pended.service_request['id']}"},
        "for": pended.service_request["subject"],
    }
    created = client.post("/fhir/Task", json=task, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    stored = client.get(f"/fhir/Task/{created.json()['id']}").json()
    assert stored["status"] == "on-hold"
    assert stored["businessStatus"]["coding"][0]["code"] == "information-missing"
    response_ref = stored["output"][0]["valueReference"]["reference"]
    assert client.get(f"/fhir/{response_ref}").status_code == 200
    # Contract "States": the history shows the client's requested Task, then the server's routed one.
    history = client.get(f"/fhir/Task/{stored['id']}/_history", headers=FHIR_JSON).json()
    assert sorted((e["resource"]["meta"]["versionId"], e["resource"]["status"]) for e in history["entry"]) == [
        ("1", "requested"), ("2", "on-hold")]


def test_submit_is_listed_in_the_capability_statement(client):
    metadata = client.get("/fhir/metadata").json()
    operations = [op for rest in metadata["rest"] for r in rest.get("resource", []) if r["type"] == "ServiceRequest"
                  for op in r.get("operation", [])]
    assert any(op["name"] == "submit" for op in operations)


def test_unhosted_profile_is_a_warning_in_the_answer_not_a_rejection(client):
    """Contract "Profiles": a profile the server does not host (US Core) earns a warning, not a rejection."""
    bundle = submission()
    bundle["entry"][1]["resource"]["meta"] = {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]}
    answer = submit_ok(client, bundle)
    assert answer.review_action == "A1"
    outcome = answer.bundle["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "warning"
    assert outcome["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource")


def test_prior_opinions_authors_are_excluded_even_when_not_listed_as_treating(client):
    """90.2.17 purpose: a professional "not previously involved": the DiagnosticReport performer (pract-15) and
    the DocumentReference author (pract-19) of the prior opinions are never proposed."""
    bundle = submission("submit-bsp-cmc-third-opinion", treating=[])
    answer = submit_ok(client, bundle)
    assert answer.proposed_provider not in ("Practitioner/pract-15", "Practitioner/pract-19")
    assert tag_value(answer.tags, "tier") == "out-of-network"


def test_health_net_all_participating_specialists_are_considered_beyond_a_first_page(client, monkeypatch):
    """Health Net PPGs "must consider all participating specialists": the directory is read page by page; with
    two roles a page, the first page holds only the treating cardiologists pract-04 and pract-05, and the network's
    pract-10 (a later page) is still found and certified."""
    monkeypatch.setattr(references, "SEARCH_PAGE_SIZE", 2)
    answer = submit_ok(client, submission(treating=["Practitioner/pract-04", "Practitioner/pract-05"]))
    assert answer.review_action == "A1" and answer.authorized_provider == "Practitioner/pract-10"


def test_the_authorization_is_valid_from_the_plans_local_day_of_receipt(client):
    """Rule 10 "validity period", counted on the plan's calendar (time zone America/Los_Angeles): a request
    received at 19:00 on 25 November in California (03:00 on the 26th in UTC) is authorized from the 25th."""
    client.app.state.clock.freeze(datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc))
    answer = submit_ok(client, submission())
    assert answer.claim_response["preAuthPeriod"] == {"start": "2026-11-25", "end": "2027-02-23"}
