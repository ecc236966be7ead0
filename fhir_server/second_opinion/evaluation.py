"""Deciding one request: read what the submission says, apply the plan, route, and build the records.

Shared by ``$submit`` and by a Task created through REST, so both end in the same states. Reading is done
through a :class:`~references.Resolver` (the submission first, then the store); nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_server.errors import error, unprocessable
from fhir_server.second_opinion import directory as provider_directory
from fhir_server.second_opinion.authorization import (
    Parties,
    authorization_number,
    build_claim,
    build_claim_response,
)
from fhir_server.second_opinion.categories import decision_tags
from fhir_server.second_opinion.codes import (
    COVERAGE_CLASS_SYSTEM,
    NUCC_SYSTEM,
    REASON_SYSTEM,
    TREATING_PRACTITIONER_EXT,
    codes_in,
)
from fhir_server.second_opinion.completeness import MissingItem, Submission, missing_information, opinion_sequence
from fhir_server.second_opinion.plans import PlanCatalog, PlanRules
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.routing import RoutingDecision, RoutingRequest, acceptable_specialties, route
from fhir_server.second_opinion.workflow import OUTCOME_STATES, build_task, due_time, is_expedited

PROVIDER_TYPES = ("Practitioner/", "PractitionerRole/", "Organization/")
OTHER_REASON = "other"
# Elements of prior opinions that name the professionals who gave them.
OPINION_AUTHOR_ELEMENTS = ("performer", "resultsInterpreter", "author", "authenticator")


@dataclass(frozen=True)
class Evaluation:
    """Everything decided about one request, before anything is written."""

    rules: PlanRules
    decision: RoutingDecision
    missing: list[MissingItem]
    parties: Parties
    owner: str
    member_group: str | None
    expedited: bool


@dataclass(frozen=True)
class RecordIds:
    claim: str
    claim_response: str
    task: str


def plan_key_of(coverage: dict[str, Any] | None) -> str | None:
    for cls in (coverage or {}).get("class", ()):
        if "plan" in codes_in([cls.get("type")], COVERAGE_CLASS_SYSTEM):
            return cls.get("value")
    return None


def reasons_of(service_request: dict[str, Any]) -> tuple[str, ...]:
    """Reason codes of the reason CodeSystem first, then any other code given (accepted: extensible)."""
    ours = codes_in(service_request.get("reasonCode", ()), REASON_SYSTEM)
    others = [
        c.get("code") or OTHER_REASON  # free text (no code) is reported under "other", never as its own category
        for concept in service_request.get("reasonCode", ())
        for c in (concept.get("coding") or [{}])
        if c.get("system") != REASON_SYSTEM
    ]
    return tuple(dict.fromkeys(ours + others))


def requester_kind(service_request: dict[str, Any]) -> str:
    """``member`` when the member asks for themself (requester a Patient), else ``provider`` (contract)."""
    requester = service_request.get("requester", {}).get("reference", "")
    return "member" if requester.startswith("Patient/") else "provider"


def provider_requester(service_request: dict[str, Any]) -> str | None:
    """The professional or organization that asked (``ClaimResponse.requestor``); None when the member asked."""
    requester = service_request.get("requester", {}).get("reference", "")
    return requester if requester.startswith(PROVIDER_TYPES) else None


async def practitioner_of(resolver: Resolver, reference: str | None) -> str | None:
    """The Practitioner a Practitioner or PractitionerRole reference stands for."""
    if not reference:
        return None
    if reference.startswith("Practitioner/"):
        return reference
    if reference.startswith("PractitionerRole/"):
        role = await resolver.get(reference)
        return (role or {}).get("practitioner", {}).get("reference")
    return None


async def member_group_of(resolver: Resolver, patient: dict[str, Any] | None) -> str | None:
    """Contract: Patient.generalPractitioner -> an Organization (prvgrp), a PractitionerRole (its organization)
    or a Practitioner (its one active role in a prvgrp); anything else: None (information missing)."""
    for gp in (patient or {}).get("generalPractitioner", ()):
        reference = gp.get("reference", "")
        if reference.startswith("Organization/"):
            if provider_directory.is_physician_group(await resolver.get(reference)):
                return reference
        elif reference.startswith("PractitionerRole/"):
            organization = ((await resolver.get(reference)) or {}).get("organization", {}).get("reference")
            if organization and provider_directory.is_physician_group(await resolver.get(organization)):
                return organization
        elif reference.startswith("Practitioner/"):
            group = await provider_directory.active_group_of(resolver.ops, reference)
            if group:
                return group
    return None


async def involved_practitioners(
    resolver: Resolver, service_request: dict[str, Any], patient: dict[str, Any] | None
) -> frozenset[str]:
    """Everyone already involved: treating practitioners, the requester, prior opinions' authors, the PCP."""
    references = [
        e.get("valueReference", {}).get("reference")
        for e in service_request.get("extension", ())
        if e.get("url") == TREATING_PRACTITIONER_EXT
    ]
    references.append(service_request.get("requester", {}).get("reference"))
    references += [gp.get("reference") for gp in (patient or {}).get("generalPractitioner", ())]
    for info in service_request.get("supportingInfo", ()):
        opinion = await resolver.get(info.get("reference")) or {}
        for element in OPINION_AUTHOR_ELEMENTS:
            value = opinion.get(element)
            references += [r.get("reference") for r in (value if isinstance(value, list) else [value]) if r]
    practitioners = [await practitioner_of(resolver, r) for r in references]
    return frozenset(p for p in practitioners if p)


