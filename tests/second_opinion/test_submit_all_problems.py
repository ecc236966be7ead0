"""$submit reports every problem of every entry at once (contract "Wire"), base rules and profile together,
and stores nothing from the rejected submission."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.second_opinion.conftest import FHIR_JSON, example


def test_base_and_profile_problems_of_several_entries_in_one_answer(client: TestClient) -> None:
    bundle = example("submit-health-net-cardiology")
    request = bundle["entry"][0]["resource"]
    request["status"] = "bogus"  # base rule: required binding (400)
    request["intent"] = "plan"  # profile: fixed value
    del request["requester"]  # profile: 1..1
    bundle["entry"][1]["resource"]["birthDate"] = "1990-13-45"  # base rule in another entry
    response = client.post("/fhir/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {
        "Bundle.entry[0].resource.status",
        "Bundle.entry[0].resource.intent",
        "Bundle.entry[0].resource.requester",
        "Bundle.entry[1].resource.birthDate",
    } <= expressions
    stored = client.get("/fhir/ServiceRequest", params={"_summary": "count"}, headers=FHIR_JSON).json()
    assert stored["total"] == 0


def test_a_request_must_be_submitted_active(client: TestClient) -> None:
    """Contract "The request": status `active` (the profile leaves status open for the workflow's later states)."""
    bundle = example("submit-health-net-cardiology")
    bundle["entry"][0]["resource"]["status"] = "draft"
    response = client.post("/fhir/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    (issue,) = [i for i in response.json()["issue"] if i["severity"] == "error"]
    assert issue["code"] == "business-rule" and issue["expression"] == ["Bundle.entry[0].resource.status"]
    stored = client.get("/fhir/ServiceRequest", params={"_summary": "count"}, headers=FHIR_JSON).json()
    assert stored["total"] == 0
