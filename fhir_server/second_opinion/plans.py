"""Plan rules as data: one YAML file per plan in ``mappings/plans/``, keyed by the Coverage.class plan value.

Adding a plan is adding a data file; the rules engine (:mod:`routing`) reads only these fields, never a plan
name. The shared specialty equivalences, the primary-care codes and business-day calendars live beside the
plans so two plans never disagree about what "Medical Oncology" is equivalent to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

from fhir_server.errors import error, unprocessable
from fhir_server.second_opinion.business_days import BusinessCalendar, calendar_from

# The situations a plan must map to an outcome (see routing.Situation), and the outcomes it may choose.
SITUATIONS = (
    "complete-qualifying",
    "other-reason",
    "nobody-qualified",
    "member-choice-not-qualified",
    "member-choice-out-of-network",
    "out-of-network-only",
)
OUTCOMES = frozenset({"certify", "physician-review", "member-services"})
# Who may have ServiceRequest.performer (the member's chosen professional) honoured: the member asking for
# themself (requester a Patient), or a provider asking for the member (a Practitioner or PractitionerRole).
REQUESTER_KINDS = frozenset({"member", "provider"})
CARE_KINDS = ("primary_care", "specialty_care")


@dataclass(frozen=True)
class DueTimes:
    calendar: BusinessCalendar
    routine_business_days: int
    expedited_hours: int
    legal_source: str


@dataclass(frozen=True)
class PlanRules:
    """Everything the engine needs to know about one plan (see the YAML files for the policy text)."""

    key: str
    display: str
    source: str
    qualifying_reasons: frozenset[str]
    third_opinion_covered: bool
    decisions: dict[str, str]  # situation -> outcome
    equivalent_specialties: bool
    board_certification_specialty_care: bool
    board_certification_primary_care: bool
    # The identifier value (any system) of the plan's expert-panel network Organization in the directory, if it
    # keeps one; no resource id, so the same plan file works on any payer's directory.
    expert_panel_identifier: str | None
    physician_groups_decide: bool
    plan_copy_endpoint: str | None  # settings (FHIR_PLAN_COPY_ENDPOINT__<PLAN>) take precedence
    authorization_number_prefix: str
    authorization_validity_days: int
    authorization_quantity: int
    due_times: DueTimes
    notes: dict[str, tuple[str, ...]]
    # The Practitioner.qualification codes (v2-0360 degrees) of a physician who may decide (90.2.17: "the Chief
    # Medical Officer or physician designee").
    reviewer_qualifications: frozenset[str] = frozenset({"MD", "DO"})
    # Kind of care (primary_care, specialty_care) -> the requester kinds whose chosen professional is honoured.
    member_choice: dict[str, frozenset[str]] = field(default_factory=dict)
    # The words of the notices, by ``<audience>.<decision>`` (member.certified, provider.denied,
    # consultant.certified, member.choice_set_aside, ...) plus consultation_report; placeholders: see notices.py.
    notices: dict[str, str] = field(default_factory=dict)
    plan_copy_max_attempts: int | None = None  # delivery attempts before a copy is parked (None: the setting)
    member_services_phone: str = ""
    # Reason code -> the plain words notices use for it (mappings/reasons.yaml, shared by every plan).
    reason_words: dict[str, str] = field(default_factory=dict)

    def outcome_for(self, situation: str) -> str:
        return self.decisions[situation]

    def board_certification_required(self, primary_care: bool) -> bool:
        return self.board_certification_primary_care if primary_care else self.board_certification_specialty_care

    def honours_choice(self, primary_care: bool, requested_by: str) -> bool:
        """Whether the professional the request names is the member's choice to route to, for this kind of care
        and requester (Health Net: "of the member's choice"; 90.2.17 6a: the enrollee making the request)."""
        return requested_by in self.member_choice.get(CARE_KINDS[0] if primary_care else CARE_KINDS[1], ())

    def notes_for(self, key: str) -> tuple[str, ...]:
        return self.notes.get(key, ())

    def notice_for(self, key: str) -> str | None:
        return self.notices.get(key)


@dataclass(frozen=True)
class AgeRange:
    """The member ages (whole years, both ends included; None: open) a primary-care specialty serves."""

    minimum: int | None = None
    maximum: int | None = None

    def admits(self, age: int) -> bool:
        return (self.minimum is None or age >= self.minimum) and (self.maximum is None or age <= self.maximum)


@dataclass(frozen=True)
class Specialties:
    """NUCC specialty knowledge shared by all plans."""

    equivalences: dict[str, frozenset[str]]  # symmetric closure
    primary_care_ages: dict[str, AgeRange]  # primary-care NUCC code -> the member ages it serves

    @property
    def primary_care(self) -> frozenset[str]:
        return frozenset(self.primary_care_ages)

    def equivalents_of(self, code: str) -> frozenset[str]:
        return self.equivalences.get(code, frozenset())

    def is_primary_care(self, code: str) -> bool:
        return code in self.primary_care_ages

    def primary_care_for(self, age: int | None) -> frozenset[str]:
        """The primary-care specialties appropriate to a member of ``age`` (every one when the age is unknown):
        an appropriately qualified PCP for a child is a pediatrician, for an adult an adult specialty."""
        if age is None:
            return self.primary_care
        return frozenset(code for code, ages in self.primary_care_ages.items() if ages.admits(age))


def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_calendar(mappings_dir: Path, name: str) -> BusinessCalendar:
    return calendar_from(_load_yaml(mappings_dir / "calendars" / f"{name}.yaml"))


def load_specialties(mappings_dir: Path) -> Specialties:
    data = _load_yaml(mappings_dir / "specialty-equivalences.yaml")
    pairs: dict[str, set[str]] = {}
    for code, equivalents in data["equivalences"].items():
        for other in equivalents:
            pairs.setdefault(code, set()).add(other)
            pairs.setdefault(other, set()).add(code)
    return Specialties(
        equivalences={code: frozenset(others) for code, others in pairs.items()},
        primary_care_ages={
            str(code): AgeRange((ages or {}).get("min_age"), (ages or {}).get("max_age"))
            for code, ages in data["primary_care"].items()
        },
    )


def _flatten(texts: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested notice texts as ``audience.decision`` keys."""
    for key, value in texts.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", str(value)


