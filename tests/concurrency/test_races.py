"""Races through a server of two worker processes, on SQLite and on MongoDB: each ends with exactly one stored
result, and every racer gets the FHIR answer (never a 409 or a 5xx).

- ``If-None-Exist``: 20 concurrent ``POST Patient`` with the same condition store one Patient; the winner gets 201,
  every other request 200 with that Patient.
- transaction Bundles whose one entry is a conditional create (``ifNoneExist``): 10 concurrent ones store one.
- conditional updates (``PUT Patient?identifier=...``): 6 concurrent ones create one Patient, versions 1 to 6.
- ``$submit`` of one request identifier, 8 at once (4 for a pended case): one ServiceRequest, Task, Claim,
  ClaimResponse and Patient; every answer names the same ClaimResponse and Task.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import httpx
import pytest

from tests.concurrency.conftest import EXAMPLES, FHIR_JSON, load_json

MRN = "http://hospital.example/mrn"


async def race(requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[httpx.Response]:
    """Send every request at once, each on a connection of its own (so both workers take some)."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(client.request(method, url, json=body, headers=headers) for method, url, body, headers in requests)
        )


def count(base: str, resource_type: str, **criteria: str) -> int:
    answer = httpx.get(f"{base}/{resource_type}", params={**criteria, "_summary": "count"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


def patient(mrn: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], "name": [{"family": "Race"}]}


def test_concurrent_conditional_creates_store_one_resource(server: str):
    mrn = f"ine-{uuid.uuid4().hex[:8]}"
    condition = {**FHIR_JSON, "If-None-Exist": f"identifier={MRN}|{mrn}"}
    answers = asyncio.run(race([("POST", f"{server}/Patient", patient(mrn), condition)] * 20))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 19 + [201], [answer.text[:300] for answer in answers if answer.status_code >= 300]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert count(server, "Patient", identifier=f"{MRN}|{mrn}") == 1


def test_concurrent_transactions_with_the_same_if_none_exist_store_one_resource(server: str):
    mrn = f"tx-{uuid.uuid4().hex[:8]}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
            "resource": patient(mrn),
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{mrn}"},
        }],
    }
    answers = asyncio.run(race([("POST", server, bundle, FHIR_JSON)] * 10))
    assert [answer.status_code for answer in answers] == [200] * 10, [answer.text[:300] for answer in answers]
    statuses = sorted(answer.json()["entry"][0]["response"]["status"] for answer in answers)
    assert statuses == ["200 OK"] * 9 + ["201 Created"]
    assert count(server, "Patient", identifier=f"{MRN}|{mrn}") == 1


def test_concurrent_conditional_updates_create_one_resource_and_version_it(server: str):
    mrn = f"put-{uuid.uuid4().hex[:8]}"
    url = f"{server}/Patient?identifier={MRN}|{mrn}"
    answers = asyncio.run(race([("PUT", url, patient(mrn), FHIR_JSON)] * 6))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 5 + [201], [answer.text[:300] for answer in answers if answer.status_code >= 300]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert sorted(int(answer.json()["meta"]["versionId"]) for answer in answers) == list(range(1, 7))
    assert count(server, "Patient", identifier=f"{MRN}|{mrn}") == 1


def submission(tag: str, sample: str = "submit-health-net-cardiology") -> dict[str, Any]:
    """A sample submission (Health Net's is certified at once) with identifiers of its own."""
    bundle = copy.deepcopy(load_json(EXAMPLES / f"{sample}.json"))
    for entry in bundle["entry"]:
        for identifier in entry["resource"].get("identifier", ()):
            identifier["value"] = f"{identifier['value']}-{tag}"
    return bundle


@pytest.mark.parametrize("sample, racers", [("submit-health-net-cardiology", 8), ("submit-bsp-cmc-third-opinion", 4)])
def test_concurrent_submissions_of_one_request_make_one_case(server: str, sample: str, racers: int):
    """Decided at once (Health Net: every loser gets the stored answer) or pended for a physician (Blue Shield
    Promise: each loser re-evaluates the one case, one after the other: fewer racers keep it short)."""
    tag = uuid.uuid4().hex[:8]
    bundle = submission(tag, sample)
    request_identifier = bundle["entry"][0]["resource"]["identifier"][0]
    patient_entry = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    member = patient_entry["identifier"][0]
    answers = asyncio.run(race([("POST", f"{server}/ServiceRequest/$submit", bundle, FHIR_JSON)] * racers))
    assert [answer.status_code for answer in answers] == [200] * racers, [answer.text[:300] for answer in answers]
    claim_responses = {answer.json()["entry"][0]["resource"]["id"] for answer in answers}
    tasks = {answer.json()["entry"][1]["resource"]["id"] for answer in answers}
    assert len(claim_responses) == 1 and len(tasks) == 1
    requests = httpx.get(
        f"{server}/ServiceRequest",
        params={"identifier": f"{request_identifier['system']}|{request_identifier['value']}"},
        timeout=30,
    ).json()
    assert requests["total"] == 1
    service_request = requests["entry"][0]["resource"]["id"]
    assert count(server, "Task", focus=f"ServiceRequest/{service_request}") == 1
    assert count(server, "Patient", identifier=f"{member['system']}|{member['value']}") == 1
    member_reference = requests["entry"][0]["resource"]["subject"]["reference"]
    assert count(server, "Claim", patient=member_reference) == 1
    assert count(server, "ClaimResponse", patient=member_reference) == 1
