"""The committees' report of second-opinion decisions (90.2.17 procedures 11-12): ``$second-opinion-report``.

Procedure 11 codes every approval and denial by category; procedure 12 reports them quarterly to the UM/QM
Committees "to identify any provider trends and potential quality issues". The categories are the decision tags
the domain writes on every ClaimResponse (:mod:`categories`), so the report reads them through the backend-neutral
search interface and never opens a resource body it does not need.

What is counted, and when:

- One row per case: the *current* version of each tagged ClaimResponse (a physician's decision replaces the
  pended answer, so a case is counted once, by its latest decision).
- The period filters on the decision time, ``ClaimResponse.created``: every writer of a decision (``$submit``, a
  resubmission, ``$decide``) sets it to the moment of that decision, and nothing else changes it, whereas
  ``Task.lastModified`` moves again when a consultation report arrives. A pended case (A4) is counted in the
  period in which it was (last) pended. Period days are the days of the plan's time zone (its business calendar's:
  a decision at 20:00 Pacific on 31 December is in that year's fourth quarter), ``start`` and ``end`` both
  inclusive; a case of a plan this server has no rules for is dated in UTC.
- Procedure 12's "provider trends": besides reason, tier, group and plan, each decision group is stratified by the
  requesting provider (``requester``: ``ClaimResponse.requestor``, ``member`` when the member asked) and by the
  consultant authorized (``consultant``, ``none`` while nobody is).
- Overdue cases are counted apart, in a population of their own in each decision group: a decision made after
  its due time (``Task.restriction.period.end``), or a case still pended (A4) whose due time has passed when the
  report is made. The due time lives on the Task, found by the member (``Task?patient=``, in batches) and
  matched on ``Task.output`` naming the ClaimResponse.

The MeasureReport is the one result; its CSV form is derived from it (:func:`report_rows`), so the two can
never disagree.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from fhir_server.errors import Issue, FhirError, error
from fhir_server.search.index import date_range
from fhir_server.search.query import parse_search
from fhir_server.second_opinion.authorization import authorized_provider_of
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.categories import DIMENSION_SYSTEMS, tag_value
from fhir_server.second_opinion.codes import CANON, TASK_PROFILE, X12_REVIEW_ACTION_SYSTEM
from fhir_server.second_opinion.references import SEARCH_PAGE_SIZE, search_every
from fhir_server.second_opinion.workflow import instant
from fhir_server.storage.base import ResourceOperations

REPORT_MEASURE = f"{CANON}/Measure/second-opinion-decisions"
REPORT_OPERATION = f"{CANON}/OperationDefinition/second-opinion-report"

# The decisions reported (X12 306), each a group of the MeasureReport, in this order.
DECISIONS: dict[str, str] = {"A1": "Certified", "A3": "Not certified", "A4": "Pended"}
# The stratifiers, in this order: report dimensions of categories.py (the decision is the group itself), then the
# providers (procedure 12 "provider trends"), whose strata are references rather than codes.
TAG_STRATIFIERS: tuple[str, ...] = ("reason", "tier", "group", "plan")
PROVIDER_STRATIFIERS: tuple[str, ...] = ("requester", "consultant")
STRATIFIERS: tuple[str, ...] = TAG_STRATIFIERS + PROVIDER_STRATIFIERS
# The widest offset of a local day from UTC: the store is asked for this much more on each side, and each case is
# then kept or left by its plan's local day.
ZONE_MARGIN = timedelta(days=1)
INITIAL_POPULATION = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": "initial-population"}]
}
OVERDUE_POPULATION = {"text": "overdue"}
CSV_HEADER = ("stratifier", "stratum", "decision", "count", "overdue")
TOTAL = "total"  # stratifier and stratum of the CSV rows that give a decision group's totals

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # a full date: a month or a dateTime is not a report day
PATIENTS_PER_TASK_SEARCH = 100  # members ORed in one Task search


# ---------------------------------------------------------------------------------------------------------------
# The period


@dataclass(frozen=True)
class ReportPeriod:
    start: date
    end: date  # inclusive

    @classmethod
    def parse(cls, start: str | None, end: str | None, where: str = "") -> "ReportPeriod":
        """Both days as ``YYYY-MM-DD``; every problem is named at once (400). ``where`` prefixes expressions."""
        issues: list[Issue] = []
        days = {name: _day(name, value, where, issues) for name, value in (("start", start), ("end", end))}
        first, last = days["start"], days["end"]
        if first and last and last < first:
            issues.append(error("invalid", f"end {last} is before start {first}", f"{where}end"))
        if issues:
            raise FhirError(issues, 400)
        assert first is not None and last is not None
        return cls(first, last)


def _day(name: str, value: str | None, where: str, issues: list[Issue]) -> date | None:
    if not value:
        issues.append(error("required", f"parameter {name!r} is required (YYYY-MM-DD)", f"{where}{name}"))
        return None
    try:
        if not DAY_PATTERN.match(value) or value == date.max.isoformat():  # the period's end + 1 day must exist
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        diagnostics = f"parameter {name!r} must be a date YYYY-MM-DD, not {value!r}"
        issues.append(error("invalid", diagnostics, f"{where}{name}"))
        return None


# ---------------------------------------------------------------------------------------------------------------
# Reading the decisions of a period from the store


@dataclass(frozen=True)
class ReportedDecision:
    """One case as the report counts it."""

    decision: str  # A1 | A3 | A4
    strata: dict[str, str]  # stratifier -> code (``none`` when the tag is absent)
    overdue: bool


async def search_all(
    ops: ResourceOperations, resource_type: str, params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Every current resource matching a query string, page by page (:func:`references.search_every`)."""
    query = parse_search(resource_type, params, default_count=SEARCH_PAGE_SIZE, max_count=SEARCH_PAGE_SIZE, strict=True)
    return await search_every(ops, query)


