"""REST interactions end to end: headers, Prefer, versions, history, conditional create, If-Match."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

import httpx

from tests.api.conftest import BASE, FHIR_JSON, count_of, outcome_issue, patient


async def create_patient(client: httpx.AsyncClient, **fields) -> dict:
    response = await client.post("/Patient", json=patient(**fields), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_answers_201_with_location_etag_and_last_modified(client: httpx.AsyncClient) -> None:
    response = await client.post("/Patient", json=patient(id="client-chosen"), headers=FHIR_JSON)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "client-chosen"  # the server assigns ids on create
    assert body["meta"]["versionId"] == "1"
    assert response.headers["location"] == f"{BASE}/Patient/{body['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert parsedate_to_datetime(response.headers["last-modified"]).year >= 2024
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"


async def test_prefer_return_minimal_and_operation_outcome(client: httpx.AsyncClient) -> None:
    minimal = await client.post("/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["location"].startswith(f"{BASE}/Patient/")
    claimed = patient(meta={"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]})
    outcome = await client.post("/Patient", json=claimed, headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    issue = outcome_issue(outcome)
    assert issue["severity"] == "warning" and issue["expression"] == ["Patient.meta.profile[0]"]


async def test_read_vread_update_and_history(client: httpx.AsyncClient) -> None:
    created = await create_patient(client)
    pid = created["id"]
    read = await client.get(f"/Patient/{pid}")
    assert read.status_code == 200 and read.json() == created and read.headers["etag"] == 'W/"1"'

    changed = {**created, "gender": "male"}
    updated = await client.put(f"/Patient/{pid}", json=changed, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2" and updated.json()["gender"] == "male"
    assert updated.headers["etag"] == 'W/"2"'

    first = await client.get(f"/Patient/{pid}/_history/1")
    assert first.status_code == 200 and first.json()["gender"] == "female"
    history = (await client.get(f"/Patient/{pid}/_history")).json()
    assert history["type"] == "history" and history["total"] == 2
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
    missing_version = await client.get(f"/Patient/{pid}/_history/9")
    assert missing_version.status_code == 404 and outcome_issue(missing_version)["code"] == "not-found"


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    response = await client.put("/Patient/chosen-1", json=patient(id="chosen-1"), headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.headers["location"] == f"{BASE}/Patient/chosen-1/_history/1"
    assert (await client.get("/Patient/chosen-1")).status_code == 200


async def test_delete_then_read_is_gone(client: httpx.AsyncClient) -> None:
    pid = (await create_patient(client))["id"]
    deleted = await client.delete(f"/Patient/{pid}")
    assert deleted.status_code == 204 and deleted.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{pid}")
    assert gone.status_code == 410 and outcome_issue(gone)["code"] == "deleted"
    with_outcome = await client.delete(f"/Patient/{pid}", headers={"Prefer": "return=OperationOutcome"})
    assert with_outcome.status_code == 200 and outcome_issue(with_outcome)["severity"] == "information"
    assert await count_of(client, "Patient") == 0


async def test_stale_if_match_is_412_and_writes_nothing(client: httpx.AsyncClient) -> None:
    created = await create_patient(client)
    pid = created["id"]
    await client.put(f"/Patient/{pid}", json={**created, "gender": "male"}, headers=FHIR_JSON)
    stale = await client.put(f"/Patient/{pid}", json={**created, "gender": "other"},
                             headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and outcome_issue(stale)["code"] == "conflict"
    stale_delete = await client.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"1"'})
    assert stale_delete.status_code == 412
    current = (await client.get(f"/Patient/{pid}")).json()
    assert current["meta"]["versionId"] == "2" and current["gender"] == "male"


async def test_concurrent_updates_with_same_if_match_one_wins(client: httpx.AsyncClient) -> None:
    created = await create_patient(client)
    pid = created["id"]
    headers = {**FHIR_JSON, "If-Match": 'W/"1"'}
    answers = await asyncio.gather(
        client.put(f"/Patient/{pid}", json={**created, "gender": "male"}, headers=headers),
        client.put(f"/Patient/{pid}", json={**created, "gender": "other"}, headers=headers),
    )
    assert sorted(a.status_code for a in answers) == [200, 412]
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "2"


async def test_conditional_create(client: httpx.AsyncClient) -> None:
    identified = patient(identifier=[{"system": "urn:mrn", "value": "42"}])
    condition = {**FHIR_JSON, "If-None-Exist": "identifier=urn:mrn|42"}
    first = await client.post("/Patient", json=identified, headers=condition)
    assert first.status_code == 201
    again = await client.post("/Patient", json=identified, headers=condition)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    await client.put("/Patient/twin", json={**identified, "id": "twin"}, headers=FHIR_JSON)
    ambiguous = await client.post("/Patient", json=identified, headers=condition)
    assert ambiguous.status_code == 412
    assert await count_of(client, "Patient") == 2


async def test_type_and_system_history_paging(client: httpx.AsyncClient) -> None:
    for family in ("A", "B", "C", "D"):
        await create_patient(client, family=family)
    seen: list[str] = []
    url: str | None = "/Patient/_history"
    while url:
        page = (await client.get(url)).json()
        assert page["total"] == 4
        seen += [entry["resource"]["name"][0]["family"] for entry in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == ["D", "C", "B", "A"]
    system = (await client.get("/_history", params={"_count": 2})).json()
    assert len(system["entry"]) == 2 and any(link["relation"] == "next" for link in system["link"])
    future = (await client.get("/Patient/_history", params={"_since": "2999-01-01T00:00:00Z"})).json()
    assert "entry" not in future


async def test_conditional_update_and_delete(client: httpx.AsyncClient) -> None:
    identified = patient(identifier=[{"system": "urn:mrn", "value": "c1"}])
    created = await client.put("/Patient", params={"identifier": "urn:mrn|c1"}, json=identified, headers=FHIR_JSON)
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = await client.put("/Patient", params={"identifier": "urn:mrn|c1"}, json={**identified, "gender": "male"},
                               headers=FHIR_JSON)
    assert updated.status_code == 200 and updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    await client.put("/Patient/c2", json={**identified, "id": "c2"}, headers=FHIR_JSON)
    ambiguous = await client.delete("/Patient", params={"identifier": "urn:mrn|c1"})
    assert ambiguous.status_code == 412 and outcome_issue(ambiguous)["code"] == "conflict"
    await client.delete("/Patient/c2")
    deleted = await client.delete("/Patient", params={"identifier": "urn:mrn|c1"})
    assert deleted.status_code == 204
    assert (await client.get(f"/Patient/{pid}")).status_code == 410
    assert await count_of(client, "Patient") == 0
