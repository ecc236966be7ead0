"""Batch and transaction at POST [base]: ordering, urn:uuid rewriting, conditional logic, rollback."""

from __future__ import annotations

import httpx

from tests.api.conftest import FHIR_JSON, count_of, patient


def entry(method: str, url: str, resource: dict | None = None, full_url: str | None = None, **request) -> dict:
    item: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def observation(subject: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, "subject": {"reference": subject}}


async def test_transaction_rewrites_urn_uuids_and_answers_in_request_order(client: httpx.AsyncClient) -> None:
    patient_urn = "urn:uuid:9d3a4b9e-0000-4000-8000-000000000001"
    request = bundle(
        "transaction",
        entry("POST", "Observation", observation(patient_urn)),
        entry("POST", "Patient", patient(), full_url=patient_urn),
        entry("PUT", "Patient/fixed", patient(id="fixed", link=[{"other": {"reference": patient_urn}, "type": "seealso"}])),
    )
    response = await client.post("", json=request, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    patient_id = answer["entry"][1]["resource"]["id"]
    assert answer["entry"][1]["response"]["location"] == f"Patient/{patient_id}/_history/1"
    assert answer["entry"][1]["response"]["etag"] == 'W/"1"' and answer["entry"][1]["response"]["lastModified"]
    stored_observation = answer["entry"][0]["resource"]
    assert stored_observation["subject"]["reference"] == f"Patient/{patient_id}"
    fixed = (await client.get("/Patient/fixed")).json()
    assert fixed["link"][0]["other"]["reference"] == f"Patient/{patient_id}"


async def test_transaction_conditional_create_and_conditional_reference(client: httpx.AsyncClient) -> None:
    existing = (await client.post("/Patient", json=patient(identifier=[{"system": "urn:mrn", "value": "7"}]),
                                  headers=FHIR_JSON)).json()
    request = bundle(
        "transaction",
        entry("POST", "Patient", patient(identifier=[{"system": "urn:mrn", "value": "7"}]), full_url="urn:uuid:a",
              ifNoneExist="identifier=urn:mrn|7"),
        entry("POST", "Observation", observation("urn:uuid:a")),
        entry("POST", "Observation", observation("Patient?identifier=urn:mrn|7")),
    )
    answer = (await client.post("", json=request, headers=FHIR_JSON)).json()
    assert [e["response"]["status"] for e in answer["entry"]] == ["200 OK", "201 Created", "201 Created"]
    assert answer["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert answer["entry"][2]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert await count_of(client, "Patient") == 1


async def test_transaction_failure_rolls_everything_back_and_names_the_entry(client: httpx.AsyncClient) -> None:
    await client.put("/Patient/keep", json=patient(id="keep"), headers=FHIR_JSON)
    request = bundle(
        "transaction",
        entry("DELETE", "Patient/keep"),
        entry("POST", "Patient", patient("New")),
        entry("PUT", "Patient/other", patient(id="other")),
        entry("POST", "Patient", patient(gender="sometimes")),
    )
    response = await client.post("", json=request, headers=FHIR_JSON)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[3].resource.gender"] and "Bundle.entry[3]" in issue["diagnostics"]
    assert (await client.get("/Patient/keep")).status_code == 200
    assert (await client.get("/Patient/other")).status_code == 404
    assert await count_of(client, "Patient") == 1


async def test_transaction_unresolvable_conditional_reference_is_412(client: httpx.AsyncClient) -> None:
    request = bundle("transaction", entry("POST", "Patient", patient()),
                     entry("POST", "Observation", observation("Patient?identifier=urn:mrn|none")))
    response = await client.post("", json=request, headers=FHIR_JSON)
    assert response.status_code == 412
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert await count_of(client, "Patient") == 0


async def test_transaction_conditional_reference_to_no_resource_type_is_404(client: httpx.AsyncClient) -> None:
    for reference in ("Nothing?_id=1", "patient?_id=1", "?_id=1"):
        request = bundle("transaction", entry("POST", "Observation", observation(reference)))
        response = await client.post("", json=request, headers=FHIR_JSON)
        assert response.status_code == 404, reference
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-supported" and issue["expression"] == ["Bundle.entry[0]"]
    assert await count_of(client, "Observation") == 0


async def test_batch_entries_fail_independently(client: httpx.AsyncClient) -> None:
    await client.put("/Patient/there", json=patient(id="there"), headers=FHIR_JSON)
    request = bundle(
        "batch",
        entry("POST", "Patient", patient("Good")),
        entry("POST", "Patient", patient(gender="sometimes")),
        entry("GET", "Patient/there"),
        entry("GET", "Patient/missing"),
        entry("PUT", "Patient/there", patient(id="there", gender="male"), ifMatch='W/"1"'),
        entry("GET", "Patient?gender=male"),
    )
    response = await client.post("", json=request, headers=FHIR_JSON)
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "200 OK", "404 Not Found", "200 OK", "200 OK"]
    failed = answer["entry"][1]["response"]["outcome"]
    assert failed["resourceType"] == "OperationOutcome"
    assert failed["issue"][0]["expression"] == ["Bundle.entry[1].resource.gender"]
    assert answer["entry"][5]["resource"]["type"] == "searchset"
    assert await count_of(client, "Patient") == 2


async def test_bundle_of_other_type_or_without_request_is_400(client: httpx.AsyncClient) -> None:
    collection = await client.post("", json=bundle("collection", {"resource": patient()}), headers=FHIR_JSON)
    assert collection.status_code == 400 and collection.json()["issue"][0]["expression"] == ["Bundle.type"]
    no_request = await client.post("", json=bundle("transaction", {"resource": patient()}), headers=FHIR_JSON)
    assert no_request.status_code == 400
    assert no_request.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    not_a_bundle = await client.post("", json=patient(), headers=FHIR_JSON)
    assert not_a_bundle.status_code == 400
    assert await count_of(client, "Patient") == 0


async def test_transaction_conditional_update_and_delete(client: httpx.AsyncClient) -> None:
    await client.put("/Patient/old", json=patient(id="old", identifier=[{"system": "urn:mrn", "value": "old"}]),
                     headers=FHIR_JSON)
    request = bundle(
        "transaction",
        entry("DELETE", "Patient?identifier=urn:mrn|old"),
        entry("PUT", "Patient?identifier=urn:mrn|new", patient("New", identifier=[{"system": "urn:mrn", "value": "new"}])),
        entry("POST", "ValueSet/$expand", {"resourceType": "Parameters"}),
    )
    failed = await client.post("", json=request, headers=FHIR_JSON)
    assert failed.status_code == 400 and failed.json()["issue"][0]["expression"] == ["Bundle.entry[2]"]
    assert (await client.get("/Patient/old")).status_code == 200
    answer = (await client.post("", json=bundle("transaction", *request["entry"][:2]), headers=FHIR_JSON)).json()
    assert [e["response"]["status"] for e in answer["entry"]] == ["204 No Content", "201 Created"]
    assert (await client.get("/Patient/old")).status_code == 410
    assert await count_of(client, "Patient") == 1
