"""$validate with a ``profile`` the R4 specification publishes (bp), by query and by Parameters."""

from __future__ import annotations

import httpx

from tests.api.conftest import FHIR_JSON

BLOOD_PRESSURE = "http://hl7.org/fhir/StructureDefinition/bp"
LOINC = "http://loinc.org"


def observation(*codes: str) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "subject": {"reference": "Patient/1"},
            "effectiveDateTime": "2026-01-05",
            "component": [{"code": {"coding": [{"system": LOINC, "code": code}]},
                           "valueQuantity": {"value": 100, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                             "code": "mm[Hg]"}}
                          for code in codes]}


def errors(outcome: dict) -> list[tuple[str, list[str]]]:
    return [(i["code"], i.get("expression", [])) for i in outcome["issue"] if i["severity"] == "error"]


async def test_validate_against_a_core_profile(client: httpx.AsyncClient) -> None:
    good = await client.post("/Observation/$validate", params={"profile": BLOOD_PRESSURE},
                             json=observation("8480-6", "8462-4"), headers=FHIR_JSON)
    assert good.status_code == 200 and errors(good.json()) == []
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": observation("8480-6")}, {"name": "profile", "valueUri": BLOOD_PRESSURE}]}
    bad = await client.post("/Observation/$validate", json=parameters, headers=FHIR_JSON)
    assert bad.status_code == 200
    assert ("required", ["Observation.component"]) in errors(bad.json())
