"""Every professional routing considered for a case, and why each was or was not chosen: the routing result of the
case page (the engine itself answers only its choice).

The case's stored request is routed again with the same rules (:func:`routing.route`,
:func:`routing.disqualifications`, :func:`routing.ranked_candidates`) on the directory as it stands now: a directory
changed since the case was routed may give another answer, which the page says beside the stored proposal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.second_opinion.directory import Candidate, load_directory
from fhir_server.second_opinion.evaluation import member_group_of, plan_key_of, routing_request
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.routing import (
    RoutingDecision,
    acceptable_specialties,
    disqualifications,
    preference_words,
    ranked_candidates,
    route,
    tier_of,
)
from fhir_server.storage.base import ResourceOperations


@dataclass(frozen=True)
class Considered:
    """One professional (PractitionerRole) of an acceptable specialty, as routing judged them for the case."""

    candidate: Candidate
    tier: str  # group | network | out-of-network
    rank: int | None  # place among the qualified (1: routing's first preference); None: not qualified
    chosen: bool  # the professional routing chooses
    reasons: tuple[str, ...]  # why not qualified, or (qualified) what placed them where they are


@dataclass(frozen=True)
class RoutingResult:
    decision: RoutingDecision
    considered: list[Considered]

    @property
    def qualified(self) -> list[Considered]:
        return [c for c in self.considered if c.rank is not None]


async def routing_result(
    ops: ResourceOperations, service_request: dict[str, Any], patient: dict[str, Any] | None, catalog: PlanCatalog
) -> RoutingResult | None:
    """Route the request again and keep every candidate's verdict (None when its plan has no rules here)."""
    resolver = Resolver(ops)
    coverage = await resolver.get(((service_request.get("insurance") or [{}])[0]).get("reference"))
    try:
        rules = catalog.rules_for(plan_key_of(coverage))
    except FhirError:
        return None
    member_group = await member_group_of(resolver, patient)
    request = await routing_request(resolver, service_request, patient, member_group)
    acceptable = acceptable_specialties(request.specialty, rules, catalog.specialties, request.member_age)
    directory = await load_directory(ops, rules.key, acceptable, rules.expert_panel_identifier)
    decision = route(request, rules, catalog.specialties, directory)
    ranked = ranked_candidates(request, rules, catalog.specialties, directory)
    verdicts = []
    for candidate in directory.candidates:
        problems = disqualifications(candidate, request, rules, catalog.specialties)
        rank = None if problems else ranked.index(candidate) + 1
        reasons = problems or preference_words(candidate, request, directory)
        verdicts.append(Considered(candidate, tier_of(candidate, request, directory), rank,
                                   decision.provider is not None and candidate.role == decision.provider.role,
                                   tuple(reasons)))
    verdicts.sort(key=lambda v: (v.rank is None, v.rank or 0, v.candidate.role))
    return RoutingResult(decision, verdicts)
