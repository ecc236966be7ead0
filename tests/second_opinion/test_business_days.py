"""Business days by rule (Cal. Health & Safety Code §1367.01(h) via the plans' due_times: "5 business days" in the
California calendar of mappings/calendars/california.yaml), for any year the rules cover."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from fhir_server.errors import FhirError

from tests.second_opinion.helpers import post_submit, submission, submit_ok


@pytest.fixture
def california(catalog):
    return catalog.plans["health-net-commercial"].due_times.calendar


def test_nth_weekday_holidays_thanksgiving_and_the_day_after_in_any_year(california):
    """California state holidays as rules: MLK 3rd Monday of January, Memorial Day the last Monday of May, Labor
    Day the 1st Monday of September, Thanksgiving the 4th Thursday of November and the day after."""
    holidays = california.holidays(2033)
    assert {date(2033, 1, 17), date(2033, 2, 21), date(2033, 5, 30), date(2033, 9, 5)} <= set(holidays)
    assert holidays[date(2033, 11, 24)] == "Thanksgiving Day" and holidays[date(2033, 11, 25)] == "Day after Thanksgiving"
    assert not california.is_business_day(date(2031, 11, 28)) and california.is_business_day(date(2031, 11, 26))


def test_a_holiday_on_a_weekend_is_observed_on_the_nearest_weekday(california):
    """Observed rules of the calendar data: Independence Day 2032 is a Sunday, kept Monday 5 July; Christmas 2032
    a Saturday, kept Friday 24 December; New Year's Day 2028, a Saturday, is kept on Friday 31 December 2027."""
    assert not california.is_business_day(date(2032, 7, 5))
    assert not california.is_business_day(date(2032, 12, 24))
    assert not california.is_business_day(date(2027, 12, 31))
    assert california.is_business_day(date(2032, 7, 6))


def test_a_day_the_calendar_cannot_answer_is_an_error_not_a_business_day(california):
    """A date the calendar's rules do not cover is an error, never silently a business day."""
    with pytest.raises(FhirError) as raised:
        california.is_business_day(date(2101, 3, 1))
    assert raised.value.status == 422


def test_routine_due_time_skips_thanksgiving_of_a_year_no_list_named(client):
    """§1367.01(h), 5 business days: received Wednesday 27 November 2030, 09:00 Pacific; Thanksgiving (28th), the
    day after and the weekend are skipped: due Friday 6 December 2030, 09:00 Pacific (17:00 UTC)."""
    client.app.state.clock.freeze(datetime(2030, 11, 27, 17, 0, tzinfo=timezone.utc))
    answer = submit_ok(client, submission())
    assert answer.task["restriction"]["period"]["end"] == "2030-12-06T17:00:00Z"


def test_a_request_the_calendar_cannot_date_is_refused_not_guessed(client):
    """A receipt in a year outside the calendar's rules answers 422 (an OperationOutcome), never a 500 and never a
    due time counted as if every weekday were a business day."""
    client.app.state.clock.freeze(datetime(2101, 3, 1, 17, 0, tzinfo=timezone.utc))
    response = post_submit(client, submission())
    assert response.status_code == 422 and response.json()["resourceType"] == "OperationOutcome"
