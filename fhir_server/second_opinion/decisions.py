"""A physician reviewer's decision on a case in review: ``POST [base]/Task/{id}/$decide``.

90.2.17 procedures 4-6: the completed referral is presented to the Chief Medical Officer or a physician
designee, who approves or denies it, possibly after a consultative review by a physician of the same
specialty; "Both the member and provider will be notified of the determination". Health Net: "few, if any"
denials, and the server never denies on its own, so a denial (X12 306 ``A3``) only ever comes from here.
A referral for that consultative review (``decision`` ``refer``, procedure 5 "or refer it for a consultative
review") is no determination: the Task stays in review (businessStatus ``consultative-review``), the
ClaimResponse stays pended (A4, a new version saying why), nobody is notified, and a later approve or deny decides.

One store transaction writes the new ClaimResponse version (A1 with preAuthRef/preAuthPeriod and the
authorized provider, or A3 with the reviewer's reason and the plan's denial notes), the completed Task, the
decision tags the reports count, the notices, and a Provenance naming the reviewer (and the consultative
reviewer, of the requested specialty, whose findings informed the decision). Everything that can refuse the
decision is checked inside that transaction before the first write, so a refused decision leaves nothing behind.

Who decides: today the ``reviewer`` parameter. Once SMART authorization lands, the signed-in physician of the
request (:func:`reviewer_for` reads the :class:`~fhir_server.services.context.RequestContext`) takes its place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fhir_server.errors import FhirError, Issue, error, unprocessable
from fhir_server.fhir.resources import copy_resource
from fhir_server.second_opinion.authorization import Adjudication, adjudicate, authorization_number_of
from fhir_server.second_opinion.cases import case_of_task, is_second_opinion_task
from fhir_server.second_opinion.categories import tag_value, with_dimension
from fhir_server.second_opinion.codes import NUCC_SYSTEM, STATUS_SYSTEM, codes_in
from fhir_server.second_opinion.directory import Candidate, Directory, candidate_from, plan_networks, specialties_of
from fhir_server.second_opinion.evaluation import involved_practitioners
from fhir_server.second_opinion.notices import concept_text, notify_decision, proposed_provider_of
from fhir_server.second_opinion.plans import PlanCatalog, PlanRules
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.routing import RoutingRequest, acceptable_specialties, tier_of
from fhir_server.second_opinion.workflow import FINAL_TASK_STATUSES, OUTCOME_STATES, business_status, instant
from fhir_server.services.context import RequestContext
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource

# approve and deny determine the request; refer (90.2.17 procedure 5) sends it to a consultative reviewer first.
DECISION_OUTCOMES = {"approve": "certify", "deny": "deny", "refer": "consultative-review"}
PARAMETER = "Parameters.parameter"  # where a problem of the Parameters as a whole is reported
PARTICIPANT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


@dataclass(frozen=True)
class ParameterSpec:
    """One input of the Task-decide OperationDefinition: the value[x] forms accepted and reference targets."""

    value_keys: tuple[str, ...]
    targets: tuple[str, ...] = ()
    required: bool = False


PARAMETERS: dict[str, ParameterSpec] = {
    "decision": ParameterSpec(("valueCode", "valueString"), required=True),
    "reviewer": ParameterSpec(("valueReference",), ("Practitioner", "PractitionerRole"), required=True),
    "reason": ParameterSpec(("valueCodeableConcept", "valueString")),
    "assignedProvider": ParameterSpec(("valueReference",), ("PractitionerRole",)),
    "consultativeReviewer": ParameterSpec(("valueReference",), ("Practitioner", "PractitionerRole")),
}


@dataclass(frozen=True)
class DecisionRequest:
    """A reviewer's decision as the Parameters state it (already checked for shape)."""

    decision: str  # approve | deny
    reviewer: str  # "Practitioner/id" or "PractitionerRole/id"
    reason: dict[str, Any] | None = None  # CodeableConcept (a string reason becomes its text)
    assigned_provider: str | None = None  # "PractitionerRole/id"
    consultative_reviewer: str | None = None

    @property
    def outcome(self) -> str:
        return DECISION_OUTCOMES[self.decision]

    @property
    def reason_text(self) -> str | None:
        return concept_text(self.reason)

    def references(self) -> dict[str, str]:
        """Parameter name -> the reference it gives, for the existence check."""
        named = {
            "reviewer": self.reviewer,
            "assignedProvider": self.assigned_provider,
            "consultativeReviewer": self.consultative_reviewer,
        }
        return {name: reference for name, reference in named.items() if reference}


