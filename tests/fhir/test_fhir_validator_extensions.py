"""Family 5: extensions against their definitions (R4 extensibility.html), valid and invalid twins."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.validator import Validator

BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"  # valueAddress, context Patient
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"  # valueDateTime, context Patient.birthDate
CITIZENSHIP = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"  # complex: code, period
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"  # context Element
MODIFIER = "http://hl7.org/fhir/StructureDefinition/request-doNotPerform"  # isModifier, context NutritionOrder


def found(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.severity, i.code, i.expression) for i in validator.validate(resource)]


def test_a_known_extension_in_its_context_with_its_value(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "extension": [{"url": BIRTH_PLACE, "valueAddress": {"city": "Fresno"}}]}
    assert found(core_validator, patient) == []


def test_the_value_type_of_a_core_extension(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "extension": [{"url": BIRTH_PLACE, "valueString": "Fresno"}]}
    assert ("error", "structure", ("Patient.extension[0].value",)) in found(core_validator, patient)


def test_the_context_of_a_core_extension(core_validator: Validator) -> None:
    practitioner = {"resourceType": "Practitioner",
                    "extension": [{"url": BIRTH_PLACE, "valueAddress": {"city": "Fresno"}}]}
    assert found(core_validator, practitioner) == [("error", "extension", ("Practitioner.extension[0]",))]


def test_a_context_by_path_on_a_primitive(core_validator: Validator) -> None:
    on_birth_date = {"resourceType": "Patient", "birthDate": "2000-01-01", "_birthDate": {
        "extension": [{"url": BIRTH_TIME, "valueDateTime": "2000-01-01T10:00:00Z"}]}}
    assert found(core_validator, on_birth_date) == []
    on_deceased = {"resourceType": "Patient", "deceasedDateTime": "2020-01-01", "_deceasedDateTime": {
        "extension": [{"url": BIRTH_TIME, "valueDateTime": "2000-01-01T10:00:00Z"}]}}
    assert ("error", "extension", ("Patient.deceased.extension[0]",)) in found(core_validator, on_deceased)


def test_an_element_context_allows_any_element(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "_gender": {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}}
    assert found(core_validator, patient) == []


def test_the_cardinality_of_a_complex_extension(core_validator: Validator) -> None:
    good = {"resourceType": "Patient", "extension": [{"url": CITIZENSHIP, "extension": [
        {"url": "code", "valueCodeableConcept": {"text": "US"}}]}]}
    assert found(core_validator, good) == []
    two_codes = {"resourceType": "Patient", "extension": [{"url": CITIZENSHIP, "extension": [
        {"url": "code", "valueCodeableConcept": {"text": "US"}}, {"url": "code", "valueCodeableConcept": {"text": "FR"}}]}]}
    assert [i for i in found(core_validator, two_codes) if i[0] == "error"] == [
        ("error", "structure", ("Patient.extension[0].extension",))
    ]


def test_modifier_extensions_only_where_allowed(core_validator: Validator) -> None:
    order = {"resourceType": "NutritionOrder", "status": "active", "intent": "order",
             "patient": {"reference": "Patient/1"}, "dateTime": "2026-01-05", "oralDiet": {"instruction": "soft"}}
    assert found(core_validator, order | {"modifierExtension": [{"url": MODIFIER, "valueBoolean": True}]}) == []
    assert found(core_validator, order | {"extension": [{"url": MODIFIER, "valueBoolean": True}]}) == [
        ("error", "extension", ("NutritionOrder.extension[0]",))
    ]
    patient = {"resourceType": "Patient",
               "modifierExtension": [{"url": BIRTH_PLACE, "valueAddress": {"city": "Fresno"}}]}
    assert found(core_validator, patient) == [("error", "extension", ("Patient.modifierExtension[0]",))]


def test_unknown_extensions_warn_and_unknown_modifiers_fail(core_validator: Validator) -> None:
    unknown = "http://example.org/fhir/StructureDefinition/unknown"
    patient = {"resourceType": "Patient", "extension": [{"url": unknown, "valueString": "x"}]}
    assert found(core_validator, patient) == [("warning", "extension", ("Patient.extension[0]",))]
    patient = {"resourceType": "Patient", "modifierExtension": [{"url": unknown, "valueString": "x"}]}
    assert found(core_validator, patient) == [("error", "extension", ("Patient.modifierExtension[0]",))]
