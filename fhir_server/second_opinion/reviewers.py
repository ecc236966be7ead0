"""Who may decide a second-opinion request, and whom a decision may authorize.

90.2.17 policy and procedures 4-5: "The Chief Medical Officer or physician designee will evaluate the medical
necessity"; "The completed referral will then be presented to the Chief Medical Officer or physician designee for
a determination". So the reviewer is a physician (a ``Practitioner.qualification`` degree the plan data lists,
MD or DO in ``v2-0360``) with an active PractitionerRole at the organization that owns the Task (the delegated
IPA/PPG, else the plan), who neither asked for the opinion nor is involved in the member's care.

The checks take the reviewer's reference, whichever way it arrives (the ``reviewer`` parameter of ``$decide``
today, the signed-in physician once tokens are checked), so they hold for both.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import Issue, error, unprocessable
from fhir_server.second_opinion.directory import is_active, roles_of
from fhir_server.second_opinion.evaluation import involved_practitioners, practitioner_of
from fhir_server.second_opinion.plans import PlanRules
from fhir_server.second_opinion.references import Resolver

DEGREE_SYSTEMS = frozenset({
    "http://terminology.hl7.org/CodeSystem/v2-0360",
    "http://terminology.hl7.org/CodeSystem/v2-0360|2.7",  # the R4 canonical of table 0360 carries its version
})


def degrees_of(practitioner: dict[str, Any] | None) -> frozenset[str]:
    """The v2-0360 degree codes of a Practitioner's qualifications (MD, DO, ...)."""
    return frozenset(
        coding.get("code")
        for qualification in (practitioner or {}).get("qualification", ())
        for coding in (qualification.get("code") or {}).get("coding", ())
        if coding.get("system") in DEGREE_SYSTEMS and coding.get("code")
    )


async def reviewer_issues(
    resolver: Resolver, reviewer: str, task: dict[str, Any], rules: PlanRules, expression: str,
    *, at_owner: bool = True, role: str = "reviewer",
) -> list[Issue]:
    """Every rule ``reviewer`` (a Practitioner or PractitionerRole reference) breaks for deciding ``task``.
    ``at_owner`` false: the consultative reviewer of a referred case (90.2.17 procedure 6), who may belong to the
    plan's expert panel rather than to the deciding organization; every other rule holds for them too."""
    practitioner = await practitioner_of(resolver, reviewer)
    if not practitioner:
        return [error("business-rule", f"{role} {reviewer!r} names no Practitioner", expression)]
    owner = (task.get("owner") or {}).get("reference")
    problems: list[str] = []
    if not degrees_of(await resolver.get(practitioner)) & rules.reviewer_qualifications:
        problems.append(
            f"is not a physician (no qualification {' or '.join(sorted(rules.reviewer_qualifications))} of "
            "http://terminology.hl7.org/CodeSystem/v2-0360): only the Chief Medical Officer or a physician designee "
            "decides (90.2.17 procedure 4)"
        )
    if reviewer.startswith("PractitionerRole/"):
        roles = [await resolver.get(reviewer) or {}]
    else:
        roles = await roles_of(resolver.ops, practitioner)
    if at_owner and not any(is_active(r) and (r.get("organization") or {}).get("reference") == owner for r in roles):
        problems.append(f"has no active role at {owner!r}, the organization that decides this case (Task.owner)")
    service_request = await resolver.get((task.get("focus") or {}).get("reference")) or {}
    requester = await practitioner_of(resolver, (service_request.get("requester") or {}).get("reference"))
    patient = await resolver.get((task.get("for") or {}).get("reference"))
    if practitioner == requester:
        problems.append("requested this second opinion: the requester does not decide their own request")
    elif practitioner in await involved_practitioners(resolver, service_request, patient):
        problems.append("is involved in the member's care (treating, a prior opinion or the member's PCP)")
    return [error("business-rule", f"{role} {reviewer!r} {problem}", expression) for problem in problems]


async def check_reviewer(
    resolver: Resolver, reviewer: str, task: dict[str, Any], rules: PlanRules, expression: str,
    *, at_owner: bool = True, role: str = "reviewer",
) -> None:
    """Refuse (422, every broken rule named) a reviewer who may not decide ``task``."""
    issues = await reviewer_issues(resolver, reviewer, task, rules, expression, at_owner=at_owner, role=role)
    if issues:
        raise unprocessable(issues)
