"""Family 6: profiles written as differentials (snapshots generated), with valid and invalid twins.

Slicing by ``type``, ``profile`` and ``exists`` discriminators, a slice constraining only some discriminators,
minValue/maxValue, a required binding on a Quantity, a type profile on an unsliced element, ``Bundle.entry.resource``
narrowed to a type and a renamed choice path (``valueQuantity``).
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.definitions import core_registry
from fhir_server.fhir.snapshot import generate_snapshot
from fhir_server.fhir.terminology import core_terminology
from fhir_server.fhir.validator import Validator

CANON = "http://example.org/fhir/test/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"
UCUM = "http://unitsofmeasure.org"
WEIGHT_UNITS = "http://example.org/fhir/test/ValueSet/weight-units"
VITAL_SIGNS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                           "code": "vital-signs"}]}


def profile(name: str, base: str, *elements: dict[str, Any]) -> dict[str, Any]:
    base_definition = core_registry().get(base)
    assert base_definition is not None
    differential = {"resourceType": "StructureDefinition", "url": CANON + name, "name": name, "status": "active",
                    "kind": base_definition["kind"], "abstract": False, "type": base_definition["type"],
                    "baseDefinition": CORE + base, "derivation": "constraint",
                    "differential": {"element": [{"id": e["id"], "path": e["id"].split(":")[0]
                                                  if ":" not in e["id"] else strip_slices(e["id"]), **e}
                                                 for e in elements]}}
    return generate_snapshot(differential, lambda url: REGISTRY_BEFORE.get(url) or core_registry().get(url))


def strip_slices(element_id: str) -> str:
    return ".".join(segment.split(":")[0] for segment in element_id.split("."))


REGISTRY_BEFORE: dict[str, dict[str, Any]] = {}


def adult_patient() -> dict[str, Any]:
    return profile("adult-patient", "Patient", {"id": "Patient.birthDate", "min": 1})


def bundle_profile() -> dict[str, Any]:
    return profile(
        "patient-bundle", "Bundle",
        {"id": "Bundle.entry", "slicing": {"discriminator": [{"type": "type", "path": "resource"}], "rules": "closed"}},
        {"id": "Bundle.entry:patient", "sliceName": "patient", "min": 1, "max": "1"},
        {"id": "Bundle.entry:patient.resource", "type": [{"code": "Patient"}]},
        {"id": "Bundle.entry:patient.resource.gender", "min": 1},
        {"id": "Bundle.entry:organization", "sliceName": "organization", "min": 0, "max": "*"},
        {"id": "Bundle.entry:organization.resource", "type": [{"code": "Organization"}]},
    )


def adults_bundle_profile() -> dict[str, Any]:
    return profile(
        "adults-bundle", "Bundle",
        {"id": "Bundle.entry", "slicing": {"discriminator": [{"type": "profile", "path": "resource"}],
                                           "rules": "closed"}},
        {"id": "Bundle.entry:adult", "sliceName": "adult", "min": 1, "max": "*"},
        {"id": "Bundle.entry:adult.resource", "type": [{"code": "Patient", "profile": [CANON + "adult-patient"]}]},
    )


def weight_profile() -> dict[str, Any]:
    return profile(
        "weight", "Observation",
        {"id": "Observation.valueQuantity", "binding": {"strength": "required", "valueSet": WEIGHT_UNITS}},
        {"id": "Observation.valueQuantity.value", "minValueDecimal": 0, "maxValueDecimal": 500},
        {"id": "Observation.category", "slicing": {"discriminator": [{"type": "pattern", "path": "$this"},
                                                                     {"type": "exists", "path": "text"}],
                                                   "rules": "closed"}},
        {"id": "Observation.category:vs", "sliceName": "vs", "min": 1, "max": "1",
         "patternCodeableConcept": VITAL_SIGNS},
        {"id": "Observation.component", "slicing": {"discriminator": [{"type": "exists", "path": "dataAbsentReason"}],
                                                    "rules": "closed"}},
        {"id": "Observation.component:absent", "sliceName": "absent", "min": 0, "max": "1"},
        {"id": "Observation.component:absent.dataAbsentReason", "min": 1},
        {"id": "Observation.component:measured", "sliceName": "measured", "min": 0, "max": "1"},
        {"id": "Observation.component:measured.dataAbsentReason", "max": "0"},
        {"id": "Observation.component:measured.value[x]", "min": 1},
    )


def parameters_profile() -> dict[str, Any]:
    return profile(
        "patient-parameters", "Parameters",
        {"id": "Parameters.parameter.resource", "type": [{"code": "Patient", "profile": [CANON + "adult-patient"]}]},
    )


def closed_extensions_profile() -> dict[str, Any]:
    return profile(
        "closed-extensions", "Patient",
        {"id": "Patient.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}],
                                                "rules": "closed"}},
        {"id": "Patient.extension:birthPlace", "sliceName": "birthPlace", "min": 0, "max": "1",
         "type": [{"code": "Extension", "profile": [CORE + "patient-birthPlace"]}]},
    )


def unresolvable_profile() -> dict[str, Any]:
    return profile(
        "by-reference", "Observation",
        {"id": "Observation.performer", "slicing": {"discriminator": [{"type": "type", "path": "resolve()"}],
                                                    "rules": "closed"}},
        {"id": "Observation.performer:doctor", "sliceName": "doctor", "min": 1},
    )


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = core_registry().copy()
    adult = adult_patient()
    REGISTRY_BEFORE[adult["url"]] = adult
    registry.add(adult)
    for built in (bundle_profile(), adults_bundle_profile(), weight_profile(), parameters_profile(),
                  unresolvable_profile(), closed_extensions_profile()):
        registry.add(built)
    terminology = core_terminology().copy()
    terminology.add({"resourceType": "ValueSet", "url": WEIGHT_UNITS, "status": "active", "compose": {"include": [
        {"system": UCUM, "concept": [{"code": "kg"}, {"code": "g"}]}]}})
    return Validator(registry, terminology)


def profile_errors(validator: Validator, resource: dict[str, Any], name: str) -> list[tuple[str, tuple[str, ...]]]:
    assert [i for i in validator.validate_structure(resource) if i.is_error] == [], "base rules must pass"
    return [(i.code, i.expression) for i in validator.validate_profiles(resource, [CANON + name]) if i.is_error]


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{n}", "resource": r}
                      for n, r in enumerate(resources)]}


PATIENT = {"resourceType": "Patient", "gender": "female", "birthDate": "1970-01-01"}
ORGANIZATION = {"resourceType": "Organization", "name": "Valley"}


def test_type_discriminator_and_a_narrowed_entry_resource(validator: Validator) -> None:
    assert profile_errors(validator, bundle(PATIENT, ORGANIZATION, ORGANIZATION), "patient-bundle") == []
    assert profile_errors(validator, bundle(ORGANIZATION), "patient-bundle") == [("required", ("Bundle.entry",))]
    practitioner = {"resourceType": "Practitioner"}
    assert profile_errors(validator, bundle(PATIENT, practitioner), "patient-bundle") == [
        ("structure", ("Bundle.entry[1]",))
    ]
    assert profile_errors(validator, bundle({"resourceType": "Patient"}), "patient-bundle") == [
        ("required", ("Bundle.entry[0].resource.gender",))
    ]


def test_profile_discriminator(validator: Validator) -> None:
    assert profile_errors(validator, bundle(PATIENT), "adults-bundle") == []
    no_birth_date = {"resourceType": "Patient", "gender": "male"}
    assert profile_errors(validator, bundle(PATIENT, no_birth_date), "adults-bundle") == [
        ("structure", ("Bundle.entry[1]",))
    ]


def weight(**changes: Any) -> dict[str, Any]:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                   "category": [VITAL_SIGNS], "valueQuantity": {"value": 70, "system": UCUM, "code": "kg"}}
    observation.update(changes)
    return {key: value for key, value in observation.items() if value is not None}


def test_a_renamed_choice_narrows_the_type(validator: Validator) -> None:
    assert profile_errors(validator, weight(), "weight") == []
    assert profile_errors(validator, weight(valueQuantity=None, valueString="70 kg"), "weight") == [
        ("structure", ("Observation.value",))
    ]


def test_min_and_max_value(validator: Validator) -> None:
    assert profile_errors(validator, weight(valueQuantity={"value": 0, "system": UCUM, "code": "kg"}), "weight") == []
    assert profile_errors(validator, weight(valueQuantity={"value": 501, "system": UCUM, "code": "kg"}), "weight") == [
        ("value", ("Observation.value.value",))
    ]
    assert profile_errors(validator, weight(valueQuantity={"value": -1, "system": UCUM, "code": "kg"}), "weight") == [
        ("value", ("Observation.value.value",))
    ]


def test_required_binding_on_a_quantity(validator: Validator) -> None:
    assert profile_errors(validator, weight(valueQuantity={"value": 9, "system": UCUM, "code": "g"}), "weight") == []
    assert profile_errors(validator, weight(valueQuantity={"value": 9, "system": UCUM, "code": "[lb_av]"}),
                          "weight") == [("code-invalid", ("Observation.value.code",))]


def test_a_slice_constraining_some_discriminators_matches_on_those(validator: Validator) -> None:
    """The category slice sets a pattern but nothing about ``text``: it still matches (the other discriminator
    does not discriminate), with or without a text."""
    assert profile_errors(validator, weight(category=[VITAL_SIGNS | {"text": "Vital signs"}]), "weight") == []
    assert profile_errors(validator, weight(category=[{"text": "Other"}]), "weight") == [
        ("structure", ("Observation.category[0]",)), ("required", ("Observation.category",))
    ]


def test_exists_discriminator(validator: Validator) -> None:
    absent = {"code": {"text": "left"}, "dataAbsentReason": {"text": "not measured"}}
    measured = {"code": {"text": "right"}, "valueQuantity": {"value": 1}}
    assert profile_errors(validator, weight(component=[absent, measured]), "weight") == []
    assert profile_errors(validator, weight(component=[measured, measured]), "weight") == [
        ("structure", ("Observation.component",))
    ]
    neither = {"code": {"text": "none"}}  # a measured slice member without its value
    assert profile_errors(validator, weight(component=[neither]), "weight") == [
        ("required", ("Observation.component[0].value",))
    ]


def test_a_type_profile_on_an_unsliced_element(validator: Validator) -> None:
    def parameters(resource: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": [{"name": "patient", "resource": resource}]}
    assert profile_errors(validator, parameters(PATIENT), "patient-parameters") == []
    assert profile_errors(validator, parameters({"resourceType": "Patient"}), "patient-parameters") == [
        ("required", ("Parameters.parameter[0].resource.birthDate",))
    ]
    assert profile_errors(validator, parameters(ORGANIZATION), "patient-parameters") == [
        ("invalid", ("Parameters.parameter[0].resource",))
    ]


def test_a_discriminator_that_cannot_be_followed_leaves_the_slicing_unjudged(validator: Validator) -> None:
    observation = weight(performer=[{"reference": "Organization/1"}])
    assert profile_errors(validator, observation, "by-reference") == []


def test_an_unknown_extension_is_an_error_only_where_a_profile_closes_the_extensions(validator: Validator) -> None:
    unknown = {"url": "http://example.org/fhir/StructureDefinition/unknown", "valueString": "x"}
    birth_place = {"url": CORE + "patient-birthPlace", "valueAddress": {"city": "Fresno"}}
    patient = {"resourceType": "Patient", "extension": [birth_place, unknown]}
    assert [(i.severity, i.expression) for i in validator.validate_structure(patient)] == [
        ("warning", ("Patient.extension[1]",))
    ]
    assert profile_errors(validator, patient, "closed-extensions") == [("structure", ("Patient.extension[1]",))]
    assert profile_errors(validator, {"resourceType": "Patient", "extension": [birth_place]},
                          "closed-extensions") == []
