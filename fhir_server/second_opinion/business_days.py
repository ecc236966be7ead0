"""The business-day calendar of decision due times, computed by rule for any year the rules cover.

California state holidays (as the plan data names them) are written as rules, not dates: a fixed date
(Independence Day, 4 July), the nth weekday of a month (Labor Day, the first Monday of September; ``nth: -1`` the
last one: Memorial Day), an offset from such a day (the day after Thanksgiving), and what happens when a holiday
falls on a weekend day (``observed``: Saturday's is kept on Friday, Sunday's on Monday). So the calendar never
"runs out" at the end of a list; but the rules hold only for the years the data says (``years``): a day outside
them is an error (422), never silently a business day.
"""

from __future__ import annotations

import calendar as weekdays_of_month
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from fhir_server.errors import error, unprocessable

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class HolidayRule:
    """One holiday: a fixed ``month``/``day``, or the ``nth`` ``weekday`` of ``month`` (negative: from the end),
    shifted by ``offset_days``."""

    name: str
    month: int
    day: int | None = None
    weekday: int | None = None  # date.weekday() number
    nth: int | None = None
    offset_days: int = 0

    def date_in(self, year: int) -> date:
        if self.day is not None:
            return date(year, self.month, self.day) + timedelta(days=self.offset_days)
        assert self.weekday is not None and self.nth is not None
        days = [
            week[self.weekday]
            for week in weekdays_of_month.monthcalendar(year, self.month)
            if week[self.weekday]
        ]
        return date(year, self.month, days[self.nth - 1 if self.nth > 0 else self.nth]) + timedelta(days=self.offset_days)


def holiday_rule(data: Mapping[str, Any]) -> HolidayRule:
    """A rule from its data; one with neither a day nor a weekday and ``nth`` is refused at load time."""
    has_day = data.get("day") is not None
    has_weekday = data.get("weekday") is not None and data.get("nth") not in (None, 0)
    if has_day == has_weekday:
        raise ValueError(f"holiday {data.get('name')!r}: give either day, or weekday and nth")
    return HolidayRule(
        name=str(data["name"]),
        month=int(data["month"]),
        day=int(data["day"]) if has_day else None,
        weekday=WEEKDAYS.index(data["weekday"]) if has_weekday else None,
        nth=int(data["nth"]) if has_weekday else None,
        offset_days=int(data.get("offset_days", 0)),
    )


@dataclass(frozen=True)
class BusinessCalendar:
    """Which local days count as business days, for "5 business days" due times."""

    time_zone: str
    weekend_days: frozenset[int]  # date.weekday() numbers
    rules: tuple[HolidayRule, ...] = ()
    observed: tuple[tuple[int, int], ...] = ()  # (weekday a holiday falls on, weekday it is kept on)
    first_year: int = 1
    last_year: int = 9999

    def holidays(self, year: int) -> dict[date, str]:
        """The holidays kept in ``year`` (a neighbouring year's holiday observed in this one included: New
        Year's Day on a Saturday is kept on the Friday before)."""
        self._check_year(year)
        return dict(_holidays(self, year))

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend_days and day not in self.holidays(day.year)

    def local_date(self, moment: datetime) -> date:
        """The plan's calendar day of an instant (an evening request in California is not tomorrow's in UTC)."""
        return moment.astimezone(ZoneInfo(self.time_zone)).date()

    def _check_year(self, year: int) -> None:
        if not self.first_year <= year <= self.last_year:
            raise unprocessable([error(
                "business-rule",
                f"The business-day calendar covers {self.first_year}-{self.last_year}; it cannot say whether a day "
                f"of {year} is a business day",
                "Task.restriction.period.end",
            )])


@lru_cache(maxsize=256)
def _holidays(calendar: BusinessCalendar, year: int) -> tuple[tuple[date, str], ...]:
    shifts = dict(calendar.observed)
    kept: dict[date, str] = {}
    for rule_year in (year - 1, year, year + 1):
        for rule in calendar.rules:
            actual = rule.date_in(rule_year)
            if actual.weekday() in shifts:
                shift = (shifts[actual.weekday()] - actual.weekday() + 3) % 7 - 3  # nearest: Sat->Fri -1, Sun->Mon +1
                kept[actual + timedelta(days=shift)] = f"{rule.name} (observed)"
            else:
                kept[actual] = rule.name
    return tuple(sorted((day, name) for day, name in kept.items() if day.year == year))


def calendar_from(data: Mapping[str, Any]) -> BusinessCalendar:
    """A calendar from its mappings file (see ``mappings/calendars/``)."""
    years = data.get("years") or {}
    return BusinessCalendar(
        time_zone=data["time_zone"],
        weekend_days=frozenset(WEEKDAYS.index(day) for day in data["weekend"]),
        rules=tuple(holiday_rule(h) for h in data.get("holidays", ())),
        observed=tuple((WEEKDAYS.index(a), WEEKDAYS.index(b)) for a, b in (data.get("observed") or {}).items()),
        first_year=int(years.get("first", 1)),
        last_year=int(years.get("last", 9999)),
    )
