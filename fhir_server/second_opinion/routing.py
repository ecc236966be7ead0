"""The rules engine: who gives the opinion, and what happens to the request, driven by plan data.

Pure: a :class:`RoutingRequest` (what the submission says), the plan's :class:`~plans.PlanRules`, the shared
:class:`~plans.Specialties` and a :class:`~directory.Directory` snapshot in; a :class:`RoutingDecision` out.

Who qualifies (Health Net "appropriately qualified health care professional ... of the same or equivalent
specialty"; 90.2.17 procedure 6b "a Board Certified Physician of the same specialty"): an active role of the
requested specialty (or an equivalent one where the plan accepts them; any primary-care specialty for
primary care), board-certified where the plan requires it, whose practitioner is not already involved.

Where to look (90.2.17 procedure 6a/6b, Health Net "make every effort to accommodate the member within the PPG
network ... out-of-network ... when no participating provider is available"): the member's physician group,
then the plan's networks (its expert panel first where it keeps one), then out of network.

Whose choice (``ServiceRequest.performer``) counts is the plan's data (``PlanRules.honours_choice``): Health Net
routes to "the member's choice" whoever asks; 90.2.17 only lets the enrollee making the request designate a
primary care physician "from the same network" (6a). A choice that counts is honoured when qualified and in
network; an out-of-network one while an in-network professional exists is the plan's
``member-choice-out-of-network`` situation.

What happens is the plan's outcome for the situation found (``PlanRules.decisions``); the engine never
denies: outcomes are certify (A1) or a pended review (A4).
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.second_opinion.directory import Candidate, Directory
from fhir_server.second_opinion.plans import PlanRules, Specialties

TIERS = ("group", "network", "out-of-network")
INFORMATION_MISSING = "information-missing"
OPINIONS_DIFFER = "opinions-differ"  # the reason of a third opinion


@dataclass(frozen=True)
class RoutingRequest:
    specialty: str  # NUCC code of ServiceRequest.performerType
    reasons: tuple[str, ...]  # codes of the reason CodeSystem (others are kept as given)
    member_group: str | None  # "Organization/id"
    involved: frozenset[str]  # "Practitioner/id" of everyone already involved
    chosen: str | None = None  # "Practitioner/id": the member's choice (ServiceRequest.performer)
    third_opinion: bool = False
    complete: bool = True
    requested_by: str = "provider"  # "member" (requester a Patient) or "provider": see PlanRules.honours_choice
    member_age: int | None = None  # whole years at receipt (primary care is age-appropriate)


@dataclass(frozen=True)
class RoutingDecision:
    outcome: str  # certify | physician-review | member-services | information-missing
    situation: str  # a plans.SITUATIONS entry, or information-missing
    tier: str  # group | network | out-of-network | none
    provider: Candidate | None
    reason: str  # the reason reported for this request
    qualifying: bool


def acceptable_specialties(
    specialty: str, rules: PlanRules, specialties: Specialties, member_age: int | None = None
) -> frozenset[str]:
    """The NUCC codes that qualify for a requested specialty: for primary care any primary-care code appropriate
    to the member's age (90.2.17 6a "an appropriately qualified primary care physician": pediatrics for a child,
    an adult specialty for an adult; the table is mappings data); the code itself plus its equivalents where
    the plan accepts them (Health Net "same or equivalent")."""
    if specialties.is_primary_care(specialty):
        return specialties.primary_care_for(member_age)
    if rules.equivalent_specialties:
        return frozenset({specialty}) | specialties.equivalents_of(specialty)
    return frozenset({specialty})


def disqualifications(
    candidate: Candidate, request: RoutingRequest, rules: PlanRules, specialties: Specialties
) -> list[str]:
    """Why a professional is not appropriately qualified for this request (empty: qualified). One list of
    rules serves routing and a reviewer's ``assignedProvider``, so a physician cannot authorize someone routing
    would never propose."""
    acceptable = acceptable_specialties(request.specialty, rules, specialties, request.member_age)
    board_required = rules.board_certification_required(specialties.is_primary_care(request.specialty))
    reasons = []
    if not candidate.active:
        reasons.append("the role is not active")
    if candidate.practitioner in request.involved:
        reasons.append("the professional is already involved in the member's care")
    if not candidate.specialties & acceptable:
        reasons.append(f"the role's specialty is not {' or '.join(sorted(acceptable))}")
    elif board_required and not candidate.board_certifications & candidate.specialties & acceptable:
        reasons.append("the professional is not board-certified in the requested specialty")
    return reasons


def qualified_candidates(
    request: RoutingRequest, rules: PlanRules, specialties: Specialties, directory: Directory
) -> list[Candidate]:
    return [c for c in directory.candidates if not disqualifications(c, request, rules, specialties)]


def tier_of(candidate: Candidate, request: RoutingRequest, directory: Directory) -> str:
    if request.member_group and candidate.organization == request.member_group:
        return "group"
    return "network" if directory.in_network(candidate) else "out-of-network"


def _preference(candidate: Candidate, request: RoutingRequest, rules: PlanRules, directory: Directory) -> tuple:
    """Sort key: nearest tier, then the exact specialty, the plan's expert panel, board certification, id."""
    return (
        TIERS.index(tier_of(candidate, request, directory)),
        request.specialty not in candidate.specialties,
        bool(directory.expert_panels) and not candidate.networks & directory.expert_panels,
        not (candidate.board_certifications & candidate.specialties),
        candidate.role,
    )