def age_on(birth_date: str | None, day: date | None) -> int | None:
    """Whole years between a FHIR birthDate (a year or month alone counts from its first day) and ``day``."""
    if not birth_date or day is None:
        return None
    parts = [int(p) for p in str(birth_date)[:10].split("-")] + [1, 1]
    born = date(parts[0], parts[1], parts[2])
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _authored_on(service_request: dict[str, Any]) -> date | None:
    text = str(service_request.get("authoredOn") or "")[:10]
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def check_requester(
    resolver: Resolver, service_request: dict[str, Any], patient: dict[str, Any] | None, expression: str
) -> None:
    """Who may ask (contract "Review and decisions"; Health Net: "requested by a member or the member's
    physician"; 90.2.17 policy: "The member, the primary care physician, or a specialist that is treating an
    enrollee"): the Patient who is the subject, the member's PCP (``Patient.generalPractitioner``, as
    Practitioner or PractitionerRole) or a professional named as treating. Anyone else: 422."""
    requester = service_request.get("requester", {}).get("reference", "")
    subject = service_request.get("subject", {}).get("reference", "")
    if requester.startswith("Patient/"):
        if requester == subject:
            return
        raise unprocessable([error(
            "business-rule",
            f"The requester {requester!r} is another Patient: a member asks a second opinion only for themself",
            expression,
        )])
    practitioner = await practitioner_of(resolver, requester)
    pcps = [await practitioner_of(resolver, gp.get("reference")) for gp in (patient or {}).get("generalPractitioner", ())]
    allowed = {p for p in pcps if p} | set(await treating_practitioners(resolver, service_request))
    if practitioner and practitioner in allowed:
        return
    raise unprocessable([error(
        "business-rule",
        f"The requester {requester!r} is neither the member, the member's primary care physician nor a professional "
        "named as treating (treating-practitioner): only they may request a second opinion (Health Net: \"a member "
        "or the member's physician\"; 90.2.17: \"the member, the primary care physician, or a specialist that is "
        "treating\")",
        expression,
    )])


async def treating_practitioners(resolver: Resolver, service_request: dict[str, Any]) -> list[str]:
    """The Practitioners the request names as treating (``treating-practitioner``)."""
    references = [
        e.get("valueReference", {}).get("reference")
        for e in service_request.get("extension", ())
        if e.get("url") == TREATING_PRACTITIONER_EXT
    ]
    found = [await practitioner_of(resolver, r) for r in references]
    return [p for p in found if p]


def insurer_of(coverage: dict[str, Any] | None) -> str:
    """The plan that answers: the Coverage's ``payor`` (an Organization first), never a directory id in plan data."""
    payors = [p.get("reference", "") for p in (coverage or {}).get("payor", ()) if p.get("reference")]
    return next((p for p in payors if p.startswith("Organization/")), payors[0] if payors else "")


