"""The pure parts of the pages: the review form built from a Questionnaire and turned into $decide Parameters,
calendar quarters and the report's charts, and the worklist's filters with their counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from fhir_server.errors import FhirError
from fhir_server.ui.report_view import Quarter, charts, parse_quarter, quarters_offered
from fhir_server.ui.review_form import decide_parameters, review_form
from fhir_server.ui.worklist import WorklistRow, worklist

QUESTIONNAIRE = {
    "resourceType": "Questionnaire", "title": "Review", "status": "active",
    "item": [
        {"linkId": "determination", "text": "Determination", "type": "choice", "required": True, "answerOption": [
            {"valueCoding": {"code": "approve", "display": "Approve"}},
            {"valueCoding": {"code": "deny", "display": "Deny"}}]},
        {"linkId": "note", "text": "Only shown", "type": "display"},
        {"linkId": "findings", "text": "Findings", "type": "text", "required": True},
        {"linkId": "recommendation", "text": "Recommendation", "type": "string"},
    ],
}


def test_the_form_follows_the_questionnaire():
    form = review_form(QUESTIONNAIRE)
    names = [field.name for field in form.fields]
    assert names == ["decision", "findings", "recommendation", "assignedProvider", "consultativeReviewer"]
    decision = form.fields[0]
    assert decision.kind == "choice" and decision.required and [o.label for o in decision.options] == ["Approve", "Deny"]
    assert [f.kind for f in form.fields[1:3]] == ["text", "string"]
    changed = {**QUESTIONNAIRE, "item": [*QUESTIONNAIRE["item"], {"linkId": "urgency", "text": "Urgency", "type": "string"}]}
    assert "urgency" in [field.name for field in review_form(changed).fields]


def test_answers_become_decide_parameters_by_the_reviewer():
    parameters = decide_parameters(review_form(QUESTIONNAIRE), {
        "decision": "approve", "findings": "  Elective surgery.  ", "recommendation": "", "assignedProvider": "role-15",
        "consultativeReviewer": "Practitioner/pract-19", "csrf": "ignored"}, "Practitioner/pract-13")
    assert parameters == {"resourceType": "Parameters", "parameter": [
        {"name": "reviewer", "valueReference": {"reference": "Practitioner/pract-13"}},
        {"name": "decision", "valueCode": "approve"},
        {"name": "findings", "valueString": "Elective surgery."},
        {"name": "assignedProvider", "valueReference": {"reference": "PractitionerRole/role-15"}},
        {"name": "consultativeReviewer", "valueReference": {"reference": "Practitioner/pract-19"}},
    ]}


@pytest.mark.parametrize(("code", "start", "end"), [
    ("2028-Q1", date(2028, 1, 1), date(2028, 3, 31)),
    ("2030-Q2", date(2030, 4, 1), date(2030, 6, 30)),
    ("2030-Q4", date(2030, 10, 1), date(2030, 12, 31)),
])
def test_quarters_are_calendar_quarters(code, start, end):
    quarter = parse_quarter(code, datetime(2030, 5, 1, tzinfo=timezone.utc))
    assert (quarter.period.start, quarter.period.end) == (start, end)
    assert quarter.code == code


def test_the_current_quarter_comes_from_the_clock_and_earlier_ones_follow():
    now = datetime(2031, 1, 1, 0, 30, tzinfo=timezone.utc)
    assert parse_quarter(None, now) == Quarter(2031, 1)
    assert [q.code for q in quarters_offered(now)][:3] == ["2031-Q1", "2030-Q4", "2030-Q3"]
    with pytest.raises(FhirError):
        parse_quarter("2031-Q0", now)


def test_charts_group_the_rows_and_scale_the_bars():
    rows = [("total", "total", "A1", 4, 1), ("total", "total", "A3", 0, 0),
            ("group", "ipa-harbor", "A1", 3, 1), ("group", "ppg-valley", "A1", 1, 0)]
    total, group, overdue = charts(rows)
    assert [b.count for b in total.bars] == [4]  # empty rows stay in the table, not in the charts
    assert [(b.label, b.decision, b.percent, b.overdue) for b in group.bars] == [
        ("ipa-harbor", "Certified", 100, 1), ("ppg-valley", "Certified", 33, 0)]
    assert group.title == "Decisions by physician group"
    assert overdue.title == "Overdue decisions by physician group"
    assert [(b.label, b.count) for b in overdue.bars] == [("ipa-harbor", 1)]


def _row(task: str, status: str, group: str, due_in_hours: int) -> WorklistRow:
    due = datetime(2030, 3, 4, tzinfo=timezone.utc) + timedelta(hours=due_in_hours)
    return WorklistRow(task, "M", "207RC0000X", "Cardiology", "r", status, group, group.title(), "plan-a", "Plan A", due,
                       due_in_hours < 0, False)


def test_filters_count_what_the_other_filters_leave():
    rows = [_row("a", "physician-review", "harbor", -1), _row("b", "physician-review", "valley", 5),
            _row("c", "information-missing", "valley", 9)]
    listed = worklist(rows, {"group": "valley", "unknown": "x"})
    assert [r.task_id for r in listed.rows] == ["b", "c"] and listed.total_open == 3 and listed.overdue == 0
    facets = {facet.name: {o.code: (o.count, o.selected) for o in facet.options} for facet in listed.facets}
    assert facets["status"] == {"information-missing": (1, False), "physician-review": (1, False)}
    assert facets["group"] == {"harbor": (1, False), "valley": (2, True)}
    assert listed.chosen == {"group": "valley"}
    assert worklist(rows, {}).digest != listed.digest
