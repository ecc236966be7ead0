"""``Claim/$submit`` (Da Vinci PAS 2.x) with ``fhirpy`` as the EHR: the same case, rules and records as
``ServiceRequest/$submit``, answered as a PAS response Bundle and checked field by field."""

from __future__ import annotations

from typing import Any

from fhirpy import AsyncFHIRClient

from fhir_server.second_opinion.codes import (
    AUTHORIZATION_PROFILE,
    REQUESTED_SERVICE_EXT,
    STATUS_SYSTEM,
)
from tests.pas.builders import CLAIM_ID_SYSTEM, CPT, X12_SERVICE_TYPE, pas_request
from tests.pas.conftest import LiveServer
from tests.pas.reading import authorized_provider, pas_submit, refused, review_action, traces
from tests.second_opinion.conftest import example
from tests.second_opinion.helpers import submission

BSP_IN_REVIEW = {"plan": "blue-shield-promise-cmc", "group": "Organization/ipa-harbor", "treating": []}


async def case_task(base_url: str, service_request: str) -> dict[str, Any]:
    tasks = await AsyncFHIRClient(base_url).resources("Task").search(focus=service_request).fetch_all()
    assert len(tasks) == 1
    return tasks[0]


async def test_certified_request_answers_a_pas_response_bundle(server: LiveServer):
    answer = await pas_submit(server.base_url, pas_request(submission()))
    claim_response, claim = answer.claim_response, answer.claim

    assert claim_response["meta"]["profile"] == [AUTHORIZATION_PROFILE]
    assert (claim_response["status"], claim_response["use"], claim_response["outcome"]) == (
        "active", "preauthorization", "complete")
    assert claim_response["disposition"] == "Certified"
    assert claim_response["requestor"] == {"reference": "Practitioner/pract-04"}
    assert claim_response["insurer"] == {"reference": "Organization/org-health-net"}
    action = review_action(claim_response)
    assert action["code"] == "A1"
    assert action["number"] == claim_response["preAuthRef"] == f"HN-20261125-{claim['id'].replace('-', '')[:8].upper()}"
    assert claim_response["preAuthPeriod"] == {"start": "2026-11-25", "end": "2027-02-23"}
    item = claim_response["item"][0]
    assert item["itemSequence"] == 1
    assert traces(item) == ["TRN-1001-1"]  # echoed from the request's item
    assert authorized_provider(claim_response) == "Practitioner/pract-05"

    # The client's Claim is the case's Claim: its identifier, item and trace number, linked to the request.
    assert claim["identifier"] == [{"system": CLAIM_ID_SYSTEM, "value": "PA-1001"}]
    assert claim["use"] == "preauthorization" and claim["provider"] == {"reference": "Practitioner/pract-04"}
    assert traces(claim["item"][0]) == ["TRN-1001-1"]
    assert claim["item"][0]["category"]["coding"] == [
        {"system": X12_SERVICE_TYPE, "code": "3", "display": "Consultation"}]
    assert claim["item"][0]["productOrService"]["coding"][0] == {"system": CPT, "code": "99243"}
    service_request = claim["referral"]["reference"]
    assert [e["valueReference"]["reference"] for e in claim["item"][0]["extension"]
            if e["url"] == REQUESTED_SERVICE_EXT] == [service_request]

    # Then the resources the ClaimResponse references, each once.
    assert [f"{r['resourceType']}/{r['id']}" for r in answer.resources[1:-1]] == [
        claim_response["request"]["reference"], claim_response["patient"]["reference"],
        "Organization/org-health-net", "Practitioner/pract-04", "Practitioner/pract-05"]
    # Last, the warnings, about the entries the client sent: the PAS profiles this server does not host.
    warnings = answer.resources[-1]
    assert warnings["resourceType"] == "OperationOutcome"
    assert {i["severity"] for i in warnings["issue"]} == {"warning"}
    assert ["Bundle.entry[0].resource.meta.profile[0]"] in [i.get("expression") for i in warnings["issue"]]
    assert answer.get(claim_response["patient"]["reference"])["name"][0]["family"] == "Gonzalez"

    # The same records as the native operation: the workflow Task completed, the stored ClaimResponse.
    task = await case_task(server.base_url, service_request)
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("completed", "approved")
    assert task["output"][0]["valueReference"]["reference"] == f"ClaimResponse/{claim_response['id']}"
    stored = await AsyncFHIRClient(server.base_url).reference("ClaimResponse", claim_response["id"]).to_resource()
    stored = stored.serialize()
    assert {k: v for k, v in stored.items() if k != "item"} == {k: v for k, v in claim_response.items() if k != "item"}