async def routing_request(
    resolver: Resolver, service_request: dict[str, Any], patient: dict[str, Any] | None, member_group: str | None,
    complete: bool = True,
) -> RoutingRequest:
    """What routing (and a reviewer's assignedProvider check) needs to know about one request."""
    return RoutingRequest(
        specialty=next(iter(codes_in([service_request.get("performerType")], NUCC_SYSTEM)), ""),
        reasons=reasons_of(service_request),
        member_group=member_group,
        involved=await involved_practitioners(resolver, service_request, patient),
        chosen=await practitioner_of(resolver, (service_request.get("performer") or [{}])[0].get("reference")),
        third_opinion=opinion_sequence(service_request) == "third",
        complete=complete,
        requested_by=requester_kind(service_request),
        member_age=age_on((patient or {}).get("birthDate"), _authored_on(service_request)),
    )


async def evaluate(resolver: Resolver, service_request: dict[str, Any], catalog: PlanCatalog) -> Evaluation:
    """Decide a request: the plan, what is missing, who is proposed, and what happens (the directory is searched
    through the resolver's store or transaction)."""
    coverage_ref = (service_request.get("insurance") or [{}])[0].get("reference")
    coverage = await resolver.get(coverage_ref)
    rules = catalog.rules_for(
        plan_key_of(coverage), resolver.expression(coverage_ref, "class") if coverage_ref else "ServiceRequest.insurance"
    )
    patient = await resolver.get(service_request.get("subject", {}).get("reference"))
    request_ref = f"ServiceRequest/{service_request.get('id')}"
    await check_requester(resolver, service_request, patient, resolver.expression(request_ref, "requester"))
    member_group = await member_group_of(resolver, patient)
    missing = missing_information(Submission(service_request, patient, coverage, member_group))
    request = await routing_request(resolver, service_request, patient, member_group, complete=not missing)
    directory = await provider_directory.load_directory(
        resolver.ops,
        rules.key,
        acceptable_specialties(request.specialty, rules, catalog.specialties, request.member_age),
        rules.expert_panel_identifier,
    )
    decision = route(request, rules, catalog.specialties, directory)
    requestor = provider_requester(service_request)
    insurer = insurer_of(coverage)
    owner = member_group if rules.physician_groups_decide and member_group and decision.outcome != "member-services" else insurer
    return Evaluation(
        rules=rules,
        decision=decision,
        missing=missing,
        parties=Parties(
            patient=service_request.get("subject", {}).get("reference", ""),
            coverage=coverage_ref or "",
            insurer=insurer,
            requestor=requestor,
            claim_provider=requestor or member_group or insurer,
        ),
        owner=owner,
        member_group=member_group,
        expedited=is_expedited(service_request.get("priority")),
    )


def build_records(
    evaluation: Evaluation,
    service_request: dict[str, Any],
    service_request_ref: str,
    ids: RecordIds,
    received: datetime,
    now: datetime,
    task_base: dict[str, Any] | None = None,
    clock_from: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Claim, ClaimResponse and Task of one evaluation (``task_base``: a client's Task to keep id/identifiers of;
    ``clock_from``: when the decision clock started, receipt unless missing information arrived later)."""
    decision, rules = evaluation.decision, evaluation.rules
    tags = decision_tags(
        reason=decision.reason,
        decision=OUTCOME_STATES[decision.outcome].review_action,
        tier=decision.tier,
        plan=rules.key,
        group=evaluation.member_group,
    )
    claim = build_claim(
        claim_id=ids.claim,
        service_request_ref=service_request_ref,
        parties=evaluation.parties,
        rules=rules,
        expedited=evaluation.expedited,
        received=received,
    )
    claim_response = build_claim_response(
        claim_response_id=ids.claim_response,
        claim_ref=f"Claim/{ids.claim}",
        parties=evaluation.parties,
        rules=rules,
        decision=decision,
        number=authorization_number(rules, ids.claim, received),
        received=received,
        now=now,
        tags=tags,
    )
    task = build_task(
        service_request=service_request,
        service_request_ref=service_request_ref,
        decision=decision,
        missing=evaluation.missing,
        owner=evaluation.owner,
        received=received,
        due=due_time(clock_from or received, evaluation.expedited, rules.due_times),
        now=now,
        claim_response_ref=f"ClaimResponse/{ids.claim_response}",
        tags=tags,
        task_id=ids.task,
        identifier=(task_base or {}).get("identifier"),
    )
    return claim, claim_response, task
