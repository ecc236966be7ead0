"""Family 3: Bundle rules, each a valid and an invalid twin written from R4 (bundle.html)."""

from __future__ import annotations

import copy
from typing import Any

from fhir_server.fhir.validator import Validator

PATIENT_URN = "urn:uuid:3c1d6b4e-8f00-4c7a-9a43-6e7b7e0d6a02"
ORG_URN = "urn:uuid:6f1e8a90-2b7c-4d1e-9f0a-1c2d3e4f5a6b"


def found(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.severity, i.code, i.expression) for i in validator.validate(resource)]


def collection(*entries: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def patient(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Doe"}], **changes}


def test_full_url_must_be_absolute(core_validator: Validator) -> None:
    assert found(core_validator, collection({"fullUrl": PATIENT_URN, "resource": patient()})) == []
    assert found(core_validator, collection({"fullUrl": "http://ehr.example/fhir/Patient/1",
                                             "resource": patient(id="1")})) == []
    assert found(core_validator, collection({"fullUrl": "urn:oid:1.2.3.4", "resource": patient()})) == []
    assert found(core_validator, collection({"fullUrl": "Patient/1", "resource": patient(id="1")})) == [
        ("error", "value", ("Bundle.entry[0].fullUrl",))
    ]
    assert found(core_validator, collection({"fullUrl": "urn:uuid:not-a-uuid", "resource": patient()})) == [
        ("error", "value", ("Bundle.entry[0].fullUrl",))
    ]


def test_full_url_consistent_with_the_resource_id(core_validator: Validator) -> None:
    assert found(core_validator, collection({"fullUrl": "http://ehr.example/fhir/Patient/2",
                                             "resource": patient(id="1")})) == [
        ("warning", "invalid", ("Bundle.entry[0].fullUrl",))
    ]


def test_the_same_full_url_twice_is_bdl_7(core_validator: Validator) -> None:
    once = collection({"fullUrl": PATIENT_URN, "resource": patient()},
                      {"fullUrl": ORG_URN, "resource": {"resourceType": "Organization", "name": "X"}})
    assert found(core_validator, once) == []
    twice = copy.deepcopy(once)
    twice["entry"][1]["fullUrl"] = PATIENT_URN
    issues = core_validator.validate(twice)
    assert [(i.severity, i.code) for i in issues] == [("error", "invariant")]
    assert "bdl-7" in issues[0].diagnostics


def test_the_same_resource_twice_without_full_urls(core_validator: Validator) -> None:
    once = collection({"resource": patient(id="1")}, {"resource": patient(id="2")})
    assert found(core_validator, once) == []
    twice = collection({"resource": patient(id="1")}, {"resource": patient(id="1")})
    assert found(core_validator, twice) == [("error", "duplicate", ("Bundle.entry[1].resource",))]
    two_versions = collection({"resource": patient(id="1", meta={"versionId": "1"})},
                              {"resource": patient(id="1", meta={"versionId": "2"})})
    assert found(core_validator, two_versions) == []


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "link": [{"relation": "self", "url": "http://server.example/fhir/Patient?name=doe"}],
            "entry": [{"fullUrl": f"http://server.example/fhir/{r['resourceType']}/{r.get('id', 'x')}",
                       "resource": r, "search": {"mode": "match"}} for r in resources]}


def test_searchset_entries_have_ids_and_the_searched_type(core_validator: Validator) -> None:
    assert found(core_validator, searchset(patient(id="1"))) == []
    without_id = searchset(patient(id="1"))
    del without_id["entry"][0]["resource"]["id"]
    assert ("error", "required", ("Bundle.entry[0].resource",)) in found(core_validator, without_id)
    other_type = searchset({"resourceType": "Organization", "id": "o", "name": "X"})
    assert found(core_validator, other_type) == [("error", "invalid", ("Bundle.entry[0].resource",))]
    included = searchset(patient(id="1"), {"resourceType": "Organization", "id": "o", "name": "X"})
    included["entry"][1]["search"] = {"mode": "include"}
    assert found(core_validator, included) == []


def observation(subject: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": subject}}


def test_urn_references_resolve_inside_a_transaction(core_validator: Validator) -> None:
    def transaction(subject: str) -> dict[str, Any]:
        return collection(
            {"fullUrl": PATIENT_URN, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": ORG_URN, "resource": observation(subject), "request": {"method": "POST", "url": "Observation"}},
            kind="transaction",
        )
    assert found(core_validator, transaction(PATIENT_URN)) == []
    assert found(core_validator, transaction("Patient/123")) == []  # a server id: resolved by the server
    missing = "urn:uuid:00000000-0000-4000-8000-000000000000"
    assert found(core_validator, transaction(missing)) == [
        ("error", "not-found", ("Bundle.entry[1].resource.subject.reference",))
    ]


def test_an_unresolved_urn_in_a_collection_is_a_warning(core_validator: Validator) -> None:
    bundle = collection({"fullUrl": ORG_URN, "resource": observation("urn:uuid:00000000-0000-4000-8000-000000000000")})
    assert found(core_validator, bundle) == [("warning", "not-found", ("Bundle.entry[0].resource.subject.reference",))]


def document(subject: str) -> dict[str, Any]:
    composition = {"resourceType": "Composition", "status": "final", "type": {"text": "consult note"},
                   "date": "2026-01-05", "title": "Second opinion", "author": [{"reference": PATIENT_URN}],
                   "subject": {"reference": subject}}
    return {"resourceType": "Bundle", "type": "document", "timestamp": "2026-01-05T10:00:00Z",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
            "entry": [
                {"fullUrl": "http://ehr.example/fhir/Composition/c1", "resource": composition | {"id": "c1"}},
                {"fullUrl": PATIENT_URN, "resource": patient()},
                {"fullUrl": "http://ehr.example/fhir/Patient/p1", "resource": patient(id="p1")},
            ]}


def test_a_documents_composition_references_resolve_inside_it(core_validator: Validator) -> None:
    assert found(core_validator, document("Patient/p1")) == []  # relative: against the Composition's base
    assert found(core_validator, document("http://ehr.example/fhir/Patient/p1")) == []
    assert found(core_validator, document("Patient/elsewhere")) == [
        ("error", "not-found", ("Bundle.entry[0].resource.subject.reference",))
    ]