async def test_pas_and_native_submissions_decide_alike(server: LiveServer):
    """The same request through both doors: the same decision, provider, validity, notes and report tags."""
    pas = (await pas_submit(server.base_url, pas_request(submission(identifier="SO-PAS")))).claim_response
    native = (await AsyncFHIRClient(server.base_url).execute(
        "ServiceRequest/$submit", method="post", data=submission(identifier="SO-NATIVE")))["entry"][0]["resource"]
    for key in ("status", "type", "use", "patient", "insurer", "requestor", "outcome", "disposition",
                "preAuthPeriod", "processNote"):
        assert pas[key] == native[key], key
    assert pas["meta"]["tag"] == native["meta"]["tag"]
    assert review_action(pas)["code"] == review_action(native)["code"] == "A1"
    assert authorized_provider(pas) == authorized_provider(native)


async def test_pended_request_answers_a4_without_an_authorization(server: LiveServer):
    """Blue Shield Promise 90.2.17: every request waits for the CMO or a physician designee."""
    answer = await pas_submit(server.base_url, pas_request(submission(**BSP_IN_REVIEW), number="PA-2001"))
    claim_response = answer.claim_response
    action = review_action(claim_response)
    assert (action["code"], claim_response["outcome"], claim_response["disposition"]) == (
        "A4", "complete", "Pended for physician review")
    assert action["reasons"] == ["physician-review"]
    assert "preAuthRef" not in claim_response and "preAuthPeriod" not in claim_response
    assert authorized_provider(claim_response) is None
    assert traces(claim_response["item"][0]) == ["TRN-1001-1"]
    assert claim_response["insurer"] == {"reference": "Organization/org-health-net"}  # the Coverage's payor
    task = await case_task(server.base_url, answer.claim["referral"]["reference"])
    assert (task["status"], task["owner"]["reference"]) == ("in-progress", "Organization/ipa-harbor")


async def test_incomplete_request_is_pended_then_decided_by_the_same_claim(server_on_each_store: LiveServer):
    """Information missing: A4 and an on-hold Task naming each missing element; the EHR resubmits the same Claim
    (identifier) with the data and the decision is a new version of the same ClaimResponse and Claim."""
    base_url = server_on_each_store.base_url
    pended = await pas_submit(base_url, pas_request(example("submit-incomplete")))
    assert review_action(pended.claim_response)["code"] == "A4"
    assert review_action(pended.claim_response)["reasons"] == ["information-missing"]
    task = await case_task(base_url, pended.claim["referral"]["reference"])
    assert (task["status"], task["businessStatus"]["coding"][0]) == (
        "on-hold", {"system": STATUS_SYSTEM, "code": "information-missing"})
    assert [i["valueString"] for i in task["input"]] == [
        "Patient.birthDate", "Coverage.subscriberId", "ServiceRequest.reasonReference | ServiceRequest.supportingInfo"]

    decided = await pas_submit(base_url, pas_request(submission()))
    assert review_action(decided.claim_response)["code"] == "A1"
    assert decided.claim_response["id"] == pended.claim_response["id"]
    assert decided.claim_response["meta"]["versionId"] == "2"
    assert decided.claim["id"] == pended.claim["id"] and decided.claim["meta"]["versionId"] == "2"
    claims = await AsyncFHIRClient(base_url).resources("Claim").fetch_all()
    assert [c["id"] for c in claims] == [pended.claim["id"]]  # one case, one Claim


async def test_third_opinion_goes_to_physician_review_away_from_both_prior_physicians(server: LiveServer):
    answer = await pas_submit(server.base_url, pas_request(example("submit-bsp-cmc-third-opinion"), number="PA-3001"))
    claim_response = answer.claim_response
    assert review_action(claim_response)["code"] == "A4"
    assert claim_response["requestor"] == {"reference": "PractitionerRole/role-12"}
    assert answer.claim["provider"] == {"reference": "PractitionerRole/role-12"}
    assert "Chief Medical Officer" in " ".join(n["text"] for n in claim_response["processNote"])
    task = await case_task(server.base_url, answer.claim["referral"]["reference"])
    proposed = [i["valueReference"]["reference"] for i in task["input"] if "valueReference" in i]
    assert len(proposed) == 1 and proposed[0] not in ("Practitioner/pract-15", "Practitioner/pract-19")


