"""Request ids and JSON logs, gzip, CORS, OPTIONS, PATCH and what /metadata declares about them."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.logs import HANDLER_NAME, configure_logging
from tests.api.conftest import FHIR_JSON, api_settings, outcome_issue, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


# -- request ids and logs ---------------------------------------------------------------------------------------
async def test_a_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/metadata", headers={"X-Request-Id": "ehr-7f3a.42"})
    assert given.headers["x-request-id"] == "ehr-7f3a.42"
    generated = await client.get("/metadata")
    assert len(generated.headers["x-request-id"]) == 32
    replaced = await client.get("/metadata", headers={"X-Request-Id": "no spaces <allowed>"})
    assert replaced.headers["x-request-id"] != "no spaces <allowed>"
    error = await client.get("/Patient/missing", headers={"X-Request-Id": "err-1"})
    assert error.status_code == 404 and error.headers["x-request-id"] == "err-1"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The server's JSON logging to the captured stderr (removed again afterwards)."""
    configure_logging("info", "json")
    try:
        yield capsys
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
            root.removeHandler(handler)


async def test_every_log_line_is_json_with_the_request_id_and_no_query_string(client, json_logs) -> None:
    await client.get("/Patient", params={"identifier": "http://member|SECRET-123"}, headers={"X-Request-Id": "rq-1"})
    await client.post("/Patient", json=patient("Hidden-Name"), headers={**FHIR_JSON, "X-Request-Id": "rq-2"})
    captured = json_logs.readouterr().err
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "fhir_server.access"]
    assert [(line["request_id"], line["method"], line["path"], line["status"]) for line in access] == [
        ("rq-1", "GET", "/fhir/Patient", 200), ("rq-2", "POST", "/fhir/Patient", 201)]
    assert all({"time", "level", "message", "duration_ms"} <= set(line) for line in access)
    everything = json.dumps(lines)
    assert "SECRET-123" not in everything and "Hidden-Name" not in everything


def test_text_logs_for_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    try:
        logging.getLogger("fhir_server.test").info("plain line")
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
            root.removeHandler(handler)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith("INFO fhir_server.test [-] plain line")


