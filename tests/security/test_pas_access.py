"""Da Vinci PAS under security: ``Claim/$submit`` needs Claim create, ``Claim/$inquire`` Claim read, and an inquiry
finds only the asking organization's cases, whatever provider it names (the store's tenant guard)."""

from __future__ import annotations

from tests.pas.builders import pas_inquiry, pas_request
from tests.second_opinion.helpers import submission
from tests.security.conftest import EHR_SCOPES, load_directory, register

PAS_SCOPES = f"{EHR_SCOPES} system/Claim.crs"
NATIVE = {"plan": "blue-shield-promise-cmc", "group": "Organization/ipa-harbor", "treating": []}


def claim_responses(answer) -> list[dict]:
    return [e["resource"] for e in answer.json()["entry"] if e["resource"]["resourceType"] == "ClaimResponse"]


def test_pas_submit_needs_claim_create_and_an_inquiry_sees_only_its_organizations_cases(secure):
    load_directory(secure)
    native = submission(**NATIVE)
    without_claim_scope = register(secure, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    refused = without_claim_scope.post("/fhir/Claim/$submit", pas_request(native, number="PA-9001"))
    assert refused.status_code == 403, refused.text

    ehr = register(secure, "Organization/ehr-a", "ehr", PAS_SCOPES).sign_in(PAS_SCOPES)
    submitted = ehr.post("/fhir/Claim/$submit", pas_request(native, number="PA-9001"))
    assert submitted.status_code == 200, submitted.text
    [claim_response] = claim_responses(submitted)

    inquiry = pas_inquiry(native, number="PA-9001")
    found = ehr.post("/fhir/Claim/$inquire", inquiry)
    assert found.status_code == 200, found.text
    assert [r["id"] for r in claim_responses(found)] == [claim_response["id"]]

    # Another EHR naming the same member, provider and Claim number learns nothing of the case.
    other = register(secure, "Organization/ehr-b", "ehr", PAS_SCOPES).sign_in(PAS_SCOPES)
    stranger = other.post("/fhir/Claim/$inquire", inquiry)
    assert stranger.status_code == 200, stranger.text
    assert claim_responses(stranger) == []