def decision_query(period: ReportPeriod) -> list[tuple[str, str]]:
    """ClaimResponses carrying a reported decision tag and decided within the period's days in any time zone
    (a day either side; :func:`in_period` keeps each by its plan's local day)."""
    first = period.start - ZONE_MARGIN if period.start - date.min >= ZONE_MARGIN else date.min
    after = period.end + timedelta(days=1)
    after = after + ZONE_MARGIN if date.max - after >= ZONE_MARGIN else date.max
    return [
        ("_tag", ",".join(f"{X12_REVIEW_ACTION_SYSTEM}|{code}" for code in DECISIONS)),
        ("created", f"ge{first.isoformat()}"),
        ("created", f"lt{after.isoformat()}"),
    ]


def in_period(claim_response: dict[str, Any], period: ReportPeriod, time_zones: Mapping[str, str]) -> bool:
    """Whether the decision's day in its plan's time zone lies within the period (UTC for an unknown plan; a
    date-only ``created`` is that day wherever it was written)."""
    created = claim_response.get("created")
    decided = _moment(created)
    if decided is None:
        return False
    if DAY_PATTERN.match(str(created)):
        return period.start <= decided.date() <= period.end
    zone = time_zones.get(tag_value(claim_response.get("meta", {}).get("tag", []), "plan") or "", "UTC")
    return period.start <= decided.astimezone(ZoneInfo(zone)).date() <= period.end


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[index : index + size] for index in range(0, len(items), size))


async def due_times(ops: ResourceOperations, claim_responses: list[dict[str, Any]]) -> dict[str, datetime]:
    """``ClaimResponse/id`` -> the due time of the second-opinion Task whose output it is."""
    patients = sorted({r["patient"]["reference"] for r in claim_responses if r.get("patient", {}).get("reference")})
    due: dict[str, datetime] = {}
    for batch in _batches(patients, PATIENTS_PER_TASK_SEARCH):
        for task in await search_all(ops, "Task", [("_profile", TASK_PROFILE), ("patient", ",".join(batch))]):
            end = _moment(task.get("restriction", {}).get("period", {}).get("end"))
            if end is None:
                continue
            for output in task.get("output", ()):
                reference = output.get("valueReference", {}).get("reference", "")
                if reference.startswith("ClaimResponse/"):
                    due[reference] = end
    return due


def _moment(text: Any) -> datetime | None:
    """The start of a FHIR date/dateTime as an aware UTC instant (None when it is not one), so a client's
    ClaimResponse with a date-only ``created`` is compared like the domain's instants."""
    bounds = date_range(text) if isinstance(text, str) else None
    return datetime.fromisoformat(bounds[0].replace("Z", "+00:00")) if bounds else None


def is_overdue(decision: str, decided: datetime | None, due: datetime | None, now: datetime) -> bool:
    """Decided after the due time, or still pended (A4) with the due time passed at report time."""
    judged_at = now if decision == "A4" else decided
    return due is not None and judged_at is not None and judged_at > due


def reported_decision(claim_response: dict[str, Any], due: datetime | None, now: datetime) -> ReportedDecision:
    """How the report counts one ClaimResponse (its decision tag is there: the query asks for it)."""
    tags = claim_response.get("meta", {}).get("tag", [])
    decision = tag_value(tags, "decision") or ""
    providers = {
        "requester": (claim_response.get("requestor") or {}).get("reference") or "member",
        "consultant": authorized_provider_of(claim_response) or "none",
    }
    return ReportedDecision(
        decision=decision,
        strata={**{name: tag_value(tags, name) or "none" for name in TAG_STRATIFIERS}, **providers},
        overdue=is_overdue(decision, _moment(claim_response.get("created")), due, now),
    )