# -- gzip -------------------------------------------------------------------------------------------------------
async def test_large_answers_are_gzipped_for_clients_that_accept_it(client: httpx.AsyncClient) -> None:
    compressed = await client.get("/metadata", headers={"Accept-Encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.num_bytes_downloaded * 5 < len(compressed.content)  # /metadata shrinks several times
    assert compressed.json()["resourceType"] == "CapabilityStatement"
    plain = await client.get("/metadata", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    small = await client.get("http://testserver/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # below FHIR_GZIP_MIN_BYTES


# -- CORS -------------------------------------------------------------------------------------------------------
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "content-type"}


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/metadata", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_for_configured_origins(store_url: str) -> None:
    application = create_app(api_settings(store_url, cors_origins="https://app.example, https://other.example"))
    transport = httpx.ASGITransport(app=application)
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/fhir") as http:
            preflight = await http.options("/Patient/1", headers=PREFLIGHT)
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"
            assert "PUT" in preflight.headers["access-control-allow-methods"]
            created = await http.post("/Patient", json=patient(), headers={**FHIR_JSON, "Origin": "https://app.example"})
            assert created.headers["access-control-allow-origin"] == "https://app.example"
            exposed = created.headers["access-control-expose-headers"]
            assert "ETag" in exposed and "Location" in exposed
            stranger = await http.options("/Patient/1", headers={**PREFLIGHT, "Origin": "https://evil.example"})
            assert stranger.status_code == 400 and "access-control-allow-origin" not in stranger.headers
            await application.state.store.clear()


# -- OPTIONS ----------------------------------------------------------------------------------------------------
async def test_options_answers_the_real_allow_list(client: httpx.AsyncClient) -> None:
    instance = await client.options("/Patient/123")
    assert instance.status_code == 200
    assert instance.headers["allow"] == "DELETE, GET, OPTIONS, PATCH, PUT"
    type_level = await client.options("/Patient")
    assert type_level.headers["allow"] == "DELETE, GET, OPTIONS, POST, PUT"
    metadata = await client.options("/metadata")
    assert "GET" in metadata.headers["allow"] and "POST" not in metadata.headers["allow"]
    nowhere = await client.options("http://testserver/not/a/route/at/all")
    assert nowhere.status_code == 404 and outcome_issue(nowhere)["code"] == "not-found"


# -- PATCH ------------------------------------------------------------------------------------------------------
async def created_patient(client: httpx.AsyncClient) -> str:
    response = await client.post("/Patient", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 201
    return response.json()["id"]


async def test_json_patch_makes_a_new_version(client: httpx.AsyncClient) -> None:
    patient_id = await created_patient(client)
    operations = [{"op": "replace", "path": "/gender", "value": "male"},
                  {"op": "add", "path": "/birthDate", "value": "1970-02-03"}]
    response = await client.patch(f"/Patient/{patient_id}", json=operations, headers=JSON_PATCH)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["gender"] == "male" and response.json()["birthDate"] == "1970-02-03"
    assert (await client.get(f"/Patient/{patient_id}")).json()["meta"]["versionId"] == "2"


async def test_a_patch_is_validated_like_an_update(client: httpx.AsyncClient) -> None:
    patient_id = await created_patient(client)
    bad = [{"op": "replace", "path": "/gender", "value": "sometimes"}]
    response = await client.patch(f"/Patient/{patient_id}", json=bad, headers=JSON_PATCH)
    assert response.status_code == 400 and outcome_issue(response)["expression"] == ["Patient.gender"]
    assert (await client.get(f"/Patient/{patient_id}")).json()["meta"]["versionId"] == "1"


async def test_a_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    patient_id = await created_patient(client)
    change = [{"op": "replace", "path": "/gender", "value": "male"}]
    assert (await client.patch(f"/Patient/{patient_id}", json=change,
                               headers={**JSON_PATCH, "If-Match": 'W/"1"'})).status_code == 200
    stale = await client.patch(f"/Patient/{patient_id}", json=change, headers={**JSON_PATCH, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and "expected version 1, found version 2" in outcome_issue(stale)["diagnostics"]


@pytest.mark.parametrize(("operations", "status"), [
    ({"op": "replace"}, 400),  # not an array
    ([{"op": "jump", "path": "/gender"}], 400),  # no such operation
    ([{"op": "test", "path": "/gender", "value": "male"}], 422),  # a failed test
    ([{"op": "remove", "path": "/telecom/0"}], 422),  # a path that is not there
    ([{"op": "replace", "path": "/id", "value": "other"}], 422),  # the id is the URL's
])
async def test_bad_patches(client: httpx.AsyncClient, operations, status: int) -> None:
    patient_id = await created_patient(client)
    response = await client.patch(f"/Patient/{patient_id}", json=operations, headers=JSON_PATCH)
    assert response.status_code == status, response.text
    outcome_issue(response)


async def test_patch_media_types_and_targets(client: httpx.AsyncClient) -> None:
    patient_id = await created_patient(client)
    change = [{"op": "replace", "path": "/gender", "value": "male"}]
    assert (await client.patch(f"/Patient/{patient_id}", json=change, headers=FHIR_JSON)).status_code == 415
    assert (await client.patch("/Patient/nobody", json=change, headers=JSON_PATCH)).status_code == 404
    assert (await client.patch("/NotAType/1", json=change, headers=JSON_PATCH)).status_code == 404


async def test_a_merge_patch_as_fhirpy_sends_it(client: httpx.AsyncClient) -> None:
    """fhirpy's ``resource.patch(**fields)`` sends the changed elements as a plain JSON object."""
    patient_id = await created_patient(client)
    response = await client.patch(f"/Patient/{patient_id}", json={"gender": "other", "name": None},
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "other" and "name" not in response.json()


# -- the CapabilityStatement ------------------------------------------------------------------------------------
async def test_metadata_declares_patch_includes_and_system_parameters(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    assert statement["patchFormat"] == ["application/json-patch+json", "application/merge-patch+json"]
    rest = statement["rest"][0]
    assert {p["name"] for p in rest["searchParam"]} >= {"_id", "_lastUpdated", "_tag", "_profile"}
    by_type = {entry["type"]: entry for entry in rest["resource"]}
    assert {"code": "patch"} in by_type["Patient"]["interaction"]
    assert "ServiceRequest:patient" in by_type["ServiceRequest"]["searchInclude"]
    assert "*" in by_type["ServiceRequest"]["searchInclude"]
    assert "ServiceRequest:patient" in by_type["Patient"]["searchRevInclude"]
