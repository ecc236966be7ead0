"""Required-binding expansions and the project's own CodeSystems/ValueSets."""

from __future__ import annotations

from fhir_server.fhir.terminology import Terminology, core_terminology

REASON_SYSTEM = "http://example.org/fhir/test/CodeSystem/reason"
REASON_VALUE_SET = "http://example.org/fhir/test/ValueSet/reason"


def project_terminology() -> Terminology:
    terminology = core_terminology().copy()
    terminology.add({
        "resourceType": "CodeSystem", "url": REASON_SYSTEM, "status": "active", "content": "complete",
        "concept": [
            {"code": "surgery", "display": "Questions surgery", "concept": [{"code": "spine", "display": "Spine"}]},
            {"code": "unclear", "display": "Unclear diagnosis"},
        ],
    })
    terminology.add({
        "resourceType": "ValueSet", "url": REASON_VALUE_SET, "status": "active",
        "compose": {"include": [{"system": REASON_SYSTEM}]},
    })
    terminology.add({
        "resourceType": "ValueSet", "url": REASON_VALUE_SET + "-surgery", "status": "active",
        "compose": {"include": [{"system": REASON_SYSTEM,
                                 "filter": [{"property": "concept", "op": "descendent-of", "value": "surgery"}]}]},
    })
    return terminology


def test_core_required_binding_with_and_without_version_suffix() -> None:
    terminology = core_terminology()
    value_set = "http://hl7.org/fhir/ValueSet/request-status"
    system = "http://hl7.org/fhir/request-status"
    assert terminology.validate_code(value_set, system, "active") is True
    assert terminology.validate_code(value_set + "|4.0.1", None, "active") is True
    assert terminology.validate_code(value_set, None, "bogus") is False
    assert terminology.validate_code(value_set, "http://other", "active") is False


def test_unknown_or_unexpandable_value_sets_cannot_tell() -> None:
    terminology = core_terminology()
    assert terminology.validate_code("http://example.org/ValueSet/none", None, "x") is None
    assert terminology.validate_code("http://hl7.org/fhir/ValueSet/mimetypes", None, "text/plain") is None


def test_project_value_sets_expand_whole_systems_nested_concepts_and_filters() -> None:
    terminology = project_terminology()
    assert terminology.validate_code(REASON_VALUE_SET, REASON_SYSTEM, "spine") is True
    assert terminology.validate_code(REASON_VALUE_SET, REASON_SYSTEM, "other") is False
    assert terminology.validate_code(REASON_VALUE_SET + "-surgery", REASON_SYSTEM, "spine") is True
    assert terminology.validate_code(REASON_VALUE_SET + "-surgery", REASON_SYSTEM, "surgery") is False
    assert terminology.display(REASON_SYSTEM, "unclear") == "Unclear diagnosis"
    assert terminology.display(REASON_SYSTEM, "spine") == "Spine"  # a nested concept
    assert terminology.value_set(REASON_VALUE_SET + "|1.0")["url"] == REASON_VALUE_SET
    assert core_terminology().value_set(REASON_VALUE_SET) is None


def test_core_code_systems_answer_displays() -> None:
    terminology = core_terminology()
    assert terminology.display("http://hl7.org/fhir/administrative-gender", "female") == "Female"
    code_system = terminology.code_system("http://hl7.org/fhir/administrative-gender")
    assert code_system is not None and {"code": "other", "display": "Other"} in code_system["concept"]