def _read_parameter(index: int, name: str, parameter: dict[str, Any]) -> tuple[Any, list[Issue]]:
    """The value of one parameter, or the issues that make it malformed."""
    spec = PARAMETERS[name]
    where = f"Parameters.parameter[{index}]"
    present = [key for key in parameter if key.startswith("value") or key in ("resource", "part")]
    if len(present) != 1 or present[0] not in spec.value_keys:
        return None, [error("invalid", f"parameter {name!r} takes one of {', '.join(spec.value_keys)}", where)]
    key = present[0]
    value = parameter[key]
    if key == "valueReference":
        reference = value.get("reference") if isinstance(value, dict) else None
        target_type, _, target_id = reference.partition("/") if isinstance(reference, str) else ("", "", "")
        if target_type not in spec.targets or not target_id:
            diagnostics = f"parameter {name!r} must reference a {' or '.join(spec.targets)} as Type/id"
            return None, [error("invalid", diagnostics, f"{where}.valueReference")]
        return reference, []
    if key == "valueString":
        if not isinstance(value, str) or not value.strip():
            return None, [error("invalid", f"parameter {name!r} is an empty string", f"{where}.valueString")]
        return ({"text": value} if name == "reason" else value), []
    if key == "valueCodeableConcept":
        if not isinstance(value, dict) or not concept_text(value):
            diagnostics = f"parameter {name!r} needs a coding or a text"
            return None, [error("invalid", diagnostics, f"{where}.valueCodeableConcept")]
        return value, []
    return value, []  # valueCode


def parse_decision(parameters: dict[str, Any]) -> DecisionRequest:
    """Read the Parameters of ``$decide``; every malformed part is reported at once (400)."""
    items = parameters.get("parameter")
    if not isinstance(items, list):
        raise FhirError([error("required", "Parameters.parameter is required", PARAMETER)], 400)
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for index, parameter in enumerate(items):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        where = f"Parameters.parameter[{index}]"
        if name not in PARAMETERS:
            issues.append(error("not-supported", f"unknown parameter {name!r} for $decide", f"{where}.name"))
        elif name in values:
            issues.append(error("invalid", f"parameter {name!r} is given more than once", where))
        else:
            values[name], found = _read_parameter(index, name, parameter)
            issues += found
    issues += [
        error("required", f"parameter {name!r} is required", PARAMETER)
        for name, spec in PARAMETERS.items()
        if spec.required and name not in values
    ]
    decision = values.get("decision")
    if decision is not None and decision not in DECISION_OUTCOMES:
        issues.append(error("code-invalid", f"decision must be approve, deny or refer, not {decision!r}", PARAMETER))
    if decision == "deny" and values.get("reason") is None:
        issues.append(error("required", "a denial needs a reason (valueCodeableConcept or valueString)", PARAMETER))
    if decision == "refer" and values.get("consultativeReviewer") is None:
        issues.append(error("required", "a referral for consultative review names the consultativeReviewer", PARAMETER))
    if issues:
        raise FhirError(issues, 400)
    return DecisionRequest(
        decision=decision,
        reviewer=values["reviewer"],
        reason=values.get("reason"),
        assigned_provider=values.get("assignedProvider"),
        consultative_reviewer=values.get("consultativeReviewer"),
    )


def reviewer_for(ctx: RequestContext, request: DecisionRequest) -> DecisionRequest:
    """The seam for authorization: when a physician is signed in, the decision is theirs, whatever the
    Parameters name (``ctx.identity`` is None until SMART tokens are checked)."""
    identity = ctx.identity or ""
    if identity.startswith(("Practitioner/", "PractitionerRole/")):
        return replace(request, reviewer=identity)
    return request


