"""Due times and missing information: the Task's clock and its inputs."""

from __future__ import annotations

from datetime import datetime, timezone

from fhir_server.second_opinion.completeness import Submission, missing_information
from fhir_server.second_opinion.workflow import due_time, is_expedited

UTC = timezone.utc


def test_expedited_is_72_hours_from_receipt(catalog):
    """Cal. Health & Safety Code §1367.01(h): an imminent and serious threat -> 72 hours from receipt."""
    due = catalog.plans["blue-shield-promise-cmc"].due_times
    received = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert due_time(received, True, due) == datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert [is_expedited(p) for p in ("routine", "urgent", "asap", "stat", None)] == [False, True, True, True, False]


def test_routine_skips_the_weekend_and_a_holiday(catalog):
    """5 business days from Friday 6 Nov 2026 10:00 in Los Angeles: the weekend and Veterans Day (Wed 11 Nov)
    do not count: Mon 9, Tue 10, Thu 12, Fri 13, Mon 16 -> Monday 16 Nov 10:00 PST."""
    due = catalog.plans["health-net-commercial"].due_times
    received = datetime(2026, 11, 6, 18, 0, tzinfo=UTC)  # 10:00 PST
    assert due_time(received, False, due) == datetime(2026, 11, 16, 18, 0, tzinfo=UTC)


def test_routine_keeps_the_local_time_across_the_daylight_saving_change(catalog):
    """Received Fri 30 Oct 2026 10:00 PDT; due Fri 6 Nov 10:00 PST (the clocks changed on 1 Nov)."""
    due = catalog.plans["health-net-commercial"].due_times
    assert due_time(datetime(2026, 10, 30, 17, 0, tzinfo=UTC), False, due) == datetime(2026, 11, 6, 18, 0, tzinfo=UTC)


def test_received_on_a_weekend_counts_from_the_next_business_day(catalog):
    due = catalog.plans["health-net-commercial"].due_times
    saturday = datetime(2026, 11, 7, 20, 0, tzinfo=UTC)  # Sat 12:00 PST
    assert due_time(saturday, False, due) == datetime(2026, 11, 16, 20, 0, tzinfo=UTC)  # Mon..Mon (skip Wed 11)


COMPLETE_PATIENT = {"name": [{"family": "Doe"}], "birthDate": "1950-01-01", "gender": "female"}
REQUEST = {"reasonReference": [{"reference": "Condition/1"}]}


def test_complete_request_misses_nothing():
    """Contract "Complete information": name, birth date, gender, subscriberId, clinical basis, the group."""
    submission = Submission(REQUEST, COMPLETE_PATIENT, {"subscriberId": "1"}, "Organization/ppg-valley")
    assert missing_information(submission) == []


def test_each_missing_item_is_named_by_its_fhirpath():
    """90.2.17 procedure 2: "completion of demographic and clinical information"."""
    submission = Submission({}, {"name": [{"family": "Doe"}]}, {}, None)
    assert [m.expression for m in missing_information(submission)] == [
        "Patient.birthDate",
        "Patient.gender",
        "Patient.generalPractitioner",
        "Coverage.subscriberId",
        "ServiceRequest.reasonReference | ServiceRequest.supportingInfo",
    ]


def test_a_third_opinion_needs_both_prior_opinions():
    """90.2.17 Third Opinion 1: the first and second opinions differ -> both must be supplied."""
    third = {"extension": [{"url": "http://example.org/fhir/second-opinion/StructureDefinition/opinion-sequence",
                            "valueCode": "third"}], "supportingInfo": [{"reference": "DiagnosticReport/1"}]}
    missing = missing_information(Submission(third, COMPLETE_PATIENT, {"subscriberId": "1"}, "Organization/g"))
    assert [m.expression for m in missing] == ["ServiceRequest.supportingInfo"]


def test_a_name_without_any_words_is_no_name():
    """Contract "Complete information": "the Patient has a name": a HumanName with only a use (or empty parts)
    names nobody, so it is asked for; a text alone or a given name alone does name the member."""
    for nameless in ([{"use": "official"}], [{"given": [""], "family": ""}]):
        patient = {**COMPLETE_PATIENT, "name": nameless}
        missing = missing_information(Submission(REQUEST, patient, {"subscriberId": "1"}, "Organization/g"))
        assert [m.expression for m in missing] == ["Patient.name"], nameless
    for named in ([{"text": "Maria Gonzalez"}], [{"given": ["Maria"]}]):
        patient = {**COMPLETE_PATIENT, "name": named}
        assert missing_information(Submission(REQUEST, patient, {"subscriberId": "1"}, "Organization/g")) == []
