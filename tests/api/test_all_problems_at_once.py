"""Contract "Wire": all problems of a resource are reported at once — base-rule errors (400) together with what
the hosted profile adds, so a client fixes everything in one round trip."""

from __future__ import annotations

import httpx

from tests.api.conftest import FHIR_JSON, count_of

REQUEST_PROFILE = "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request"


def broken_request() -> dict:
    """A ServiceRequest claiming the hosted profile that breaks a base rule (bogus status code) and, at the same
    time, two profile rules (intent fixed to order; requester 1..1)."""
    return {
        "resourceType": "ServiceRequest",
        "meta": {"profile": [REQUEST_PROFILE]},
        "status": "bogus",
        "intent": "plan",
        "subject": {"reference": "Patient/p1"},
    }


async def test_create_reports_base_and_profile_errors_together(client: httpx.AsyncClient) -> None:
    response = await client.post("/ServiceRequest", json=broken_request(), headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert "ServiceRequest.status" in expressions  # base rule: required binding
    assert "ServiceRequest.intent" in expressions  # profile: fixed value
    assert "ServiceRequest.requester" in expressions  # profile: narrowed cardinality
    assert await count_of(client, "ServiceRequest") == 0


async def test_profile_only_violations_answer_422(client: httpx.AsyncClient) -> None:
    resource = broken_request() | {"status": "active"}
    response = await client.post("/ServiceRequest", json=resource, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {"ServiceRequest.intent", "ServiceRequest.requester"} <= expressions
    assert "ServiceRequest.status" not in expressions
