"""Family 7: QuestionnaireResponses against their Questionnaire (generic: any form the server hosts)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.fhir.definitions import core_registry
from fhir_server.fhir.terminology import core_terminology
from fhir_server.fhir.validator import Validator

FORM = "http://example.org/fhir/test/Questionnaire/review"
AGREE = {"system": "http://example.org/fhir/test/CodeSystem/agreement", "code": "agree"}
DIFFER = {"system": "http://example.org/fhir/test/CodeSystem/agreement", "code": "differ"}
QUESTIONNAIRE: dict[str, Any] = {
    "resourceType": "Questionnaire", "url": FORM, "status": "active",
    "item": [
        {"linkId": "findings", "type": "group", "text": "Findings", "required": True, "item": [
            {"linkId": "agreement", "type": "choice", "text": "Opinion", "required": True,
             "answerOption": [{"valueCoding": AGREE}, {"valueCoding": DIFFER}]},
            {"linkId": "difference", "type": "text", "text": "How it differs", "required": True,
             "enableWhen": [{"question": "agreement", "operator": "=", "answerCoding": DIFFER}]},
        ]},
        {"linkId": "hours", "type": "decimal", "text": "Hours spent"},
        {"linkId": "codes", "type": "string", "text": "Codes", "repeats": True},
    ],
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = core_registry().copy()
    registry.add_questionnaire(QUESTIONNAIRE)
    return Validator(registry, core_terminology())


def response(*items: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    answered = {"resourceType": "QuestionnaireResponse", "questionnaire": FORM, "status": status}
    return answered | {"item": list(items)} if items else answered


def findings(*answers: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": "findings", "item": list(answers)} if answers else {"linkId": "findings"}


def agreement(coding: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": "agreement", "answer": [{"valueCoding": coding}]}


def found(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in validator.validate(resource) if i.is_error]


def test_a_complete_response(validator: Validator) -> None:
    assert validator.validate(response(findings(agreement(AGREE)), {"linkId": "hours", "answer": [
        {"valueDecimal": 1.5}]})) == []
    differing = response(findings(agreement(DIFFER), {"linkId": "difference", "answer": [{"valueString": "x"}]}))
    assert validator.validate(differing) == []


def test_unknown_and_misplaced_link_ids(validator: Validator) -> None:
    assert found(validator, response(findings(agreement(AGREE)), {"linkId": "nope"})) == [
        ("structure", ("QuestionnaireResponse.item[1].linkId",))
    ]
    misplaced = response(findings(agreement(AGREE)), agreement(AGREE))  # agreement belongs inside findings
    assert found(validator, misplaced) == [("structure", ("QuestionnaireResponse.item[1].linkId",))]


def test_answer_types_and_options(validator: Validator) -> None:
    wrong_type = response(findings(agreement(AGREE)), {"linkId": "hours", "answer": [{"valueString": "1.5"}]})
    assert found(validator, wrong_type) == [("value", ("QuestionnaireResponse.item[1].answer[0].value",))]
    not_an_option = response(findings(agreement({"system": AGREE["system"], "code": "maybe"})))
    assert found(validator, not_an_option) == [
        ("value", ("QuestionnaireResponse.item[0].item[0].answer[0].value",))
    ]


def test_repeats(validator: Validator) -> None:
    repeating = response(findings(agreement(AGREE)), {"linkId": "codes", "answer": [{"valueString": "a"},
                                                                                     {"valueString": "b"}]})
    assert found(validator, repeating) == []
    twice = response(findings(agreement(AGREE)), {"linkId": "hours", "answer": [{"valueDecimal": 1},
                                                                                {"valueDecimal": 2}]})
    assert found(validator, twice) == [("structure", ("QuestionnaireResponse.item[1].answer",))]


def test_required_items_of_a_completed_response(validator: Validator) -> None:
    assert found(validator, response(findings())) == [("required", ("QuestionnaireResponse.item[0]",))]
    assert found(validator, response()) == [("required", ("QuestionnaireResponse",))]
    assert found(validator, response(status="in-progress")) == []  # work in progress may be partial


def test_enable_when(validator: Validator) -> None:
    # "difference" is required only when the opinion differs ...
    assert found(validator, response(findings(agreement(DIFFER)))) == [
        ("required", ("QuestionnaireResponse.item[0]",))
    ]
    # ... and must not be answered when it agrees.
    answered = response(findings(agreement(AGREE), {"linkId": "difference", "answer": [{"valueString": "x"}]}))
    assert found(validator, answered) == [("business-rule", ("QuestionnaireResponse.item[0].item[1]",))]


def test_a_group_has_no_answers(validator: Validator) -> None:
    group = findings() | {"answer": [{"valueString": "x"}]}
    assert found(validator, response(group)) == [
        ("structure", ("QuestionnaireResponse.item[0].answer",)),
        ("required", ("QuestionnaireResponse.item[0]",)),  # and its question is not answered
    ]


def test_a_response_to_an_unknown_questionnaire_is_left_alone(validator: Validator) -> None:
    unknown = response({"linkId": "anything", "answer": [{"valueString": "x"}]})
    unknown["questionnaire"] = "http://example.org/fhir/other/Questionnaire/unknown"
    assert found(validator, unknown) == []


def test_a_contained_questionnaire(core_validator: Validator) -> None:
    contained = copy.deepcopy(QUESTIONNAIRE) | {"id": "form"}
    del contained["url"]
    answered = response(findings(agreement(AGREE))) | {"questionnaire": "#form", "contained": [contained]}
    assert found(core_validator, answered) == []
    answered["item"].append({"linkId": "nope"})
    assert found(core_validator, answered) == [("structure", ("QuestionnaireResponse.item[1].linkId",))]


def test_enable_when_names_an_item_of_the_questionnaire(validator: Validator) -> None:
    assert found(validator, QUESTIONNAIRE) == []
    broken = copy.deepcopy(QUESTIONNAIRE)
    broken["item"][0]["item"][1]["enableWhen"][0]["question"] = "nope"
    assert found(validator, broken) == [("invalid", ("Questionnaire.item[0].item[1].enableWhen[0].question",))]


def test_a_response_breaking_its_form_is_a_profile_failure(validator: Validator) -> None:
    """Valid FHIR that does not fit its form: reported by the profile pass (422), not the structure pass (400)."""
    broken = response(findings(agreement(AGREE)), {"linkId": "nope"})
    assert validator.validate_structure(broken) == []
    assert [(i.code, i.expression) for i in validator.validate_profiles(broken)] == [
        ("structure", ("QuestionnaireResponse.item[1].linkId",))
    ]