@dataclass(frozen=True)
class Decided:
    """What one decision wrote (answer order: ClaimResponse, Task, ServiceRequest, notices, Provenance)."""

    claim_response: dict[str, Any]
    task: dict[str, Any]
    service_request: dict[str, Any] | None
    notices: list[dict[str, Any]]
    provenance: dict[str, Any]

    def resources(self) -> list[dict[str, Any]]:
        first = [self.claim_response, self.task] + ([self.service_request] if self.service_request else [])
        return first + self.notices + [self.provenance]


def _refuse(diagnostics: str, expression: str) -> FhirError:
    return unprocessable([error("business-rule", diagnostics, expression)])


async def _check_references(resolver: Resolver, request: DecisionRequest) -> None:
    issues = [
        error("not-found", f"parameter {name!r}: {reference!r} names no stored resource", PARAMETER)
        for name, reference in request.references().items()
        if await resolver.get(reference) is None
    ]
    if issues:
        raise unprocessable(issues)


async def _authorized_provider(
    resolver: Resolver, request: DecisionRequest, task: dict[str, Any], rules: PlanRules
) -> tuple[str, str]:
    """The Practitioner an approval authorizes and its routing tier: the assigned PractitionerRole's (tier
    recomputed: the member's group, the plan's networks, else out of network), else the Task's proposal."""
    tags = task.get("meta", {}).get("tag", [])
    if request.assigned_provider:
        role = await resolver.get(request.assigned_provider) or {}
        candidate: Candidate = candidate_from(role, None)
        await _check_not_involved(resolver, candidate.practitioner, task)
        group = tag_value(tags, "group")
        routing = RoutingRequest(
            specialty="", reasons=(), member_group=f"Organization/{group}" if group and group != "none" else None,
            involved=frozenset(),
        )
        tier = tier_of(candidate, routing, Directory((), await plan_networks(resolver.ops, rules.key)))
        return candidate.practitioner, tier
    proposed = proposed_provider_of(task)
    if not proposed:
        raise _refuse("the Task proposes no provider: an approval must name the assignedProvider", PARAMETER)
    return proposed, tag_value(tags, "tier") or "none"


async def _check_not_involved(resolver: Resolver, practitioner: str, task: dict[str, Any]) -> None:
    """90.2.17 purpose: the opinion comes from a professional "not previously involved in the member's treatment
    plan": the reviewer cannot assign a treating practitioner, the requester, a prior opinion's author or the
    member's PCP (the same people routing excludes, whether named as Practitioner or PractitionerRole)."""
    service_request = await resolver.get(task["focus"]["reference"]) or {}
    patient = await resolver.get(task.get("for", {}).get("reference"))
    if practitioner in await involved_practitioners(resolver, service_request, patient):
        raise _refuse(
            f"assignedProvider: {practitioner!r} is already involved in the member's care (treating, requesting, "
            "a prior opinion or the member's PCP); 90.2.17: the opinion comes from a professional not previously "
            "involved in the member's treatment plan",
            PARAMETER,
        )


async def _check_consultant(
    ops: ResourceOperations, request: DecisionRequest, service_request: dict[str, Any] | None, catalog: PlanCatalog,
    rules: PlanRules,
) -> None:
    """90.2.17 procedure 5: the consultative review is "with a physician within the same specialty as the one
    being requested" (the plan's equivalents count where it accepts them, as in routing)."""
    requested = next(iter(codes_in([(service_request or {}).get("performerType")], NUCC_SYSTEM)), None)
    if not request.consultative_reviewer or not requested:
        return
    acceptable = acceptable_specialties(requested, rules, catalog.specialties)
    if not await specialties_of(ops, request.consultative_reviewer) & acceptable:
        raise _refuse(
            f"consultativeReviewer {request.consultative_reviewer!r} does not practise the requested specialty "
            f"{requested} (90.2.17 procedure 5: a physician within the same specialty)",
            PARAMETER,
        )