async def decisions_in(
    ops: ResourceOperations, period: ReportPeriod, now: datetime, time_zones: Mapping[str, str]
) -> list[ReportedDecision]:
    """The cases decided within ``period`` (each by its plan's local day) as the report counts them, judged
    overdue at ``now``."""
    found = await search_all(ops, "ClaimResponse", decision_query(period))
    claim_responses = [r for r in found if in_period(r, period, time_zones)]
    due = await due_times(ops, claim_responses)
    return [reported_decision(r, due.get(f"ClaimResponse/{r['id']}"), now) for r in claim_responses]


# ---------------------------------------------------------------------------------------------------------------
# The MeasureReport


@dataclass(frozen=True)
class Count:
    total: int = 0
    overdue: int = 0

    def populations(self) -> list[dict[str, Any]]:
        return [{"code": INITIAL_POPULATION, "count": self.total}, {"code": OVERDUE_POPULATION, "count": self.overdue}]


def count(decisions: Iterable[ReportedDecision]) -> Count:
    listed = list(decisions)
    return Count(len(listed), sum(1 for d in listed if d.overdue))


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding], "text": display or code}


def _stratifier(name: str, decisions: list[ReportedDecision], values: list[str]) -> dict[str, Any]:
    """One stratifier of one decision group: a stratum for every value seen in the period (zeros included), so
    each group lists the same strata and the CSV is a full table."""
    return {
        "code": [{"text": name}],
        "stratum": [
            {
                "value": _concept(DIMENSION_SYSTEMS[name], value) if name in DIMENSION_SYSTEMS else {"text": value},
                "population": count(d for d in decisions if d.strata[name] == value).populations(),
            }
            for value in values
        ],
    }


def build_measure_report(decisions: list[ReportedDecision], period: ReportPeriod, now: datetime) -> dict[str, Any]:
    """A summary MeasureReport of the Measure ``second-opinion-decisions``: a group per decision (A1, A3, A4),
    each with its count and overdue count, stratified by reason, routing tier, physician group and plan."""
    values = {name: sorted({d.strata[name] for d in decisions}) for name in STRATIFIERS}
    groups = []
    for code, display in DECISIONS.items():
        decided = [d for d in decisions if d.decision == code]
        groups.append(
            {
                "code": _concept(X12_REVIEW_ACTION_SYSTEM, code, display),
                "population": count(decided).populations(),
                "stratifier": [_stratifier(name, decided, values[name]) for name in STRATIFIERS],
            }
        )
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": REPORT_MEASURE,
        "date": instant(now),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "group": groups,
    }


async def second_opinion_report(
    ops: ResourceOperations, period: ReportPeriod, now: datetime, time_zones: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``$second-opinion-report``: the MeasureReport of the decisions made within ``period``; ``time_zones`` maps
    each plan key to the time zone its days are counted in (:func:`plan_time_zones`)."""
    return build_measure_report(await decisions_in(ops, period, now, time_zones or {}), period, now)


def plan_time_zones(catalog: PlanCatalog) -> dict[str, str]:
    """Plan key -> the time zone of its business calendar."""
    return {key: rules.due_times.calendar.time_zone for key, rules in catalog.plans.items()}


# ---------------------------------------------------------------------------------------------------------------
# The same table as CSV


def _counts(populations: list[dict[str, Any]]) -> tuple[int, int]:
    by_code = {p["code"].get("text") or p["code"]["coding"][0]["code"]: p["count"] for p in populations}
    return by_code["initial-population"], by_code[OVERDUE_POPULATION["text"]]


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str, int, int]]:
    """The MeasureReport as a table: per decision a ``total`` row, then one row per stratifier x stratum
    (``stratifier, stratum, decision, count, overdue``)."""
    rows: list[tuple[str, str, str, int, int]] = []
    for group in report["group"]:
        decision = group["code"]["coding"][0]["code"]
        rows.append((TOTAL, TOTAL, decision, *_counts(group["population"])))
        for stratifier in group.get("stratifier", ()):
            name = stratifier["code"][0]["text"]
            rows += [
                (name, _stratum_code(stratum["value"]), decision, *_counts(stratum["population"]))
                for stratum in stratifier.get("stratum", ())
            ]
    return rows


def _stratum_code(value: dict[str, Any]) -> str:
    """A stratum's code (a coded dimension) or text (a provider reference)."""
    codings = value.get("coding") or ()
    return codings[0]["code"] if codings else value.get("text", "")


def report_csv(report: dict[str, Any]) -> str:
    """RFC 4180 CSV (CRLF line ends) of :func:`report_rows` under a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(report_rows(report))
    return buffer.getvalue()
