"""Questionnaire and QuestionnaireResponse rules (R4 questionnaireresponse.html), for any questionnaire.

A Questionnaire's ``enableWhen`` must name one of its own questions (``que-*`` invariants cover the rest). A
QuestionnaireResponse is checked against the Questionnaire its ``questionnaire`` names, when the server holds
it (``profiles/``, or contained): every ``linkId`` exists and sits where the Questionnaire nests it; answers
have the item's type (and, for a choice with options, one of its options); an item that does not repeat has one
answer; groups and display items have none; an item disabled by ``enableWhen`` has none; and a ``completed`` (or
``amended``) response answers every required item that is enabled. A response to a questionnaire the server
does not hold is left alone: there is nothing to judge it by.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

from fhir_server.fhir.findings import Findings

CHOICE_ANSWERS = frozenset({"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime", "valueReference"})
# Questionnaire item type -> the QuestionnaireResponse answer value[x] it takes.
ANSWER_TYPES: dict[str, frozenset[str]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "choice": CHOICE_ANSWERS,
    "open-choice": CHOICE_ANSWERS,
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
    "quantity": frozenset({"valueQuantity"}),
}
WITHOUT_ANSWERS = frozenset({"group", "display"})
FINAL_STATUSES = frozenset({"completed", "amended"})
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}


def as_list(value: Any) -> list[Any]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def value_of(element: dict[str, Any]) -> tuple[str, Any] | None:
    """The ``value[x]`` (or ``answer[x]``) of an answer, option or condition: (JSON name, value)."""
    for key, value in element.items():
        for stem in ("value", "answer"):
            if key.startswith(stem) and key[len(stem):len(stem) + 1].isupper():
                return key, value
    return None


def comparable(value: Any) -> Any:
    """Codings compare by system and code; everything else by its JSON value."""
    if isinstance(value, dict):
        return (value.get("system"), value.get("code")) if "code" in value else tuple(sorted(value.items(), key=str))
    return value


def all_items(items: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every item of a Questionnaire item tree, or of a response's (through ``item`` and ``answer.item``)."""
    stack = list(items)
    while stack:
        item = stack.pop()
        yield item
        stack.extend(as_list(item.get("item")))
        for answer in as_list(item.get("answer")):
            stack.extend(as_list(answer.get("item")))


# -- the Questionnaire ----------------------------------------------------------------------------------------


def check_questionnaire(findings: Findings, questionnaire: dict[str, Any], expression: str) -> None:
    link_ids = {item.get("linkId") for item in all_items(as_list(questionnaire.get("item")))}

    def visit(items: list[dict[str, Any]], path: str) -> None:
        for position, item in enumerate(items):
            where = f"{path}.item[{position}]"
            for number, condition in enumerate(as_list(item.get("enableWhen"))):
                if condition.get("question") not in link_ids:
                    findings.fail("invalid", f"enableWhen names {condition.get('question')!r}, which is no item "
                                  "of this Questionnaire", f"{where}.enableWhen[{number}].question")
            visit(as_list(item.get("item")), where)

    visit(as_list(questionnaire.get("item")), expression)


# -- the response ----------------------------------------------------------------------------------------------


def questionnaire_of(findings: Findings, response: dict[str, Any]) -> dict[str, Any] | None:
    url = response.get("questionnaire")
    if not isinstance(url, str):
        return None
    if url.startswith("#"):
        return next((r for r in as_list(response.get("contained"))
                     if r.get("resourceType") == "Questionnaire" and r.get("id") == url[1:]), None)
    return findings.registry.questionnaire(url)


