"""Every error path answers its status with an OperationOutcome, and writes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import FHIR_JSON, MAX_BODY, count_of, outcome_issue, patient


async def assert_no_patients(client: httpx.AsyncClient) -> None:
    assert await count_of(client, "Patient") == 0


async def test_malformed_json_names_line_and_column(client: httpx.AsyncClient) -> None:
    response = await client.post("/Patient", content=b'{\n  "resourceType": "Patient",\n  "gender": oops\n}',
                                 headers=FHIR_JSON)
    assert response.status_code == 400
    issue = outcome_issue(response)
    assert issue["code"] == "structure" and "line 3, column 13" in issue["diagnostics"]
    await assert_no_patients(client)


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}, ["resourceType"]),
        ({"name": [{"family": "Doe"}]}, ["resourceType"]),
        ([patient()], None),
    ],
)
async def test_wrong_or_missing_resource_type(client: httpx.AsyncClient, body, expression) -> None:
    response = await client.post("/Patient", json=body, headers=FHIR_JSON)
    assert response.status_code == 400
    assert outcome_issue(response).get("expression") == expression
    await assert_no_patients(client)


async def test_url_and_body_id_mismatch(client: httpx.AsyncClient) -> None:
    response = await client.put("/Patient/one", json=patient(id="two"), headers=FHIR_JSON)
    assert response.status_code == 400
    issue = outcome_issue(response)
    assert issue["expression"] == ["Patient.id"] and "does not match" in issue["diagnostics"]
    assert (await client.get("/Patient/one")).status_code == 404
    assert (await client.get("/Patient/two")).status_code == 404


async def test_unsupported_media_type(client: httpx.AsyncClient) -> None:
    xml = b'<Patient xmlns="http://hl7.org/fhir"/>'
    response = await client.post("/Patient", content=xml, headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415 and outcome_issue(response)["code"] == "not-supported"
    await assert_no_patients(client)


@pytest.mark.parametrize(
    "headers,params",
    [
        ({"Accept": "application/fhir+xml"}, {}),
        ({}, {"_format": "xml"}),
        ({"Accept": "application/fhir+json;q=0, application/fhir+xml"}, {}),  # q=0: "not JSON"
    ],
)
async def test_not_acceptable(client: httpx.AsyncClient, headers, params) -> None:
    response = await client.post("/Patient", json=patient(), headers={**FHIR_JSON, **headers}, params=params)
    assert response.status_code == 406 and outcome_issue(response)["code"] == "not-supported"
    await assert_no_patients(client)


async def test_json_accept_variants_are_fine(client: httpx.AsyncClient) -> None:
    for accept in ("application/json", "application/fhir+json;q=0.9, text/html", "*/*"):
        assert (await client.get("/Patient", headers={"Accept": accept})).status_code == 200
    assert (await client.get("/Patient", params={"_format": "json"})).status_code == 200


async def test_body_over_the_limit_by_length_and_by_stream(client: httpx.AsyncClient) -> None:
    big = patient(text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                        + "x" * MAX_BODY + "</div>"})
    declared = await client.post("/Patient", content=json.dumps(big).encode(), headers=FHIR_JSON)
    assert declared.status_code == 413 and outcome_issue(declared)["code"] == "too-costly"

    async def chunks():
        data = json.dumps(big).encode()
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    streamed = await client.post("/Patient", content=chunks(), headers=FHIR_JSON)  # chunked: no Content-Length
    assert streamed.status_code == 413
    await assert_no_patients(client)


@pytest.mark.parametrize("depth", [25, 5000])
async def test_json_nested_too_deep(client: httpx.AsyncClient, depth: int) -> None:
    nested = b'{"resourceType": "Patient", "extension": ' + b"[" * depth + b"]" * depth + b"}"
    response = await client.post("/Patient", content=nested, headers=FHIR_JSON)
    assert response.status_code == 400
    assert "nested deeper" in outcome_issue(response)["diagnostics"]
    await assert_no_patients(client)


async def test_unknown_resource_type_and_route(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/Patientz/1")
    assert unknown.status_code == 404 and outcome_issue(unknown)["code"] == "not-supported"
    no_route = await client.get("/Patient/1/x/y/z")
    assert no_route.status_code == 404 and outcome_issue(no_route)["code"] == "not-found"
    wrong_method = await client.post("/Patient/1", json={})  # the instance URL takes no POST
    assert wrong_method.status_code == 405 and outcome_issue(wrong_method)["code"] == "not-supported"


async def test_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/does-not-exist")
    assert response.status_code == 404 and outcome_issue(response)["code"] == "not-found"


async def test_base_rule_violation_reports_every_problem_with_fhirpath(client: httpx.AsyncClient) -> None:
    bad = patient(gender="sometimes", birthDate="31/12/1990", unknownThing=1)
    response = await client.post("/Patient", json=bad, headers=FHIR_JSON)
    assert response.status_code == 400
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {"Patient.gender", "Patient.birthDate", "Patient.unknownThing"} <= expressions
    await assert_no_patients(client)


async def test_hosted_profile_violation_is_422(client: httpx.AsyncClient) -> None:
    claimed = {
        "resourceType": "ServiceRequest",
        "meta": {"profile": ["http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request"]},
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    response = await client.post("/ServiceRequest", json=claimed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert all("expression" in issue for issue in response.json()["issue"] if issue["severity"] == "error")
    assert await count_of(client, "ServiceRequest") == 0


async def test_search_errors(client: httpx.AsyncClient) -> None:
    strict = await client.get("/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "nonsense" in outcome_issue(strict)["diagnostics"]
    bad_date = await client.get("/Patient", params={"birthdate": "yesterday"})
    assert bad_date.status_code == 400 and outcome_issue(bad_date)["code"] in ("invalid", "value")
    bad_count = await client.get("/Patient", params={"_count": "-1"})
    assert bad_count.status_code == 400
    bad_since = await client.get("/Patient/_history", params={"_since": "soon"})
    assert bad_since.status_code == 400 and outcome_issue(bad_since)["expression"] == ["_since"]
    bad_if_match = await client.put("/Patient/x", json=patient(id="x"), headers={**FHIR_JSON, "If-Match": "abc"})
    assert bad_if_match.status_code == 400
    await assert_no_patients(client)


async def test_unexpected_exception_is_500_outcome_without_internals(app, client: httpx.AsyncClient) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    app.state.services.read = broken
    response = await client.get("/Patient/anything")
    assert response.status_code == 500
    issue = outcome_issue(response)
    assert issue["code"] == "exception" and "secret" not in response.text