@lru_cache(maxsize=8)
def load_reason_words(mappings_dir: Path) -> dict[str, str]:
    path = mappings_dir / "reasons.yaml"
    return {str(k): str(v) for k, v in (_load_yaml(path)["plain_words"] if path.exists() else {}).items()}


def parse_plan(data: dict[str, Any], mappings_dir: Path) -> PlanRules:
    """Build and check one plan; a plan file missing a situation fails at load time, not mid-request."""
    decisions = dict(data["decisions"])
    missing = [s for s in SITUATIONS if s not in decisions]
    unknown = {o for o in decisions.values() if o not in OUTCOMES}
    if missing or unknown:
        raise ValueError(f"plan {data.get('key')}: situations without outcome {missing}, unknown outcomes {unknown}")
    member_choice = {kind: frozenset(data["member_choice"][kind] or ()) for kind in CARE_KINDS}
    unknown_requesters = set().union(*member_choice.values()) - REQUESTER_KINDS
    if unknown_requesters:
        raise ValueError(f"plan {data.get('key')}: unknown requester kinds in member_choice {unknown_requesters}")
    qualification = data["qualification"]
    board = qualification["board_certification"]
    due = data["due_times"]
    authorization = data["authorization"]
    return PlanRules(
        key=data["key"],
        display=data["display"],
        source=data["source"],
        qualifying_reasons=frozenset(data["qualifying_reasons"]),
        third_opinion_covered=bool(data["third_opinion_covered"]),
        decisions=decisions,
        equivalent_specialties=bool(qualification["equivalent_specialties"]),
        board_certification_specialty_care=bool(board["specialty_care"]),
        board_certification_primary_care=bool(board["primary_care"]),
        expert_panel_identifier=qualification.get("expert_panel_identifier"),
        reviewer_qualifications=frozenset(data["physician_review"]["reviewer_qualifications"]),
        physician_groups_decide=bool(data["delegation"]["physician_groups_decide"]),
        plan_copy_endpoint=data["delegation"].get("plan_copy_endpoint"),
        plan_copy_max_attempts=data["delegation"].get("plan_copy_max_attempts"),
        authorization_number_prefix=authorization["number_prefix"],
        authorization_validity_days=int(authorization["validity_days"]),
        authorization_quantity=int(authorization["quantity"]),
        due_times=DueTimes(
            calendar=load_calendar(mappings_dir, due["calendar"]),
            routine_business_days=int(due["routine_business_days"]),
            expedited_hours=int(due["expedited_hours"]),
            legal_source=due["legal_source"],
        ),
        notes={key: tuple(texts) for key, texts in data.get("notes", {}).items()},
        member_choice=member_choice,
        notices=dict(_flatten(data.get("notices") or {})),
        member_services_phone=str((data.get("member_services") or {}).get("phone", "")),
        reason_words=load_reason_words(mappings_dir),
    )


@dataclass(frozen=True)
class PlanCatalog:
    """All plans of a mappings directory plus the shared specialty knowledge."""

    plans: dict[str, PlanRules]
    specialties: Specialties

    def rules_for(self, plan_key: str | None, expression: str = "Coverage.class") -> PlanRules:
        """The rules of the plan a Coverage names; an unknown plan is a 422 naming ``expression``."""
        rules = self.plans.get(plan_key or "")
        if rules is None:
            raise unprocessable(
                [error("business-rule", f"Unknown health plan {plan_key!r}: no plan rules are defined for it", expression)]
            )
        return rules


@lru_cache(maxsize=8)
def load_catalog(mappings_dir: Path) -> PlanCatalog:
    """Read every ``plans/*.yaml`` once per directory (the files are static while the server runs)."""
    plans = {}
    for path in sorted((mappings_dir / "plans").glob("*.yaml")):
        rules = parse_plan(_load_yaml(path), mappings_dir)
        plans[rules.key] = rules
    return PlanCatalog(plans=plans, specialties=load_specialties(mappings_dir))
