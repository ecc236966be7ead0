"""The committees' quarterly report as a page (90.2.17 procedure 12: "Reports are generated from the system and
submitted to the UM/QM Committees on a quarterly basis ... to identify any provider trends"): the rows of
``$second-opinion-report`` for a chosen calendar quarter, grouped into one bar chart per stratifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from fhir_server.errors import bad_request
from fhir_server.second_opinion.reports import DECISIONS, ReportPeriod

QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
QUARTERS_OFFERED = 8  # the current quarter and the seven before it


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @property
    def code(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def label(self) -> str:
        return f"{self.year}, quarter {self.number} ({self.period.start:%b %d} to {self.period.end:%b %d})"

    @property
    def period(self) -> ReportPeriod:
        first_month = 3 * (self.number - 1) + 1
        start = date(self.year, first_month, 1)
        after = date(self.year + (self.number == 4), 1 if self.number == 4 else first_month + 3, 1)
        return ReportPeriod(start, date.fromordinal(after.toordinal() - 1))

    def previous(self) -> "Quarter":
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)


def quarter_of(day: date) -> Quarter:
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def parse_quarter(text: str | None, now: datetime) -> Quarter:
    """``YYYY-Qn``; none: the current quarter (by the server's clock)."""
    if not text:
        return quarter_of(now.date())
    match = QUARTER.match(text)
    if not match:
        raise bad_request("quarter is YYYY-Q1 to YYYY-Q4", "quarter")
    return Quarter(int(match.group(1)), int(match.group(2)))


def quarters_offered(now: datetime) -> list[Quarter]:
    quarters = [quarter_of(now.date())]
    while len(quarters) < QUARTERS_OFFERED:
        quarters.append(quarters[-1].previous())
    return quarters


@dataclass(frozen=True)
class Bar:
    label: str
    decision: str  # A1 | A3 | A4 in words
    count: int
    overdue: int
    percent: int  # of the chart's largest count (the bar's length)


@dataclass(frozen=True)
class Chart:
    name: str  # the stratifier
    title: str
    bars: list[Bar]


OVERDUE_BY = "group"  # the stratifier the overdue chart breaks down (who was late)
CHART_TITLES = {"total": "Decisions", "reason": "Decisions by reason", "tier": "Decisions by routing tier",
                "group": "Decisions by physician group", "plan": "Decisions by plan", "provider": "Decisions by provider"}


def charts(rows: list[tuple[str, str, str, int, int]]) -> list[Chart]:
    """One chart per stratifier of the report's rows (``stratifier, stratum, decision, count, overdue``), in the
    report's order; rows without cases are left out of the charts (the table keeps them)."""
    by_name: dict[str, list[tuple[str, str, int, int]]] = {}
    for name, stratum, decision, number, overdue in rows:
        by_name.setdefault(name, []).append((stratum, decision, number, overdue))
    result = [_chart(name, CHART_TITLES.get(name, f"Decisions by {name}"), items) for name, items in by_name.items()]
    late = [(stratum, decision, overdue, overdue) for stratum, decision, _, overdue in by_name.get(OVERDUE_BY, ())]
    result.append(_chart("overdue", "Overdue decisions by physician group", late))
    return result


def _chart(name: str, title: str, items: list[tuple[str, str, int, int]]) -> Chart:
    largest = max((number for _, _, number, _ in items), default=0) or 1
    bars = [Bar(stratum if name != "total" else "all", DECISIONS.get(decision, decision), number, overdue,
                round(100 * number / largest)) for stratum, decision, number, overdue in items if number]
    return Chart(name, title, bars)
