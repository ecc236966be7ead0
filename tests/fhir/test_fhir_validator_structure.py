"""Base R4 rules: each case asserts the exact FHIRPath of every problem, all reported at once."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.validator import Validator


def problems(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(issue.code, issue.expression) for issue in validator.validate_structure(resource) if issue.is_error]


def service_request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    resource.update(changes)
    return resource


def test_a_valid_resource_has_no_issues(core_validator: Validator) -> None:
    assert core_validator.validate_structure(service_request()) == []


def test_unknown_resource_type(core_validator: Validator) -> None:
    assert problems(core_validator, {"resourceType": "Patientt"}) == [("invalid", ("resourceType",))]
    assert problems(core_validator, {"id": "1"}) == [("invalid", ("resourceType",))]


def test_bogus_status_code(core_validator: Validator) -> None:
    assert problems(core_validator, service_request(status="bogus")) == [
        ("code-invalid", ("ServiceRequest.status",))
    ]


def test_wrong_primitives(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "birthDate": "1990-13-45", "active": "true", "multipleBirthInteger": 1.5}
    assert problems(core_validator, patient) == [
        ("value", ("Patient.birthDate",)),
        ("structure", ("Patient.active",)),
        ("structure", ("Patient.multipleBirth",)),
    ]


def test_impossible_calendar_date_and_empty_string(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "birthDate": "2023-02-30", "name": [{"family": ""}]}
    assert problems(core_validator, patient) == [
        ("value", ("Patient.birthDate",)),
        ("value", ("Patient.name[0].family",)),
    ]


def test_unknown_element_and_missing_required_are_reported_together(core_validator: Validator) -> None:
    resource = service_request(colour="blue", status="bogus")
    del resource["subject"]
    assert problems(core_validator, resource) == [
        ("code-invalid", ("ServiceRequest.status",)),
        ("structure", ("ServiceRequest.colour",)),
        ("required", ("ServiceRequest.subject",)),
    ]


def test_array_versus_single_value(core_validator: Validator) -> None:
    resource = service_request(identifier={"value": "1"}, subject=[{"reference": "Patient/1"}])
    assert problems(core_validator, resource) == [
        ("structure", ("ServiceRequest.subject",)),
        ("structure", ("ServiceRequest.identifier",)),
    ]


def test_empty_objects_and_arrays(core_validator: Validator) -> None:
    assert problems(core_validator, service_request(code={}, note=[])) == [
        ("structure", ("ServiceRequest.code",)),
        ("structure", ("ServiceRequest.note",)),
    ]


def test_choice_type_not_allowed(core_validator: Validator) -> None:
    assert problems(core_validator, service_request(occurrenceString="soon", quantityQuantity={"value": 1})) == [
        ("structure", ("ServiceRequest.occurrence",)),
    ]


def test_extension_without_url_and_with_value_and_children(core_validator: Validator) -> None:
    resource = service_request(extension=[
        {"valueString": "x"},
        {"url": "http://example.org/e", "valueString": "x", "extension": [{"url": "a", "valueCode": "b"}]},
        {"url": "http://example.org/e"},
    ])
    assert problems(core_validator, resource) == [
        ("required", ("ServiceRequest.extension[0].url",)),
        ("invalid", ("ServiceRequest.extension[1]",)),
        ("invalid", ("ServiceRequest.extension[2]",)),
    ]


def test_primitive_extension_form(core_validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "_birthDate": {"extension": [{"url": "http://example.org/e", "valueDateTime": "1990-01-01T10:00"}]},
        "name": [{"given": ["Ann", None], "_given": [None, {"id": "g2"}]}],
    }
    assert problems(core_validator, patient) == [("value", ("Patient.birthDate.extension[0].value",))]


def test_contained_resource_errors(core_validator: Validator) -> None:
    resource = service_request(
        contained=[{"resourceType": "Patient", "id": "p", "gender": "unknown-ish"}, {"resourceType": "Nope"}],
        subject={"reference": "#p"},
    )
    assert problems(core_validator, resource) == [
        ("code-invalid", ("ServiceRequest.contained[0].gender",)),
        ("invalid", ("ServiceRequest.contained[1].resourceType",)),
    ]


def test_nested_bundle_entry_errors(core_validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:3c1d6b4e-8f00-4c7a-9a43-6e7b7e0d6a01", "resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": service_request(status="nope")},
            ]}},
            {"resource": service_request(intent=None)},
        ],
    }
    assert problems(core_validator, bundle) == [
        ("code-invalid", ("Bundle.entry[1].resource.entry[0].resource.status",)),
        ("structure", ("Bundle.entry[2].resource.intent",)),
        ("required", ("Bundle.entry[2].resource.intent",)),
    ]


def test_required_binding_on_codeable_concept(core_validator: Validator) -> None:
    # AllergyIntolerance.clinicalStatus: a CodeableConcept with a required binding in R4.
    allergy = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/1"},
        "clinicalStatus": {"coding": [
            {"system": "http://snomed.info/sct", "code": "55561003"},
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "bogus"},
        ]},
        "verificationStatus": {"coding": [
            {"system": "http://snomed.info/sct", "code": "55561003"},
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"},
        ]},
    }
    assert problems(core_validator, allergy) == [
        ("code-invalid", ("AllergyIntolerance.clinicalStatus.coding[0].code",)),
        ("code-invalid", ("AllergyIntolerance.clinicalStatus.coding[1].code",)),
    ]


def test_reference_to_a_type_the_element_does_not_allow(core_validator: Validator) -> None:
    bundle_urn = "urn:uuid:3c1d6b4e-8f00-4c7a-9a43-6e7b7e0d6a02"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": service_request(subject={"reference": bundle_urn})},
            {"fullUrl": bundle_urn, "resource": {"resourceType": "Organization", "name": "Valley"}},
            {"resource": service_request(subject={"reference": "https://ehr.example/fhir/Practitioner/7"})},
        ],
    }
    assert problems(core_validator, bundle) == [
        ("invalid", ("Bundle.entry[0].resource.subject.reference",)),
        ("invalid", ("Bundle.entry[2].resource.subject.reference",)),
    ]


def test_integer_ranges(core_validator: Validator) -> None:
    claim_response_item = {"itemSequence": 0}
    resource = {
        "resourceType": "ClaimResponse", "status": "active", "type": {"text": "x"}, "use": "claim",
        "patient": {"reference": "Patient/1"}, "created": "2024-01-01", "insurer": {"reference": "Organization/1"},
        "outcome": "complete", "item": [claim_response_item | {"adjudication": [{"category": {"text": "x"}}]}],
    }
    assert problems(core_validator, resource) == [("value", ("ClaimResponse.item[0].itemSequence",))]


def test_parameters_resources_are_validated_as_resources(core_validator: Validator) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient", "gender": "femal"}},
            {"name": "flag", "valueBoolean": "yes"},
        ],
    }
    assert problems(core_validator, parameters) == [
        ("code-invalid", ("Parameters.parameter[0].resource.gender",)),
        ("structure", ("Parameters.parameter[1].value",)),
    ]
