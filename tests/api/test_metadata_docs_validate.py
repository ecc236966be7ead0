"""/metadata, the offline Swagger UI, and $validate."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.api.conftest import BASE, FHIR_JSON, count_of, patient

REQUEST_PROFILE = "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request"


async def test_capability_statement(client: httpx.AsyncClient) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    statement = response.json()
    assert (statement["fhirVersion"], statement["status"], statement["kind"]) == ("4.0.1", "active", "instance")
    assert "json" in statement["format"]
    rest = statement["rest"][0]
    assert rest["mode"] == "server"
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system", "search-system"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert len(by_type) > 140
    service_request = by_type["ServiceRequest"]
    assert {"read", "vread", "update", "delete", "create", "search-type", "history-instance"} <= {
        i["code"] for i in service_request["interaction"]}
    assert service_request["versioning"] == "versioned-update" and service_request["updateCreate"] is True
    assert service_request["conditionalCreate"] is True and service_request["conditionalUpdate"] is True
    assert REQUEST_PROFILE in service_request["supportedProfile"]
    assert any(p["name"] == "_id" for p in service_request["searchParam"])
    assert any(op["name"] == "validate" for op in service_request["operation"])


async def test_capability_statement_is_built_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = await client.get("/metadata")
    app.state.registry.add_supported_profile("Patient", "http://example.org/late")
    assert (await client.get("/metadata")).content == first.content


async def test_swagger_ui_is_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets and all(asset.startswith("/fhir/_static/") for asset in assets), assets
    assert "/fhir/openapi.json" in page.text
    for asset in assets:
        served = await client.get(f"http://testserver{asset}")
        assert served.status_code == 200 and len(served.content) > 500
    schema = (await client.get("/openapi.json")).json()
    assert "/fhir/{resource_type}/{resource_id}" in schema["paths"]


async def test_validate_reports_all_issues_with_200(client: httpx.AsyncClient) -> None:
    bad = patient(gender="sometimes", birthDate="soon")
    response = await client.post("/Patient/$validate", json=bad, headers=FHIR_JSON)
    assert response.status_code == 200
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert {"Patient.gender", "Patient.birthDate"} <= expressions
    good = await client.post("/Patient/$validate", json=patient(), headers=FHIR_JSON)
    assert good.status_code == 200 and good.json()["issue"][0]["severity"] == "information"
    assert await count_of(client, "Patient") == 0


async def test_validate_against_a_profile_by_parameters_and_query(client: httpx.AsyncClient) -> None:
    request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p"}}
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": request}, {"name": "profile", "valueUri": REQUEST_PROFILE}]}
    by_parameters = (await client.post("/ServiceRequest/$validate", json=parameters, headers=FHIR_JSON)).json()
    assert any(issue["severity"] == "error" for issue in by_parameters["issue"])
    plain = (await client.post("/ServiceRequest/$validate", json=request, headers=FHIR_JSON)).json()
    assert not any(issue["severity"] == "error" for issue in plain["issue"])
    by_query = (await client.post("/ServiceRequest/$validate", params={"profile": REQUEST_PROFILE}, json=request,
                                  headers=FHIR_JSON)).json()
    assert by_query["issue"] == by_parameters["issue"]
    wrong_type = await client.post("/Patient/$validate", json=request, headers=FHIR_JSON)
    assert wrong_type.status_code == 400


async def test_instance_validate_uses_stored_resource(client: httpx.AsyncClient) -> None:
    await client.put("/Patient/v1", json=patient(id="v1"), headers=FHIR_JSON)
    response = await client.post("/Patient/v1/$validate")
    assert response.status_code == 200 and response.json()["resourceType"] == "OperationOutcome"
    missing = await client.post("/Patient/none/$validate")
    assert missing.status_code == 404


async def test_links_use_public_base_url(store_url: str) -> None:
    from fhir_server.app import create_app
    from tests.api.conftest import api_settings

    app = create_app(api_settings(store_url, public_base_url="https://fhir.example.com/r4/"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            created = await http.post("/Patient", json=patient(), headers=FHIR_JSON)
            assert created.headers["location"].startswith("https://fhir.example.com/r4/Patient/")
        await app.state.store.clear()
