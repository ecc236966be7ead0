"""Profile rules on a small in-test profile: what a profile adds to the base is reported by the profile pass only."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.fhir.definitions import DefinitionRegistry, core_registry
from fhir_server.fhir.terminology import Terminology, core_terminology
from fhir_server.fhir.validator import Validator

CANON = "http://example.org/fhir/test"
PROFILE = f"{CANON}/StructureDefinition/test-request"
EXTENSION = f"{CANON}/StructureDefinition/opinion-sequence"
REASON_SYSTEM = f"{CANON}/CodeSystem/reason"
REASON_VALUE_SET = f"{CANON}/ValueSet/reason"
SEQUENCE_VALUE_SET = f"{CANON}/ValueSet/sequence"
SECOND_OPINION = {"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}
CORE = "http://hl7.org/fhir/StructureDefinition/"


def core_elements(type_name: str) -> list[dict[str, Any]]:
    definition = core_registry().get(type_name)
    assert definition is not None
    return copy.deepcopy(definition["snapshot"]["element"])


def unrolled(type_name: str, at: str) -> list[dict[str, Any]]:
    """The children of a datatype, re-rooted under the element ``at`` (as a snapshot generator unrolls them)."""
    children = core_elements(type_name)[1:]
    for element in children:
        element["id"] = at + element["id"][len(type_name):]
        element["path"] = at + element["path"][len(type_name):]
    return children


def by_id(elements: list[dict[str, Any]], element_id: str) -> dict[str, Any]:
    return next(e for e in elements if e["id"] == element_id)


def opinion_sequence_extension() -> dict[str, Any]:
    elements = core_elements("Extension")
    by_id(elements, "Extension.extension")["max"] = "0"
    by_id(elements, "Extension.url")["fixedUri"] = EXTENSION
    value = by_id(elements, "Extension.value[x]")
    value.update(min=1, type=[{"code": "code"}], binding={"strength": "required", "valueSet": SEQUENCE_VALUE_SET})
    return {"resourceType": "StructureDefinition", "url": EXTENSION, "name": "OpinionSequence", "status": "active",
            "kind": "complex-type", "abstract": False, "type": "Extension", "baseDefinition": CORE + "Extension",
            "derivation": "constraint", "snapshot": {"element": elements}}


def request_profile() -> dict[str, Any]:
    elements = core_elements("ServiceRequest")
    by_id(elements, "ServiceRequest.status")["patternCode"] = "active"
    by_id(elements, "ServiceRequest.authoredOn")["min"] = 1
    by_id(elements, "ServiceRequest.performer")["max"] = "1"
    by_id(elements, "ServiceRequest.subject")["type"] = [{"code": "Reference", "targetProfile": [CORE + "Patient"]}]
    by_id(elements, "ServiceRequest.reasonCode").update(
        min=1, binding={"strength": "required", "valueSet": REASON_VALUE_SET})
    by_id(elements, "ServiceRequest.code")["min"] = 1
    by_id(elements, "ServiceRequest.category")["binding"] = {"strength": "extensible", "valueSet": REASON_VALUE_SET}
    extension = by_id(elements, "ServiceRequest.extension")
    extension["slicing"] = {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}
    extension_slice = copy.deepcopy(extension) | {"id": "ServiceRequest.extension:opinionSequence",
                                                  "sliceName": "opinionSequence", "min": 1, "max": "1",
                                                  "type": [{"code": "Extension", "profile": [EXTENSION]}]}
    del extension_slice["slicing"]
    code_children = unrolled("CodeableConcept", "ServiceRequest.code")
    coding = by_id(code_children, "ServiceRequest.code.coding")
    coding["slicing"] = {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}
    coding_slice = copy.deepcopy(coding) | {"id": "ServiceRequest.code.coding:secondOpinion",
                                            "sliceName": "secondOpinion", "min": 1, "max": "1",
                                            "patternCoding": SECOND_OPINION}
    del coding_slice["slicing"]
    elements += [extension_slice, *code_children, coding_slice]
    return {"resourceType": "StructureDefinition", "url": PROFILE, "name": "TestRequest", "status": "active",
            "kind": "resource", "abstract": False, "type": "ServiceRequest", "baseDefinition": CORE + "ServiceRequest",
            "derivation": "constraint", "snapshot": {"element": elements}}


def project_terminology() -> Terminology:
    terminology = core_terminology().copy()
    terminology.add({"resourceType": "CodeSystem", "url": REASON_SYSTEM, "status": "active", "content": "complete",
                     "concept": [{"code": "questions-surgery"}, {"code": "not-improving"}]})
    terminology.add({"resourceType": "ValueSet", "url": REASON_VALUE_SET, "status": "active",
                     "compose": {"include": [{"system": REASON_SYSTEM}]}})
    terminology.add({"resourceType": "ValueSet", "url": SEQUENCE_VALUE_SET, "status": "active",
                     "compose": {"include": [{"system": f"{CANON}/CodeSystem/sequence",
                                              "concept": [{"code": "second"}, {"code": "third"}]}]}})
    return terminology


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry: DefinitionRegistry = core_registry().copy()
    registry.add(request_profile())
    registry.add(opinion_sequence_extension())
    return Validator(registry, project_terminology())


def request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "meta": {"profile": [PROFILE]},
        "extension": [{"url": EXTENSION, "valueCode": "second"}],
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "11429006"}, SECOND_OPINION]},
        "subject": {"reference": "Patient/1"},
        "authoredOn": "2024-05-01",
        "reasonCode": [{"coding": [{"system": REASON_SYSTEM, "code": "questions-surgery"}]}],
    }
    resource.update(changes)
    return {key: value for key, value in resource.items() if value is not None}


def profile_problems(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    assert [i for i in validator.validate_structure(resource) if i.is_error] == [], "base rules must pass"
    return sorted((i.severity, i.code, i.expression) for i in validator.validate_profiles(resource))


def test_a_conformant_request_has_no_issues(validator: Validator) -> None:
    assert validator.validate(request()) == []


def test_narrowed_cardinality_targets_and_slices_are_profile_errors(validator: Validator) -> None:
    resource = request(
        authoredOn=None,
        extension=None,
        code={"coding": [{"system": "http://snomed.info/sct", "code": "11429006"}]},
        subject={"reference": "Group/1"},
        performer=[{"reference": "Practitioner/1"}, {"reference": "Practitioner/2"}],
    )
    assert profile_problems(validator, resource) == [
        ("error", "invalid", ("ServiceRequest.subject.reference",)),
        ("error", "required", ("ServiceRequest.authoredOn",)),
        ("error", "required", ("ServiceRequest.code.coding",)),
        ("error", "required", ("ServiceRequest.extension",)),
        ("error", "structure", ("ServiceRequest.performer",)),
    ]


def test_pattern_value(validator: Validator) -> None:
    assert profile_problems(validator, request(status="draft")) == [("error", "value", ("ServiceRequest.status",))]


def test_extension_slice_members_are_validated_against_the_extension_definition(validator: Validator) -> None:
    wrong_type = request(extension=[{"url": EXTENSION, "valueString": "second"}])
    assert profile_problems(validator, wrong_type) == [
        ("error", "required", ("ServiceRequest.extension[0].value",)),
        ("error", "structure", ("ServiceRequest.extension[0].value",)),
    ]
    wrong_code = request(extension=[{"url": EXTENSION, "valueCode": "fourth"},
                                    {"url": "http://example.org/other", "valueBoolean": True}])
    assert profile_problems(validator, wrong_code) == [
        ("error", "code-invalid", ("ServiceRequest.extension[0].value",)),
    ]
    twice = request(extension=[{"url": EXTENSION, "valueCode": "second"}, {"url": EXTENSION, "valueCode": "third"}])
    assert profile_problems(validator, twice) == [("error", "structure", ("ServiceRequest.extension",))]


def test_required_binding_to_a_project_value_set(validator: Validator) -> None:
    resource = request(reasonCode=[
        {"coding": [{"system": REASON_SYSTEM, "code": "not-improving"}]},
        {"coding": [{"system": "http://snomed.info/sct", "code": "73211009"}]},
    ])
    assert profile_problems(validator, resource) == [
        ("error", "code-invalid", ("ServiceRequest.reasonCode[1].coding[0].code",)),
    ]


def test_extensible_binding_warns_only_for_unknown_codes_of_its_own_system(validator: Validator) -> None:
    resource = request(category=[{"coding": [
        {"system": "http://snomed.info/sct", "code": "73211009"},
        {"system": REASON_SYSTEM, "code": "made-up"},
    ]}])
    assert profile_problems(validator, resource) == [
        ("warning", "code-invalid", ("ServiceRequest.category[0].coding[1].code",)),
    ]


def test_profile_errors_are_not_repeated_by_the_structure_pass_and_vice_versa(validator: Validator) -> None:
    resource = request(status="bogus", authoredOn=None)
    structure = [(i.code, i.expression) for i in validator.validate_structure(resource)]
    profile = [(i.code, i.expression) for i in validator.validate_profiles(resource)]
    assert structure == [("code-invalid", ("ServiceRequest.status",))]
    assert profile == [("value", ("ServiceRequest.status",)), ("required", ("ServiceRequest.authoredOn",))]


def test_meta_profile_not_hosted_is_a_warning(validator: Validator) -> None:
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest"
    resource = request(meta={"profile": [us_core]}, authoredOn=None)
    issues = validator.validate(resource)
    assert [(i.severity, i.code, i.expression) for i in issues] == [
        ("warning", "not-supported", ("ServiceRequest.meta.profile[0]",)),
    ]


def test_meta_profiles_can_be_skipped_and_explicit_profiles_added(validator: Validator) -> None:
    resource = request(meta=None, authoredOn=None)
    assert validator.validate_profiles(request(authoredOn=None), check_meta_profiles=False) == []
    assert [(i.code, i.expression) for i in validator.validate_profiles(resource, [PROFILE + "|1.0.0"])] == [
        ("required", ("ServiceRequest.authoredOn",)),
    ]
    unknown = validator.validate_profiles(resource, ["http://example.org/StructureDefinition/nope"])
    assert [(i.severity, i.code) for i in unknown] == [("error", "not-supported")]


def test_a_profile_of_another_type_is_an_error(validator: Validator) -> None:
    patient = {"resourceType": "Patient"}
    assert [(i.code, i.expression) for i in validator.validate_profiles(patient, [PROFILE])] == [
        ("invalid", ("Patient",)),
    ]