class _ResponseCheck:
    """One response against one Questionnaire."""

    def __init__(self, findings: Findings, questionnaire: dict[str, Any], response: dict[str, Any]) -> None:
        self.findings = findings
        self.final = response.get("status") in FINAL_STATUSES
        self.all_link_ids = {item.get("linkId") for item in all_items(as_list(questionnaire.get("item")))}
        self.answers: dict[str, list[Any]] = {}
        for item in all_items(as_list(response.get("item"))):
            for answer in as_list(item.get("answer")):
                found = value_of(answer)
                if found is not None:
                    self.answers.setdefault(item.get("linkId"), []).append(found[1])

    def enabled(self, question: dict[str, Any]) -> bool:
        conditions = as_list(question.get("enableWhen"))
        if not conditions:
            return True
        results = [self.condition_holds(condition) for condition in conditions]
        return all(results) if question.get("enableBehavior") == "all" else any(results)

    def condition_holds(self, condition: dict[str, Any]) -> bool:
        answers = self.answers.get(condition.get("question"), [])
        expected = value_of(condition)
        if expected is None:
            return True
        wanted = expected[1]
        if condition.get("operator") == "exists":
            return bool(answers) == bool(wanted)
        compare = COMPARISONS.get(condition.get("operator", ""))
        if compare is None:
            return True
        try:
            if condition["operator"] == "!=":
                return all(compare(comparable(a), comparable(wanted)) for a in answers)
            return any(compare(comparable(a), comparable(wanted)) for a in answers)
        except TypeError:
            return False  # answers of another type than the condition's: they do not meet it

    def items(self, questions: list[dict[str, Any]], items: list[dict[str, Any]], path: str, parent: str) -> None:
        """Check a response level (``items`` at ``path``) against the questions of the same Questionnaire level."""
        by_link = {question.get("linkId"): question for question in questions}
        present: dict[str, int] = {}
        for position, item in enumerate(items):
            where = f"{path}.item[{position}]"
            link_id = item.get("linkId")
            question = by_link.get(link_id)
            if question is None:
                place = f"under {parent!r}" if parent else "at the top level"
                text = (f"Item {link_id!r} is not {place} in the Questionnaire" if link_id in self.all_link_ids
                        else f"Item {link_id!r} is not in the Questionnaire")
                self.findings.fail("structure", text, where + ".linkId")
                continue
            present[link_id] = present.get(link_id, 0) + 1
            if present[link_id] > 1 and not question.get("repeats"):
                self.findings.fail("structure", f"Item {link_id!r} does not repeat", where)
            self.item(question, item, where)
        if self.final:
            for question in questions:
                if question.get("required") and question.get("linkId") not in present and self.enabled(question):
                    self.findings.fail("required", f"Required item {question.get('linkId')!r} is not answered",
                                       path)

    def item(self, question: dict[str, Any], item: dict[str, Any], where: str) -> None:
        kind = question.get("type")
        answers = as_list(item.get("answer"))
        children = as_list(question.get("item"))
        if answers and not self.enabled(question):
            self.findings.fail("business-rule", f"Item {question.get('linkId')!r} is disabled by its enableWhen and "
                               "must not be answered", where)
        if kind in WITHOUT_ANSWERS:
            if answers:
                self.findings.fail("structure", f"A {kind} item has no answers", where + ".answer")
        else:
            if len(answers) > 1 and not question.get("repeats"):
                self.findings.fail("structure", f"Item {question.get('linkId')!r} takes one answer", where + ".answer")
            if self.final and question.get("required") and not answers and self.enabled(question):
                self.findings.fail("required", f"Required item {question.get('linkId')!r} has no answer", where)
            for number, answer in enumerate(answers):
                self.answer(question, answer, f"{where}.answer[{number}]")
                self.items(children, as_list(answer.get("item")), f"{where}.answer[{number}]", question["linkId"])
        if as_list(item.get("item")) or (kind == "group" and children):
            self.items(children, as_list(item.get("item")), where, question.get("linkId", ""))

    def answer(self, question: dict[str, Any], answer: dict[str, Any], where: str) -> None:
        found = value_of(answer)
        allowed = ANSWER_TYPES.get(question.get("type", ""))
        if found is None or allowed is None:
            return
        key, value = found
        if key not in allowed:
            self.findings.fail("value", f"Item {question.get('linkId')!r} is a {question.get('type')}: "
                               f"{key} is not an answer to it", f"{where}.value")
            return
        options = [value_of(option) for option in as_list(question.get("answerOption"))]
        if question.get("type") == "choice" and options:
            if not any(o is not None and o[0] == key and comparable(o[1]) == comparable(value) for o in options):
                self.findings.fail("value", f"The answer to {question.get('linkId')!r} is not one of its options",
                                   f"{where}.value")


def check_response(findings: Findings, response: dict[str, Any], expression: str) -> None:
    questionnaire = questionnaire_of(findings, response)
    if questionnaire is None:
        return
    check = _ResponseCheck(findings, questionnaire, response)
    check.items(as_list(questionnaire.get("item")), as_list(response.get("item")), expression, "")