def _provenance(request: DecisionRequest, targets: list[StoredResource], now: datetime) -> dict[str, Any]:
    """Who decided (author) and whose consultative review informed the decision (informant, 90.2.17 step 5)."""
    agents = [("author", request.reviewer), ("informant", request.consultative_reviewer)]
    return {
        "resourceType": "Provenance",
        "id": str(uuid.uuid4()),
        "target": [{"reference": f"{t.reference}/_history/{t.version_id}"} for t in targets],
        "recorded": instant(now),
        "activity": {
            "coding": [{"system": STATUS_SYSTEM, "code": OUTCOME_STATES[request.outcome].business_status}],
            "text": "Second-opinion determination by a physician reviewer",
        },
        "agent": [
            {"type": {"coding": [{"system": PARTICIPANT_TYPE_SYSTEM, "code": kind}]}, "who": {"reference": who}}
            for kind, who in agents
            if who
        ],
    }


def _decided_task(
    task: dict[str, Any], request: DecisionRequest, tags: list[dict[str, str]], now: datetime
) -> dict[str, Any]:
    state = OUTCOME_STATES[request.outcome]
    decided = {key: value for key, value in copy_resource(task).items() if key not in ("statusReason",)}
    decided["meta"] = {"profile": task.get("meta", {}).get("profile", []), "tag": tags}
    decided["status"] = state.task_status
    decided["businessStatus"] = business_status(state.business_status, state.display)
    decided["lastModified"] = instant(now)
    if request.outcome == "deny" and request.reason:
        decided["statusReason"] = request.reason
    return decided


async def decide(
    store: ResourceStore, task_id: str, request: DecisionRequest, catalog: PlanCatalog, now: datetime
) -> Decided:
    """Record a physician's decision on the second-opinion Task ``task_id`` (404 unknown, 422 not decidable)."""

    async def run(tx: ResourceOperations) -> Decided:
        stored_task = await tx.read("Task", task_id)
        task = stored_task.resource or {}
        if not is_second_opinion_task(task):
            raise _refuse(f"Task/{task_id} is not a second-opinion Task", "Task.meta.profile")
        if task.get("status") in FINAL_TASK_STATUSES:
            raise _refuse(f"Task/{task_id} is already {task['status']}: its decision is final", "Task.status")
        case = await case_of_task(tx, task)
        if case is None or case.claim_response is None:
            raise _refuse(f"Task/{task_id} has no authorization (ClaimResponse) to decide", "Task.output")
        rules = catalog.rules_for(tag_value(task.get("meta", {}).get("tag", []), "plan"), "Task.meta.tag")
        resolver = Resolver(tx)
        await _check_references(resolver, request)
        service_request = await resolver.get(task["focus"]["reference"])
        await _check_consultant(tx, request, service_request, catalog, rules)
        approving = request.decision == "approve"
        provider, tier = await _authorized_provider(resolver, request, task, rules) if approving else (None, "none")
        state = OUTCOME_STATES[request.outcome]
        tags = with_dimension(task.get("meta", {}).get("tag", []), "decision", state.review_action)
        if request.assigned_provider:
            tags = with_dimension(tags, "tier", tier)
        previous = case.claim_response
        response = adjudicate(
            {**previous, "meta": {"profile": previous.get("meta", {}).get("profile", []), "tag": tags},
             "created": instant(now)},
            Adjudication(
                outcome=request.outcome,
                number=authorization_number_of(previous) or "",
                tier=tier,
                provider=provider,
                reason=request.reason,
                reason_text=request.reason_text,
            ),
            rules,
            rules.due_times.calendar.local_date(now),
        )
        stored_response, _ = await tx.update(response)
        stored_decided, _ = await tx.update(_decided_task(task, request, tags, now), if_match=stored_task.version_id)
        assert stored_response.resource is not None and stored_decided.resource is not None
        notices = await notify_decision(
            tx,
            rules=rules,
            task=stored_decided.resource,
            claim_response=stored_response.resource,
            now=now,
            reason=request.reason_text,
            previous_task=task,
        )
        provenance = _provenance(request, [stored_response, stored_decided], now)
        stored_provenance = await tx.create(provenance, resource_id=provenance["id"])
        assert stored_provenance.resource is not None
        return Decided(
            stored_response.resource, stored_decided.resource, service_request, notices, stored_provenance.resource
        )

    # A concurrent decision of the same Task: the loser runs again after it, and is refused as already final.
    return await store.atomically(run)