async def test_problems_are_named_in_the_clients_bundle(server: LiveServer):
    """The intake checks the ServiceRequest as ever; its errors point at the entries the client sent (the
    ServiceRequest is the PAS Bundle's second entry, the Patient its third)."""
    bundle = pas_request(submission())
    del bundle["entry"][1]["resource"]["reasonCode"]
    bundle["entry"][2]["resource"]["gender"] = "unknown-gender"
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 400  # every problem at once, the structural one deciding the status
    errors = [i["expression"] for i in issues if i["severity"] == "error"]
    assert ["Bundle.entry[2].resource.gender"] in errors and ["Bundle.entry[1].resource.reasonCode"] in errors
    bundle["entry"][2]["resource"]["gender"] = "female"
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 422
    assert [i["expression"] for i in issues if i["severity"] == "error"] == [["Bundle.entry[1].resource.reasonCode"]]
    assert await AsyncFHIRClient(server.base_url).resources("Claim").count() == 0  # nothing stored


async def test_resubmitting_a_decided_claim_answers_the_stored_decision(server: LiveServer):
    """The same request again once decided: the stored answer, as PAS shows it, and nothing new written."""
    first = await pas_submit(server.base_url, pas_request(submission()))
    again = await pas_submit(server.base_url, pas_request(submission(specialty="207RR0500X")))
    assert again.claim_response == first.claim_response and again.claim_response["meta"]["versionId"] == "1"
    assert again.claim == first.claim
    assert await AsyncFHIRClient(server.base_url).resources("ClaimResponse").count() == 1


async def test_the_server_names_the_claims_it_records(server: LiveServer):
    """Two EHRs both calling their Claim ``Claim/1``: each case gets a Claim of its own, under a server id, and
    an authorization number of its own."""
    numbers = []
    for number, identifier in (("PA-1", "SO-A"), ("PA-2", "SO-B")):
        bundle = pas_request(submission(identifier=identifier), number=number)
        bundle["entry"][0].update(fullUrl="https://ehr.example.org/fhir/Claim/1")
        bundle["entry"][0]["resource"]["id"] = "1"
        answer = await pas_submit(server.base_url, bundle)
        assert answer.claim["id"] != "1" and answer.claim["identifier"][0]["value"] == number
        numbers.append(answer.claim_response["preAuthRef"])
    assert numbers[0] != numbers[1]
    assert await AsyncFHIRClient(server.base_url).resources("Claim").count() == 2


async def test_the_providers_a_pas_bundle_carries_stand_for_the_directorys(server: LiveServer):
    """PAS Bundles carry the requestor and the insurer; when the server knows them (by NPI, or by id) they stand
    for the directory's records, which stay as they are (qualifications, roles), and the references follow."""
    fhir = AsyncFHIRClient(server.base_url)
    before = (await fhir.reference("Practitioner", "pract-04").to_resource()).serialize()
    bundle = pas_request(submission())
    whitaker = "https://ehr.example.org/fhir/Practitioner/whitaker"
    bundle["entry"] += [
        {"fullUrl": whitaker, "resource": {"resourceType": "Practitioner", "id": "whitaker", "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1708470590"}], "name": [{"family": "WHITAKER"}]}},
        {"fullUrl": "https://ehr.example.org/fhir/Organization/org-health-net", "resource": {
            "resourceType": "Organization", "id": "org-health-net", "name": "HEALTH NET"}},
    ]
    claim, service_request = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    claim["provider"] = service_request["requester"] = {"reference": whitaker}
    claim["insurer"] = {"reference": "Organization/org-health-net"}
    answer = await pas_submit(server.base_url, bundle)
    assert answer.claim_response["requestor"] == {"reference": "Practitioner/pract-04"}
    assert answer.claim["provider"] == {"reference": "Practitioner/pract-04"}
    assert review_action(answer.claim_response)["code"] == "A1"
    after = (await fhir.reference("Practitioner", "pract-04").to_resource()).serialize()
    assert after == before and after["meta"]["versionId"] == "1"
    insurer = (await fhir.reference("Organization", "org-health-net").to_resource()).serialize()
    assert insurer["name"] == "Health Net of California" and insurer["meta"]["versionId"] == "1"
    assert await fhir.resources("Practitioner").search(_id="whitaker").count() == 0
