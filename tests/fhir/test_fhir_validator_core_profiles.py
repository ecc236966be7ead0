"""Family 8: the profiles the R4 specification itself publishes (vitalsigns, bp, ...) are known to the validator."""

from __future__ import annotations

import copy
from typing import Any

from fhir_server.fhir.validator import Validator

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BLOOD_PRESSURE = "http://hl7.org/fhir/StructureDefinition/bp"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                         "code": "vital-signs"}]}]


def body_weight() -> dict[str, Any]:
    return {"resourceType": "Observation", "meta": {"profile": [VITAL_SIGNS]}, "status": "final",
            "category": copy.deepcopy(CATEGORY), "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
            "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2026-01-05",
            "valueQuantity": {"value": 70, "unit": "kg", "system": UCUM, "code": "kg"}}


def component(code: str, value: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}


def blood_pressure() -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "category": copy.deepcopy(CATEGORY),
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "subject": {"reference": "Patient/1"},
            "effectiveDateTime": "2026-01-05", "component": [component("8480-6", 120), component("8462-4", 80)]}


def errors(issues: list[Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in issues if i.is_error]


def test_a_claimed_core_profile_is_validated(core_validator: Validator) -> None:
    assert core_validator.validate(body_weight()) == []
    incomplete = body_weight()
    del incomplete["subject"], incomplete["category"]
    assert errors(core_validator.validate(incomplete)) == [
        ("required", ("Observation.category",)),  # the element (min 1) ...
        ("required", ("Observation.subject",)),
        ("required", ("Observation.category",)),  # ... and its VSCat slice
    ]


def test_a_profile_invariant_of_a_core_profile(core_validator: Validator) -> None:
    """vs-2: a vital sign without components or members needs a value or a data-absent reason."""
    valueless = body_weight()
    del valueless["valueQuantity"]
    issues = core_validator.validate(valueless)
    assert [(i.code, i.expression) for i in issues if i.is_error] == [("invariant", ("Observation",))]
    assert "vs-2" in issues[0].diagnostics


def test_the_profile_parameter_names_a_core_profile(core_validator: Validator) -> None:
    assert errors(core_validator.validate(blood_pressure(), [BLOOD_PRESSURE])) == []
    without_diastolic = blood_pressure()
    without_diastolic["component"].pop()
    assert errors(core_validator.validate(without_diastolic, [BLOOD_PRESSURE])) == [
        ("required", ("Observation.component",)),  # the DiastolicBP slice ...
        ("required", ("Observation.component",)),  # ... and bp's component min 2
    ]
    assert errors(core_validator.validate(without_diastolic)) == []  # not claimed, not asked: base rules only
