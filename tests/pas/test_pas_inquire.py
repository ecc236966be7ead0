"""``Claim/$inquire`` (Da Vinci PAS 2.x) with ``fhirpy``: the current authorization of the cases an inquiry
names, pended ones included, decided ones after ``$decide``, and only the requesting provider's."""

from __future__ import annotations

from fhirpy import AsyncFHIRClient

from fhir_server.second_opinion.codes import AUTHORIZATION_PROFILE
from tests.case_management.helpers import parameters
from tests.pas.builders import pas_inquiry, pas_request
from tests.pas.conftest import LiveServer
from tests.pas.reading import authorized_provider, pas_inquire, pas_submit, refused, review_action, traces
from tests.second_opinion.helpers import submission

BSP_IN_REVIEW = {"plan": "blue-shield-promise-cmc", "group": "Organization/ipa-harbor", "treating": []}
CMO = "Practitioner/pract-13"


async def test_inquiry_follows_a_pended_case_through_its_decision(server_on_each_store: LiveServer):
    base_url = server_on_each_store.base_url
    native = submission(**BSP_IN_REVIEW)
    submitted = await pas_submit(base_url, pas_request(native, number="PA-2001", trace="TRN-2001-1"))
    claim_response_id = submitted.claim_response["id"]

    pended = await pas_inquire(base_url, pas_inquiry(native, number="PA-2001"))
    assert [r["id"] for r in pended.of_type("ClaimResponse")] == [claim_response_id]
    assert review_action(pended.claim_response)["code"] == "A4"
    assert traces(pended.claim_response["item"][0]) == ["TRN-2001-1"]
    assert pended.claim["identifier"][0]["value"] == "PA-2001"

    fhir = AsyncFHIRClient(base_url)
    task = (await fhir.resources("Task").search(focus=submitted.claim["referral"]["reference"]).fetch_all())[0]
    proposed = next(i["valueReference"]["reference"] for i in task["input"] if "valueReference" in i)
    await fhir.execute(f"Task/{task['id']}/$decide", method="post", data=parameters("approve", CMO))

    decided = await pas_inquire(base_url, pas_inquiry(native, number=None, trace="TRN-2001-1"))  # by trace number
    claim_response = decided.claim_response
    assert (claim_response["id"], claim_response["meta"]["versionId"]) == (claim_response_id, "2")
    assert claim_response["meta"]["profile"] == [AUTHORIZATION_PROFILE]
    action = review_action(claim_response)
    assert action["code"] == "A1" and action["number"] == claim_response["preAuthRef"]
    assert claim_response["preAuthRef"].startswith("BSP-")
    assert authorized_provider(claim_response) == proposed
    assert traces(claim_response["item"][0]) == ["TRN-2001-1"]
    assert [f"{r['resourceType']}/{r['id']}" for r in decided.resources[1:]] == [
        claim_response["request"]["reference"], claim_response["patient"]["reference"],
        claim_response["insurer"]["reference"], "Practitioner/pract-04", proposed]


async def test_inquiry_answers_only_the_requesting_providers_cases(server: LiveServer):
    native = submission()
    await pas_submit(server.base_url, pas_request(native, number="PA-1001"))
    mine = await pas_inquire(server.base_url, pas_inquiry(native, number="PA-1001"))
    assert review_action(mine.claim_response)["code"] == "A1"
    for inquiry in (
        pas_inquiry(native, number="PA-1001", provider="Practitioner/pract-05"),  # another provider
        pas_inquiry(native, number="PA-9999"),  # another request
        pas_inquiry(native, number=None, trace="TRN-9999-1"),  # another item
        pas_inquiry(submission("submit-primary-care"), number="PA-1001"),  # another member
    ):
        answer = await pas_inquire(server.base_url, inquiry)
        assert answer.of_type("ClaimResponse") == []
        assert [r["resourceType"] for r in answer.resources] == ["OperationOutcome"]
        assert answer.resources[0]["issue"][0]["severity"] == "information"


async def test_an_inquiry_names_the_request_and_the_provider(server: LiveServer):
    inquiry = pas_inquiry(submission(), number=None, trace=None)
    status, issues = refused(server.base_url, "Claim/$inquire", inquiry)
    assert status == 422
    assert [i["expression"] for i in issues] == [["Bundle.entry[0].resource.identifier"]]
    del inquiry["entry"][0]["resource"]["provider"]  # R4 itself requires Claim.provider: not FHIR at all
    status, issues = refused(server.base_url, "Claim/$inquire", inquiry)
    assert status == 400 and ["Bundle.entry[0].resource.provider"] in [i.get("expression") for i in issues]
    status, issues = refused(server.base_url, "Claim/$inquire", {"resourceType": "Bundle", "type": "batch"})
    assert status == 400 and issues[0]["expression"] == ["Bundle.type"]
