"""Writes that set the second-opinion workflow going (a client's Task, a consultation report, an update of a
pended request) and writes on the case's own resources, with damaged bodies and references that point at the
case, at nothing, or at the wrong thing. Refused writes must leave the case exactly as it was."""

from __future__ import annotations

import copy
import random
from typing import Any

from tests.robustness.conftest import EXAMPLES_DIR, FHIR_JSON, SCALE, Prober, load_json
from tests.robustness.mutations import BAD_REFERENCES, mutate

TASK_PROFILE = "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-task"


async def submitted_case(prober: Prober, sample: str) -> dict[str, dict[str, Any]]:
    """The stored resources of one sample submission, by type."""
    answer = await prober.send("POST", "/ServiceRequest/$submit", json=load_json(EXAMPLES_DIR / f"{sample}.json"),
                               headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    return {entry["resource"]["resourceType"]: entry["resource"] for entry in answer.json()["entry"]}


def client_task(focus: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "meta": {"profile": [TASK_PROFILE]}, "status": "requested", "intent": "order",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "approve"}]},
            "focus": {"reference": focus}}


def consultation_report(based_on: Any) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "basedOn": [{"reference": based_on}], "performer": [{"reference": "Practitioner/pract-04"}],
            "conclusion": "Findings and recommendation."}


async def test_workflow_writes_with_odd_inputs_never_break_the_promise(prober: Prober) -> None:
    rng = random.Random(9000)
    cases = [await submitted_case(prober, sample) for sample in ("submit-incomplete", "submit-bsp-cmc-third-opinion",
                                                                  "submit-health-net-cardiology")]
    for _ in range(200 * SCALE):
        case = rng.choice(cases)
        request_ref = f"ServiceRequest/{case['ServiceRequest']['id']}"
        target = rng.choice((request_ref, f"{request_ref}/_history/1", *BAD_REFERENCES))
        task_id = case["Task"]["id"]
        choice = rng.randrange(5)
        if choice == 0:
            body: Any = client_task(target)
            method, url = "POST", "/Task"
        elif choice == 1:
            body, method, url = consultation_report(target), "POST", "/DiagnosticReport"
        elif choice == 2:
            body, method, url = copy.deepcopy(case["ServiceRequest"]), "PUT", f"/{request_ref}"
        elif choice == 3:
            body, method, url = copy.deepcopy(case["Task"]), "PUT", f"/Task/{task_id}"
        else:
            body, method, url = None, "DELETE", rng.choice((f"/Task/{task_id}", f"/{request_ref}"))
        if body is not None and rng.random() < 0.7:
            body = mutate(rng, body, rounds=rng.choice((1, 2)))
        await prober.send(method, url, json=body, headers=FHIR_JSON if body is not None else {})
        decision = {"resourceType": "Parameters", "parameter": [
            {"name": "decision", "valueCode": rng.choice(("approve", "deny", "refer"))},
            {"name": "reviewer", "valueReference": {"reference": "Practitioner/pract-13"}},
            {"name": "reason", "valueString": "fuzz"}]}
        await prober.send("POST", f"/Task/{task_id}/$decide", json=decision, headers=FHIR_JSON)
    prober.verdict()
