"""Families 2 and 4: resource ids, primitive companions (``_given``) and Attachment data, as valid/invalid twins."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from fhir_server.fhir.validator import Validator


def errors(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(issue.code, issue.expression) for issue in validator.validate(resource) if issue.is_error]


@pytest.mark.parametrize("good", ["a", "A-1.b", "x" * 64])
def test_resource_ids_in_format(core_validator: Validator, good: str) -> None:
    assert errors(core_validator, {"resourceType": "Patient", "id": good}) == []


@pytest.mark.parametrize("bad", ["a_b", "a b", "x" * 65, "é"])
def test_resource_ids_out_of_format(core_validator: Validator, bad: str) -> None:
    assert errors(core_validator, {"resourceType": "Patient", "id": bad}) == [("value", ("Patient.id",))]


def test_ids_of_contained_and_bundled_resources_are_checked_too(core_validator: Validator) -> None:
    patient = {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o_1", "name": "X"}],
               "managingOrganization": {"reference": "#o_1"}}
    assert ("value", ("Patient.contained[0].id",)) in errors(core_validator, patient)


def test_no_extensions_on_resource_or_element_ids(core_validator: Validator) -> None:
    extension = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    assert errors(core_validator, {"resourceType": "Patient", "id": "p"}) == []
    assert errors(core_validator, {"resourceType": "Patient", "id": "p", "_id": extension}) == [
        ("structure", ("Patient._id",))
    ]
    assert errors(core_validator, {"resourceType": "Patient", "name": [{"id": "n", "_id": extension}]}) == [
        ("structure", ("Patient.name[0]._id",))
    ]


def test_primitive_companions_align_with_their_values(core_validator: Validator) -> None:
    extension = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    aligned = {"resourceType": "Patient", "name": [{"given": ["Ada", "B"], "_given": [None, extension]}]}
    assert errors(core_validator, aligned) == []
    longer = {"resourceType": "Patient", "name": [{"given": ["Ada"], "_given": [None, extension]}]}
    assert errors(core_validator, longer) == [("structure", ("Patient.name[0]._given",))]


def test_null_only_beside_a_companion(core_validator: Validator) -> None:
    extension = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    assert errors(core_validator, {"resourceType": "Patient", "name": [{"given": [None, "B"],
                                                                       "_given": [extension, None]}]}) == []
    assert errors(core_validator, {"resourceType": "Patient", "name": [{"given": [None, "B"]}]}) == [
        ("structure", ("Patient.name[0].given[0]",))
    ]
    assert errors(core_validator, {"resourceType": "Patient", "birthDate": None}) == [
        ("structure", ("Patient.birthDate",))
    ]


def attachment(**changes: Any) -> dict[str, Any]:
    content = b"second opinion"
    value = {"contentType": "text/plain", "data": base64.b64encode(content).decode(), "size": len(content),
             "hash": base64.b64encode(hashlib.sha1(content).digest()).decode()}
    value.update(changes)
    return {"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": value}]}


def test_attachment_size_matches_data(core_validator: Validator) -> None:
    assert core_validator.validate(attachment()) == []
    assert errors(core_validator, attachment(size=3)) == [("value", ("DocumentReference.content[0].attachment.size",))]


def test_attachment_hash_mismatch_is_a_warning(core_validator: Validator) -> None:
    issues = core_validator.validate(attachment(hash=base64.b64encode(hashlib.sha1(b"other").digest()).decode()))
    assert [(i.severity, i.expression) for i in issues] == [
        ("warning", ("DocumentReference.content[0].attachment.hash",))
    ]