def ranked_candidates(
    request: RoutingRequest, rules: PlanRules, specialties: Specialties, directory: Directory
) -> list[Candidate]:
    """The qualified professionals in the order routing prefers them (:func:`_preference`)."""
    return sorted(qualified_candidates(request, rules, specialties, directory),
                  key=lambda c: _preference(c, request, rules, directory))


def preference_words(candidate: Candidate, request: RoutingRequest, directory: Directory) -> list[str]:
    """What places a qualified professional in routing's order, in words and in :func:`_preference`'s order (for
    the people who read why one professional was proposed before another)."""
    tier = tier_of(candidate, request, directory)
    words = [{"group": "in the member's physician group", "network": "in the plan's network",
              "out-of-network": "out of network"}[tier]]
    words.append("the same specialty" if request.specialty in candidate.specialties else "an equivalent specialty")
    if directory.expert_panels:
        words.append("on the plan's expert panel" if candidate.networks & directory.expert_panels else "not on the plan's expert panel")
    words.append("board-certified" if candidate.board_certifications & candidate.specialties else "not board-certified")
    return words


def qualifying_reasons(request: RoutingRequest, rules: PlanRules) -> frozenset[str]:
    """The reasons that qualify this request: a second opinion qualifies by one of the plan's situations; a third
    one only where the plan covers it, and only because the first two opinions differ (90.2.17 Third Opinion 1:
    "In the event that the recommendation of the first and second physician differs ... a third opinion is also
    covered")."""
    if request.third_opinion:
        return frozenset({OPINIONS_DIFFER}) if rules.third_opinion_covered else frozenset()
    return rules.qualifying_reasons - {OPINIONS_DIFFER}


def reported_reason(request: RoutingRequest, rules: PlanRules) -> tuple[str, bool]:
    """The reason to report and whether the request qualifies under the plan."""
    qualifying = qualifying_reasons(request, rules)
    matches = [r for r in request.reasons if r in qualifying]
    if matches:
        return matches[0], True
    return (request.reasons[0] if request.reasons else "other"), False


def route(request: RoutingRequest, rules: PlanRules, specialties: Specialties, directory: Directory) -> RoutingDecision:
    primary_care = specialties.is_primary_care(request.specialty)
    reason, qualifying = reported_reason(request, rules)
    if not request.complete:  # pended for information: nobody is proposed until the request is complete
        return RoutingDecision(INFORMATION_MISSING, INFORMATION_MISSING, "none", None, reason, qualifying)
    ranked = ranked_candidates(request, rules, specialties, directory)
    best = ranked[0] if ranked else None
    best_in_network = next((c for c in ranked if tier_of(c, request, directory) != "out-of-network"), None)
    # A named professional is the member's choice only where the plan honours it for this care and requester;
    # elsewhere the plan's own order decides (90.2.17 6a: "within the same physician organization", 6b).
    wanted = request.chosen if rules.honours_choice(primary_care, request.requested_by) else None
    chosen = next((c for c in ranked if c.practitioner == wanted), None) if wanted else None

    provider, situation = best, "complete-qualifying"
    if wanted and chosen is None:
        situation = "member-choice-not-qualified"
    elif chosen is not None and tier_of(chosen, request, directory) == "out-of-network" and best_in_network:
        # The member asks for an out-of-network professional while a qualified in-network one exists: the
        # plan redirects in network (the proposed provider) and decides how (Member Services / physician).
        provider, situation = best_in_network, "member-choice-out-of-network"
    elif chosen is not None:
        provider = chosen
    if provider is None:
        situation = "nobody-qualified"
    elif situation == "complete-qualifying" and tier_of(provider, request, directory) == "out-of-network":
        situation = "out-of-network-only"
    if not qualifying:
        situation = "other-reason"  # the list is "not limited to": accepted, and a physician decides

    tier = tier_of(provider, request, directory) if provider else "none"
    return RoutingDecision(rules.outcome_for(situation), situation, tier, provider, reason, qualifying)
