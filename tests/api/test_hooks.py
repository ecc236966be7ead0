"""Change observers seen through HTTP: they run inside the write's transaction on REST and Bundle creates alike,
and the answer shows what they left (a Task that starts the workflow is answered routed)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fhir_server.errors import bad_request
from tests.api.conftest import FHIR_JSON, count_of, patient


async def tag_and_log(tx, stored, previous) -> None:
    """On a new Patient: writes a second resource and amends the created one, both through the write's
    transaction."""
    if previous is not None:
        return  # the amendment below is itself a write of a Patient
    if stored.resource.get("gender") == "unknown":
        raise bad_request("this workflow refuses unknown gender", "Patient.gender", code="business-rule")
    await tx.create({"resourceType": "AuditEvent", "type": {"code": "create"}, "recorded": "2024-01-01T00:00:00Z",
                     "agent": [{"requestor": True}], "source": {"observer": {"display": "hook"}}})
    amended = {**stored.resource, "active": True}
    await tx.update(amended)


async def test_observer_runs_on_rest_create_and_answer_shows_its_changes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.change_observers.add("Patient", tag_and_log)
    response = await client.post("/Patient", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.json()["active"] is True and response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert await count_of(client, "AuditEvent") == 1


async def test_observer_failure_undoes_the_create(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.change_observers.add("Patient", tag_and_log)
    response = await client.post("/Patient", json=patient(gender="unknown"), headers=FHIR_JSON)
    assert response.status_code == 400 and response.json()["issue"][0]["code"] == "business-rule"
    assert await count_of(client, "Patient") == 0
    assert await count_of(client, "AuditEvent") == 0


async def test_observer_runs_in_transaction_and_batch_entries(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.change_observers.add("Patient", tag_and_log)
    for kind in ("transaction", "batch"):
        request = {"resourceType": "Bundle", "type": kind,
                   "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}]}
        answer = (await client.post("", json=request, headers=FHIR_JSON)).json()
        assert answer["entry"][0]["resource"]["active"] is True
    assert await count_of(client, "AuditEvent") == 2
