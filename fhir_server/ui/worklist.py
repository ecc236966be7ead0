"""The worklist: the open second-opinion cases the signed-in person's organization may see, due first.

Policy 90.2.17 procedures 1-4: requests go to a case manager, who checks them for complete information (cases
pended for information), and complete ones go to the CMO or a physician designee (physician review), who may ask a
same-specialty physician first (consultative review). Each row says who the member is, what is asked, which
physician group and plan the case belongs to, when the decision is due, and whether that time has passed (on the
server's clock). Filters narrow the rows by status, group, specialty and plan; each option shows how many open cases
it would leave with the other filters kept (the usual faceted count).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from fhir_server.second_opinion.cases import is_second_opinion_task
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.codes import NUCC_SYSTEM, codes_in
from fhir_server.second_opinion.notices import business_status_of, concept_text, display_name
from fhir_server.second_opinion.reports import search_all
from fhir_server.second_opinion.workflow import is_expedited
from fhir_server.storage.base import ResourceOperations
from fhir_server.ui.reading import by_reference, reference_of
from fhir_server.ui.words import moment_of, status_label

OPEN_TASK_STATUSES = ("requested", "received", "accepted", "in-progress", "on-hold")
FILTERS = {"status": "Status", "group": "Physician group", "specialty": "Specialty", "plan": "Plan"}


@dataclass(frozen=True)
class WorklistRow:
    """One open case as the worklist shows it."""

    task_id: str
    member: str
    specialty_code: str  # NUCC code (or the words, for a request without one)
    specialty: str
    reason: str
    status: str  # businessStatus code
    group: str  # physician group Organization id ("none" when the member has none)
    group_name: str
    plan: str  # plan key
    plan_name: str
    due: datetime | None
    overdue: bool
    expedited: bool

    def value(self, dimension: str) -> str:
        """The row's code in one filter dimension."""
        return {"status": self.status, "group": self.group, "specialty": self.specialty_code, "plan": self.plan}[dimension]


@dataclass(frozen=True)
class FilterOption:
    code: str
    label: str
    count: int
    selected: bool


@dataclass(frozen=True)
class Facet:
    name: str  # the query parameter
    label: str
    options: list[FilterOption]


@dataclass(frozen=True)
class Worklist:
    rows: list[WorklistRow]
    total_open: int
    overdue: int
    facets: list[Facet]
    chosen: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """A short fingerprint of what the rows show: an open page asks again with it, and an unchanged list is
        not sent twice."""
        text = repr([(r.task_id, r.status, r.due, r.overdue) for r in self.rows]) + repr(sorted(self.chosen.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def specialty_code_of(service_request: Mapping[str, Any]) -> str:
    """The requested specialty's NUCC code (the words when the request has none)."""
    codes = codes_in([service_request.get("performerType")], NUCC_SYSTEM)
    return codes[0] if codes else specialty_of(service_request)


def specialty_of(service_request: Mapping[str, Any]) -> str:
    """The requested specialty in words (the NUCC coding's display, else its code)."""
    concept = service_request.get("performerType") or {}
    for coding in concept.get("coding", ()):
        if coding.get("system") == NUCC_SYSTEM:
            return coding.get("display") or concept.get("text") or coding.get("code") or "unknown"
    return concept_text(concept) or "unknown"


def _due(task: Mapping[str, Any]) -> datetime | None:
    return moment_of(((task.get("restriction") or {}).get("period") or {}).get("end"))


async def open_cases(ops: ResourceOperations, now: datetime, plan_names: Mapping[str, str]) -> list[WorklistRow]:
    """Every open second-opinion case visible to the caller, soonest due first (cases without a due time last);
    ``plan_names``: plan key -> the plan's name (from its data)."""
    tasks = [t for t in await search_all(ops, "Task", [("status", ",".join(OPEN_TASK_STATUSES))]) if is_second_opinion_task(t)]
    linked = await by_reference(ops, [reference_of(t.get(element)) for t in tasks for element in ("focus", "for")])
    groups = await by_reference(ops, [f"Organization/{tag_value(t.get('meta', {}).get('tag', []), 'group')}" for t in tasks])
    rows = []
    for task in tasks:
        request = linked.get(reference_of(task.get("focus")) or "", {})
        patient = linked.get(reference_of(task.get("for")) or "")
        tags = task.get("meta", {}).get("tag", [])
        group = tag_value(tags, "group") or "none"
        due = _due(task)
        rows.append(WorklistRow(
            task_id=task["id"],
            member=display_name(patient, "unknown member"),
            specialty_code=specialty_code_of(request),
            specialty=specialty_of(request),
            reason="; ".join(filter(None, (concept_text(c) for c in request.get("reasonCode", ())))) or "not given",
            status=business_status_of(task) or task.get("status", "unknown"),
            group=group,
            group_name=display_name(groups.get(f"Organization/{group}"), "no physician group" if group == "none" else group),
            plan=tag_value(tags, "plan") or "unknown",
            plan_name=plan_names.get(tag_value(tags, "plan") or "", tag_value(tags, "plan") or "unknown plan"),
            due=due,
            overdue=due is not None and due < now,
            expedited=is_expedited(request.get("priority")),
        ))
    return sorted(rows, key=lambda r: (r.due is None, r.due or now, r.task_id))


def _label(dimension: str, code: str, rows: list[WorklistRow]) -> str:
    if dimension == "status":
        return status_label(code)
    if dimension == "group":
        return next((r.group_name for r in rows if r.group == code), code)
    if dimension == "specialty":
        return next((r.specialty for r in rows if r.specialty_code == code), code)
    if dimension == "plan":
        return next((r.plan_name for r in rows if r.plan == code), code)
    return code


def worklist(rows: list[WorklistRow], chosen: Mapping[str, str]) -> Worklist:
    """The rows the chosen filters leave, and every filter's options with their counts."""
    chosen = {name: value for name, value in chosen.items() if name in FILTERS and value}

    def matches(row: WorklistRow, skip: str | None = None) -> bool:
        return all(row.value(name) == value for name, value in chosen.items() if name != skip)

    facets = []
    for name, label in FILTERS.items():
        others = [r for r in rows if matches(r, skip=name)]
        codes = sorted({r.value(name) for r in rows} | ({chosen[name]} if name in chosen else set()))
        options = [FilterOption(code, _label(name, code, rows), sum(r.value(name) == code for r in others),
                                chosen.get(name) == code) for code in codes]
        facets.append(Facet(name, label, sorted(options, key=lambda o: o.label.lower())))
    shown = [r for r in rows if matches(r)]
    return Worklist(shown, len(rows), sum(r.overdue for r in shown), facets, dict(chosen))
