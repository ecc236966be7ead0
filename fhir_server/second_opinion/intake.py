"""``$submit`` orchestration, and the same workflow for a Task created through REST.

Data flows one way: envelope checks -> validation (base R4: 400; hosted profiles: 422; every entry, expressions
``Bundle.entry[i].resource...``) -> where each entry goes and what each reference means (:mod:`references`)
-> the plan's rules (unknown plan: 422) -> completeness -> routing over the stored directory -> Claim,
ClaimResponse and Task -> one store transaction -> the answer Bundle. Everything that can reject a submission
happens before the transaction, so nothing is stored from a rejected one.

Resubmission of a ServiceRequest identifier (system + value) already stored: while its Task is final, the
stored answer comes back unchanged; while pended, the request is re-evaluated with the new Bundle and the
decision is a new version of the same Task, Claim and ClaimResponse.
"""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from fhir_server.errors import FhirError, Issue, bad_request, error, operation_outcome, unprocessable
from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery
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
    REQUEST_PROFILE,
    TASK_PROFILE,
    TREATING_PRACTITIONER_EXT,
)
from fhir_server.second_opinion.completeness import MissingItem, Submission, missing_information, opinion_sequence
from fhir_server.second_opinion.plans import PlanCatalog, PlanRules
from fhir_server.second_opinion.references import Resolver, WritePlan, plan_writes
from fhir_server.second_opinion.routing import RoutingDecision, RoutingRequest, acceptable_specialties, route
from fhir_server.second_opinion.workflow import (
    FINAL_TASK_STATUSES,
    OUTCOME_STATES,
    build_task,
    due_time,
    is_expedited,
)
from fhir_server.storage.base import ResourceOperations, ResourceStore

Clock = Callable[[], datetime]
PROVIDER_TYPES = ("Practitioner", "PractitionerRole", "Organization")
# Elements of prior opinions that name the professionals who gave them.
OPINION_AUTHOR_ELEMENTS = ("performer", "resultsInterpreter", "author", "authenticator")


class Validator(Protocol):
    def validate_structure(self, resource: dict[str, Any]) -> list[Issue]: ...

    def validate_profiles(
        self, resource: dict[str, Any], profiles: tuple[str, ...] = (), check_meta_profiles: bool = True
    ) -> list[Issue]: ...


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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


# ---------------------------------------------------------------- envelope and validation


def check_envelope(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request("The body of $submit must be a Bundle", "Bundle")
    if bundle.get("type") != "collection":
        raise bad_request("The $submit Bundle must be of type 'collection'", "Bundle.type")
    entries = bundle.get("entry") or []
    if any(not isinstance(e, dict) or not isinstance(e.get("resource"), dict) for e in entries):
        raise bad_request("Every entry of the $submit Bundle needs a resource", "Bundle.entry")
    if not entries or entries[0]["resource"].get("resourceType") != "ServiceRequest":
        raise unprocessable([error("business-rule", "The first entry must be the ServiceRequest", "Bundle.entry[0].resource")])
    return entries


def _in_entry(issue: Issue, index: int, resource_type: str) -> Issue:
    """Re-anchor an issue's FHIRPaths from ``Type.x`` to ``Bundle.entry[i].resource.x``."""
    prefix = f"Bundle.entry[{index}].resource"
    anchored = tuple(
        prefix + e[len(resource_type) :] if e == resource_type or e.startswith(resource_type + ".") else f"{prefix}.{e}"
        for e in issue.expression
    ) or (prefix,)
    return Issue(issue.severity, issue.code, issue.diagnostics, anchored, issue.details_code)


async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Issue]:
    result = method(*args, **kwargs)
    return list(await result) if inspect.isawaitable(result) else list(result)


async def validate_entries(validator: Validator | None, entries: list[dict[str, Any]]) -> list[Issue]:
    """Base R4 problems of every entry (400), then hosted-profile problems of every entry (422), all at once;
    returns the warnings (e.g. a claimed profile this server does not host) for the answer."""
    if validator is None:
        return []
    warnings: list[Issue] = []
    for stage, status in (("structure", 400), ("profiles", 422)):
        issues: list[Issue] = []
        for index, entry in enumerate(entries):
            resource = entry["resource"]
            if stage == "structure":
                found = await _call(validator.validate_structure, resource)
            else:
                profiles = (REQUEST_PROFILE,) if index == 0 else ()
                found = await _call(validator.validate_profiles, resource, profiles=profiles, check_meta_profiles=True)
            anchored = [_in_entry(i, index, resource["resourceType"]) for i in found]
            issues += [i for i in anchored if i.is_error]
            warnings += [i for i in anchored if i.severity == "warning"]
        if issues:
            raise FhirError(issues, status)
    return warnings


