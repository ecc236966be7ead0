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


# -- shortcuts: what the engine is spared must not change a verdict -------------------------------------------------

CON_4 = ("abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
         "condition-clinical' and (code='resolved' or code='remission' or code='inactive')).exists()")
CON_5 = ("verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and "
         "code='entered-in-error').empty() or clinicalStatus.empty()")
NATIVE_CASES = [
    # (expression, node path, node): every shape member navigation can meet
    ("value.empty() or system.exists()", "ContactPoint", {"value": "1", "system": "phone"}),
    ("value.empty() or system.exists()", "ContactPoint", {"value": "1"}),
    ("value.empty() or system.exists()", "ContactPoint", {"_value": {"extension": []}, "use": "home"}),
    ("value.empty() or system.exists()", "ContactPoint", {"_value": {"id": "a"}}),
    ("value.empty() or system.exists()", "ContactPoint", {"value": None, "_system": {"id": "s"}}),
    ("value.empty() or system.exists()", "ContactPoint", {"value": [], "system": "x"}),
    ("value.empty() or system.exists()", "ContactPoint", {"value": [None]}),
    ("value.empty() or system.exists()", "ContactPoint", {"valueX": "1"}),
    ("dataAbsentReason.empty() or value.empty()", "Observation", {"valueQuantity": {"value": 1},
                                                                  "dataAbsentReason": {"text": "x"}}),
    ("dataAbsentReason.empty() or value.empty()", "Observation", {"valueString": "a"}),
    ("dataAbsentReason.empty() or value.empty()", "Observation", {"_valueString": {"id": "v"},
                                                                  "dataAbsentReason": {"text": "x"}}),
    ("dataAbsentReason.empty() or value.empty()", "Observation", {"value": 1, "dataAbsentReason": {"text": "x"}}),
    ("dataAbsentReason.empty() or value.empty()", "Observation.component", {"valueBoolean": False,
                                                                            "dataAbsentReason": {"text": "x"}}),
    ("low.exists() or high.exists() or text.exists()", "Observation.referenceRange", {"appliesTo": [{"text": "a"}]}),
    ("low.exists() or high.exists() or text.exists()", "Observation.referenceRange", {"high": {"value": 0}}),
    ("concept.empty() or filter.empty()", "ValueSet.compose.include", {"concept": [{"code": "a"}],
                                                                       "filter": [{"op": "="}]}),
    ("concept.empty() or filter.empty()", "ValueSet.compose.include", {"filter": [{"op": "="}]}),
    ("name.exists() and telecom.exists()", "Patient.contact", {"name": {"family": "A"}, "telecom": [{}]}),
    ("name.exists() and telecom.exists()", "Patient.contact", {"name": {"family": "A"}}),
    (CON_4, "Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/a"}}),
    (CON_4, "Condition", {"resourceType": "Condition", "abatementString": "x"}),
    (CON_4, "Condition", {"resourceType": "Condition", "abatementString": "x", "clinicalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}}),
    (CON_5, "Condition", {"resourceType": "Condition", "clinicalStatus": {"text": "x"}}),
    (CON_5, "Condition", {"resourceType": "Condition", "verificationStatus": {"text": "x"},
                          "clinicalStatus": {"text": "x"}}),
    (CON_5, "Condition", {"resourceType": "Condition", "clinicalStatus": {"text": "x"}, "verificationStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error"}]}}),
    ("start.hasValue().not() or end.hasValue().not() or (start <= end)", "Period", {"start": "2021"}),
    ("start.hasValue().not() or end.hasValue().not() or (start <= end)", "Period", {"end": "2020"}),
    ("start.hasValue().not() or end.hasValue().not() or (start <= end)", "Period", {"start": "2021", "end": "2020"}),
    ("start.hasValue().not() or end.hasValue().not() or (start <= end)", "Period",
     {"_start": {"extension": [{"url": "u", "valueString": "x"}]}, "end": "2020"}),
]


@pytest.mark.parametrize("expression, path, node", NATIVE_CASES)
def test_native_checks_agree_with_the_engine(expression: str, path: str, node: dict[str, Any]) -> None:
    """An invariant answered without fhirpathpy (existence checks, an open-ended Period) answers as fhirpathpy
    does, including on primitives known only by their extensions, choice elements, nulls and empty arrays."""
    invariant = Invariant("x-4", "error", "native", expression, "http://example.org/sd")
    engine = InvariantEngine()
    assert engine.holds(invariant, node, path, {}, {}) is engine._evaluate(invariant, node, path, {}, {})


def test_an_expression_outside_the_native_forms_goes_to_the_engine() -> None:
    from fhir_server.fhir.invariants import native_check

    assert native_check("value.empty() or system.exists()") is not None
    assert native_check("name.exists() and telecom.exists()") is not None
    mixed = native_check("a.exists() or b.exists() and c.exists()")  # a or (b and c): only "a" decides alone
    assert mixed is not None and mixed({"a": 1}, "X") is True and mixed({"b": 1, "c": 1}, "X") is None
    assert native_check("contained.meta.versionId.empty()") is None  # a path, not a child
    assert native_check("start.hasValue().not() or (start <= end)") is None
    assert native_check("a.empty() or b implies c") is None  # (a or b) implies c: not a disjunction
    assert native_check("a.empty() or b xor c") is None
    assert native_check("a.first().empty() or b = 1") is None  # first() is not a plain step
    assert native_check(CON_4) is not None and native_check(CON_5) is not None


def test_only_first_steps_decide_whether_a_node_is_read_as_empty() -> None:
    from fhir_server.fhir.invariants import root_names

    assert root_names("contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()") == {
        "contained", "and"}
    assert "system" in root_names("coding.where(system = 'http://x').exists()")
    assert root_names("%resource.contained.empty()") is None
    # a type name in first position reads the node itself: every name counts
    assert "component" in root_names("Observation.component.exists()")
    dom4 = Invariant("dom-4", "error", "", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
                     "http://example.org/sd")
    engine = InvariantEngine()
    with_meta = {"resourceType": "Patient", "meta": {"versionId": "1"}}
    assert engine.holds(dom4, with_meta, "Patient", with_meta, with_meta) is True
    contained = {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "meta": {"versionId": "1"}}]}
    assert engine.holds(dom4, contained, "Patient", contained, contained) is False


def test_shortcuts_agree_with_the_engine_over_the_examples(core_validator: Validator) -> None:
    """Every invariant verdict over the official examples, with the shortcuts, is the engine's own."""
    import json
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "data" / "r4-examples"
    engine = core_validator.invariants
    disagreements = []
    original = InvariantEngine.holds

    def checked(self: InvariantEngine, invariant: Invariant, node: Any, path: str, resource: Any, root: Any) -> bool:
        verdict = original(self, invariant, node, path, resource, root)
        if verdict is not self._evaluate(invariant, node, path, resource, root):
            disagreements.append((invariant.key, path))
        return verdict

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(InvariantEngine, "holds", checked)
        for example in sorted(examples.glob("*.json")):
            core_validator.validate(json.loads(example.read_text(encoding="utf-8")))
    assert engine is core_validator.invariants and disagreements == []
