"""Family 1: the FHIRPath invariants of the core definitions, each case a valid and an invalid twin from the spec."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.invariants import Invariant, InvariantEngine
from fhir_server.fhir.validator import Validator


def invariant_issues(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (issue.severity, issue.diagnostics.split(" ")[1], issue.expression)
        for issue in validator.validate(resource)
        if issue.code == "invariant"
    ]


TWINS = [
    pytest.param(  # per-1 on a Period inside Patient.name
        {"resourceType": "Patient", "name": [{"family": "A", "period": {"start": "2020-01-01", "end": "2021-01-01"}}]},
        {"resourceType": "Patient", "name": [{"family": "A", "period": {"start": "2021-01-01", "end": "2020-01-01"}}]},
        ("error", "per-1", ("Patient.name[0].period",)),
        id="per-1",
    ),
    pytest.param(  # pat-1 on a backbone element
        {"resourceType": "Patient", "contact": [{"name": {"family": "B"}}]},
        {"resourceType": "Patient", "contact": [{"gender": "male"}]},
        ("error", "pat-1", ("Patient.contact[0]",)),
        id="pat-1",
    ),
    pytest.param(  # qty-3 on a Quantity datatype
        {"resourceType": "Observation", "status": "final", "code": {"text": "w"},
         "valueQuantity": {"value": 70, "code": "kg", "system": "http://unitsofmeasure.org"}},
        {"resourceType": "Observation", "status": "final", "code": {"text": "w"},
         "valueQuantity": {"value": 70, "code": "kg"}},
        ("error", "qty-3", ("Observation.value",)),
        id="qty-3",
    ),
    pytest.param(  # org-1 on a resource root
        {"resourceType": "Organization", "name": "Valley Medical Group"},
        {"resourceType": "Organization", "active": True},
        ("error", "org-1", ("Organization",)),
        id="org-1",
    ),
    pytest.param(  # dom-2 on a contained resource that contains another
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o", "name": "X"}],
         "managingOrganization": {"reference": "#o"}},
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o", "name": "X",
                                                   "contained": [{"resourceType": "Organization", "name": "Y"}]}],
         "managingOrganization": {"reference": "#o"}},
        ("error", "dom-2", ("Patient",)),
        id="dom-2",
    ),
    pytest.param(  # dom-3 (checked natively: fhirpathpy cannot evaluate its expression)
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o", "name": "X"}],
         "managingOrganization": {"reference": "#o"}},
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o", "name": "X"}]},
        ("error", "dom-3", ("Patient.contained[0]",)),
        id="dom-3",
    ),
    pytest.param(  # que-7: "answer is Boolean" holds for a FHIR boolean, as in the reference engine
        {"resourceType": "Questionnaire", "status": "active", "item": [
            {"linkId": "a", "type": "boolean"},
            {"linkId": "b", "type": "string", "enableWhen": [{"question": "a", "operator": "exists",
                                                              "answerBoolean": True}]}]},
        {"resourceType": "Questionnaire", "status": "active", "item": [
            {"linkId": "a", "type": "boolean"},
            {"linkId": "b", "type": "string", "enableWhen": [{"question": "a", "operator": "exists",
                                                              "answerString": "yes"}]}]},
        ("error", "que-7", ("Questionnaire.item[1].enableWhen[0]",)),
        id="que-7",
    ),
    pytest.param(  # cpt-2: a contact point with a value needs a system
        {"resourceType": "Patient", "telecom": [{"system": "phone", "value": "555"}]},
        {"resourceType": "Patient", "telecom": [{"value": "555"}]},
        ("error", "cpt-2", ("Patient.telecom[0]",)),
        id="cpt-2",
    ),
]


@pytest.mark.parametrize(("valid", "invalid", "expected"), TWINS)
def test_invariant_twins(core_validator: Validator, valid: dict[str, Any], invalid: dict[str, Any],
                         expected: tuple[str, str, tuple[str, ...]]) -> None:
    assert invariant_issues(core_validator, valid) == []
    assert invariant_issues(core_validator, invalid) == [expected]
    assert any(issue.is_error for issue in core_validator.validate(invalid))


def test_warning_invariants_are_warnings_and_do_not_fail(core_validator: Validator) -> None:
    """spd-0 (a SearchParameter ``name`` should be usable as an identifier) has severity warning in the core."""
    parameter = {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/x",
                 "name": "Network", "status": "active", "description": "d", "code": "network", "base": ["Patient"],
                 "type": "token", "expression": "Patient.id"}
    assert invariant_issues(core_validator, parameter) == []
    parameter["name"] = "network-of-plans"
    issues = core_validator.validate(parameter)
    assert [(i.severity, i.code) for i in issues] == [("warning", "invariant")]
    assert "spd-0" in issues[0].diagnostics and "identifier" in issues[0].diagnostics


def test_the_human_text_names_the_rule(core_validator: Validator) -> None:
    issues = core_validator.validate({"resourceType": "Patient", "contact": [{"gender": "male"}]})
    assert issues[0].diagnostics.startswith("Constraint pat-1 failed: SHALL at least contain a contact's details")


def test_an_expression_the_engine_cannot_evaluate_is_skipped_and_recorded() -> None:
    engine = InvariantEngine()
    broken = Invariant("x-1", "error", "broken", "name.noSuchFunction()", "http://example.org/sd")
    unparsable = Invariant("x-2", "error", "unparsable", "name.where((", "http://example.org/sd")
    assert engine.holds(broken, {"name": "a"}, "Patient", {}, {}) is True
    assert engine.holds(unparsable, {"name": "a"}, "Patient", {}, {}) is True
    assert set(engine.skipped) == {("http://example.org/sd", "x-1"), ("http://example.org/sd", "x-2")}


def test_the_empty_shortcut_gives_the_evaluated_answer() -> None:
    """A node without the children an expression reads answers as an empty node would: here ``false``."""
    engine = InvariantEngine()
    needs_name = Invariant("x-3", "error", "needs a name", "name.exists()", "http://example.org/sd")
    assert engine.holds(needs_name, {"gender": "male"}, "Patient.contact", {}, {}) is False
    assert engine.holds(needs_name, {"name": {"family": "B"}}, "Patient.contact", {}, {}) is True


def test_invariants_of_nested_resources_are_reported_at_their_path(core_validator: Validator) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:3c1d6b4e-8f00-4c7a-9a43-6e7b7e0d6a02", "resource": {"resourceType": "Organization"}}]}
    assert invariant_issues(core_validator, bundle) == [("error", "org-1", ("Bundle.entry[0].resource",))]