# ---------------------------------------------------------------- reading the request


def _codes(concept: dict[str, Any] | None, system: str) -> list[str]:
    return [c["code"] for c in (concept or {}).get("coding", ()) if c.get("system") == system and c.get("code")]


def plan_key_of(coverage: dict[str, Any] | None) -> str | None:
    for cls in (coverage or {}).get("class", ()):
        if "plan" in _codes(cls.get("type"), COVERAGE_CLASS_SYSTEM):
            return cls.get("value")
    return None


def reasons_of(service_request: dict[str, Any]) -> tuple[str, ...]:
    """Reason codes of the reason CodeSystem first, then any other code given (accepted: extensible)."""
    ours = [code for concept in service_request.get("reasonCode", ()) for code in _codes(concept, REASON_SYSTEM)]
    others = [
        c.get("code") or concept.get("text", "other")
        for concept in service_request.get("reasonCode", ())
        for c in (concept.get("coding") or [{}])
        if c.get("system") != REASON_SYSTEM
    ]
    return tuple(ours + [o for o in others if o])


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


async def evaluate(
    ops: ResourceOperations, resolver: Resolver, service_request: dict[str, Any], catalog: PlanCatalog
) -> Evaluation:
    """Decide a request: the plan, what is missing, who is proposed, and what happens."""
    coverage_ref = (service_request.get("insurance") or [{}])[0].get("reference")
    coverage = await resolver.get(coverage_ref)
    rules = catalog.rules_for(
        plan_key_of(coverage), resolver.expression(coverage_ref, "class") if coverage_ref else "ServiceRequest.insurance"
    )
    patient = await resolver.get(service_request.get("subject", {}).get("reference"))
    member_group = await member_group_of(resolver, patient)
    missing = missing_information(Submission(service_request, patient, coverage, member_group))
    specialty = next(iter(_codes(service_request.get("performerType"), NUCC_SYSTEM)), "")
    request = RoutingRequest(
        specialty=specialty,
        reasons=reasons_of(service_request),
        member_group=member_group,
        involved=await involved_practitioners(resolver, service_request, patient),
        chosen=await practitioner_of(resolver, (service_request.get("performer") or [{}])[0].get("reference")),
        third_opinion=opinion_sequence(service_request) == "third",
        complete=not missing,
    )
    directory = await provider_directory.load_directory(
        ops, rules.key, acceptable_specialties(specialty, rules, catalog.specialties)
    )
    decision = route(request, rules, catalog.specialties, directory)
    requester = service_request.get("requester", {}).get("reference")
    requestor = requester if requester and requester.split("/")[0] in PROVIDER_TYPES else None
    owner = member_group if rules.physician_groups_decide and member_group and decision.outcome != "member-services" else rules.payer
    return Evaluation(
        rules=rules,
        decision=decision,
        missing=missing,
        parties=Parties(
            patient=service_request.get("subject", {}).get("reference", ""),
            coverage=coverage_ref or "",
            insurer=rules.payer,
            requestor=requestor,
            claim_provider=requestor or member_group or rules.payer,
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
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Claim, ClaimResponse and Task of one evaluation (``task_base``: a client's Task to keep id/identifiers of)."""
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
        due=due_time(received, evaluation.expedited, rules.due_times),
        now=now,
        claim_response_ref=f"ClaimResponse/{ids.claim_response}",
        tags=tags,
        task_id=ids.task,
        identifier=(task_base or {}).get("identifier"),
    )
    return claim, claim_response, task


# ---------------------------------------------------------------- existing workflow of a request


@dataclass(frozen=True)
class ExistingCase:
    task: dict[str, Any]
    claim_response: dict[str, Any] | None
    ids: RecordIds

    @property
    def final(self) -> bool:
        return self.task.get("status") in FINAL_TASK_STATUSES

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.task["authoredOn"].replace("Z", "+00:00"))


async def existing_case(ops: ResourceOperations, service_request_ref: str) -> ExistingCase | None:
    """The Task (and its ClaimResponse/Claim) the server made for a stored ServiceRequest, if any."""
    resource_type, _, resource_id = service_request_ref.partition("/")
    page = await ops.search(
        SearchQuery(
            resource_type="Task",
            criteria=[Criterion("focus", "reference", (ReferenceValue(resource_type, resource_id),))],
            count=50,
            total="none",
        )
    )
    tasks = [i.resource for i in page.items if i.resource and TASK_PROFILE in i.resource.get("meta", {}).get("profile", ())]
    for task in tasks:
        output = next((o["valueReference"]["reference"] for o in task.get("output", ()) if "valueReference" in o), None)
        if not output or not output.startswith("ClaimResponse/"):
            continue
        claim_response = await Resolver(ops).get(output)
        claim_ref = (claim_response or {}).get("request", {}).get("reference", "")
        claim_id = claim_ref.partition("/")[2] or str(uuid.uuid4())
        return ExistingCase(task, claim_response, RecordIds(claim_id, output.partition("/")[2], task["id"]))
    return None


def new_ids() -> RecordIds:
    return RecordIds(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


# ---------------------------------------------------------------- $submit


def answer_bundle(base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Entry 1 the ClaimResponse, 2 the Task, 3 the ServiceRequest, then the Claim (and any warnings)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


async def _write(tx: ResourceOperations, resource: dict[str, Any], exists: bool) -> dict[str, Any]:
    if exists:
        stored, _ = await tx.update(resource)
    else:
        stored = await tx.create(resource, resource_id=resource["id"])
    assert stored.resource is not None
    return stored.resource


async def submit(
    bundle: Any,
    *,
    store: ResourceStore,
    validator: Validator | None,
    catalog: PlanCatalog,
    base_url: str,
    now: Clock = utc_now,
) -> dict[str, Any]:
    """``POST [base]/ServiceRequest/$submit``: the answer Bundle (ClaimResponse, Task, ServiceRequest, Claim)."""
    entries = check_envelope(bundle)
    warnings = await validate_entries(validator, entries)
    plan: WritePlan = await plan_writes(store, entries)
    request_entry = plan.entries[0]
    existing = await existing_case(store, request_entry.reference) if request_entry.exists else None
    if existing and existing.final and existing.claim_response:
        stored = Resolver(store)
        records = [existing.claim_response, existing.task, await stored.get(request_entry.reference),
                   await stored.get(f"Claim/{existing.ids.claim}")]
        return answer_bundle(base_url, [r for r in records if r])

    moment = now()
    received = existing.received if existing else moment
    evaluation = await evaluate(store, Resolver(store, plan), request_entry.resource, catalog)
    ids = existing.ids if existing else new_ids()
    claim, claim_response, task = build_records(
        evaluation, request_entry.resource, request_entry.reference, ids, received, moment,
        existing.task if existing else None,
    )
    async with store.transaction() as tx:
        written = {e.index: await _write(tx, e.resource, e.exists) for e in plan.entries}
        stored_claim = await _write(tx, claim, existing is not None)
        stored_response = await _write(tx, claim_response, existing is not None and existing.claim_response is not None)
        stored_task = await _write(tx, task, existing is not None)
    extra = [{"resourceType": "OperationOutcome", "id": str(uuid.uuid4()), **operation_outcome(warnings)}] if warnings else []
    return answer_bundle(base_url, [stored_response, stored_task, written[0], stored_claim, *extra])


# ---------------------------------------------------------------- a Task created through REST


def starts_workflow(task: dict[str, Any]) -> bool:
    """A client's Task that asks for the second-opinion workflow (contract "Submitting", last paragraph)."""
    return (
        TASK_PROFILE in task.get("meta", {}).get("profile", ())
        and task.get("status") == "requested"
        and task.get("intent") == "order"
        and str(task.get("focus", {}).get("reference", "")).startswith("ServiceRequest/")
    )


async def start_from_task(
    tx: ResourceOperations, task: dict[str, Any], catalog: PlanCatalog, now: Clock = utc_now
) -> dict[str, Any]:
    """Run the workflow for a Task just created (inside its transaction); returns the Task's new version."""
    focus = task["focus"]["reference"]
    resolver = Resolver(tx)
    service_request = await resolver.get(focus)
    if service_request is None:
        raise unprocessable([error("not-found", f"Task.focus {focus!r} names no stored ServiceRequest", "Task.focus")])
    moment = now()
    evaluation = await evaluate(tx, resolver, service_request, catalog)
    ids = RecordIds(str(uuid.uuid4()), str(uuid.uuid4()), task["id"])
    claim, claim_response, new_task = build_records(evaluation, service_request, focus, ids, moment, moment, task)
    await _write(tx, claim, False)
    await _write(tx, claim_response, False)
    return await _write(tx, new_task, True)
