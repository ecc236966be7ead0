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
Either way :mod:`reviewers` checks that physician (90.2.17 procedures 4-5: the CMO or a physician designee of the
deciding organization, not the requester, not involved); an ``assignedProvider`` passes routing's own qualification
rules; and every decision is documented on the review form (:mod:`review_forms`, procedure 5). A case on hold for
missing information is not decided (procedure 4: "The completed referral"); a case referred for a consultative
review is decided by the consultant's ``recommend`` / ``not-recommend`` (procedure 6).
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
from fhir_server.second_opinion.codes import NUCC_SYSTEM, STATUS_SYSTEM, TASK_INPUT_SYSTEM, codes_in
from fhir_server.second_opinion.directory import candidate_from, load_directory, specialties_of
from fhir_server.second_opinion.evaluation import practitioner_of, routing_request
from fhir_server.second_opinion.notices import business_status_of, concept_text, notify_decision, proposed_provider_of
from fhir_server.second_opinion.plans import PlanCatalog, PlanRules
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.review_forms import review_form, with_review_output
from fhir_server.second_opinion.reviewers import check_reviewer
from fhir_server.second_opinion.routing import acceptable_specialties, disqualifications, qualified_candidates, tier_of
from fhir_server.second_opinion.workflow import FINAL_TASK_STATUSES, OUTCOME_STATES, business_status, instant
from fhir_server.services.context import RequestContext
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource

# approve and deny determine the request; refer (90.2.17 procedure 5) sends it to a consultative reviewer first,
# whose recommendation then decides (procedure 6: recommended -> approved, not recommended -> denied).
DECISION_OUTCOMES = {
    "approve": "certify",
    "deny": "deny",
    "refer": "consultative-review",
    "recommend": "certify",
    "not-recommend": "deny",
}
CONSULTANT_DECISIONS = frozenset({"recommend", "not-recommend"})
CONSULTANT_INPUT = "consultative-reviewer"  # Task.input naming the physician a case is referred to
NEEDS_REASON = frozenset({"deny", "not-recommend"})
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
    # 90.2.17 procedure 5: "document his findings and recommendations on the form" (every decision).
    "findings": ParameterSpec(("valueString",), required=True),
    "recommendation": ParameterSpec(("valueString",)),
}


@dataclass(frozen=True)
class DecisionRequest:
    """A reviewer's decision as the Parameters state it (already checked for shape)."""

    decision: str  # a DECISION_OUTCOMES key
    reviewer: str  # "Practitioner/id" or "PractitionerRole/id"
    reason: dict[str, Any] | None = None  # CodeableConcept (a string reason becomes its text)
    assigned_provider: str | None = None  # "PractitionerRole/id"
    consultative_reviewer: str | None = None
    findings: str = ""
    recommendation: str | None = None

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
        issues.append(error(
            "code-invalid", f"decision must be one of {', '.join(DECISION_OUTCOMES)}, not {decision!r}", PARAMETER
        ))
    if decision in NEEDS_REASON and values.get("reason") is None:
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
        findings=values.get("findings", ""),
        recommendation=values.get("recommendation"),
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
    review_form: dict[str, Any]

    def resources(self) -> list[dict[str, Any]]:
        first = [self.claim_response, self.task] + ([self.service_request] if self.service_request else [])
        return first + self.notices + [self.provenance, self.review_form]


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
    resolver: Resolver, request: DecisionRequest, task: dict[str, Any], rules: PlanRules, catalog: PlanCatalog
) -> tuple[str, str]:
    """The Practitioner an approval authorizes and its routing tier: the assigned PractitionerRole's, once it
    passes the checks routing applies (:func:`check_assigned_provider`), else the Task's proposal."""
    tags = task.get("meta", {}).get("tag", [])
    if request.assigned_provider:
        return await check_assigned_provider(resolver, request.assigned_provider, task, rules, catalog)
    proposed = proposed_provider_of(task)
    if not proposed:
        raise _refuse("the Task proposes no provider: an approval must name the assignedProvider", PARAMETER)
    return proposed, tag_value(tags, "tier") or "none"


async def check_assigned_provider(
    resolver: Resolver, assigned: str, task: dict[str, Any], rules: PlanRules, catalog: PlanCatalog
) -> tuple[str, str]:
    """A reviewer's ``assignedProvider`` passes the checks routing applies (one rule list,
    :func:`~routing.disqualifications`): an active role of the requested (or, where the plan allows, equivalent;
    for primary care age-appropriate) specialty, board-certified where the plan requires it, not involved in the
    member's care (90.2.17 purpose: "not previously involved in the member's treatment plan"), and in network
    unless no qualified in-network professional exists (Health Net "limit referrals to its network providers if
    criteria ... are met within the network"; 90.2.17 6b). Returns the Practitioner and its tier."""
    role = await resolver.get(assigned) or {}
    candidate = candidate_from(role, await resolver.get(role.get("practitioner", {}).get("reference")))
    service_request = await resolver.get(task["focus"]["reference"]) or {}
    patient = await resolver.get(task.get("for", {}).get("reference"))
    group = tag_value(task.get("meta", {}).get("tag", []), "group")
    member_group = f"Organization/{group}" if group and group != "none" else None
    routing = await routing_request(resolver, service_request, patient, member_group)
    problems = disqualifications(candidate, routing, rules, catalog.specialties)
    directory = await load_directory(
        resolver.ops, rules.key,
        acceptable_specialties(routing.specialty, rules, catalog.specialties, routing.member_age),
        rules.expert_panel_identifier,
    )
    tier = tier_of(candidate, routing, directory)
    if not problems and tier == "out-of-network":
        in_network = [
            c for c in qualified_candidates(routing, rules, catalog.specialties, directory)
            if tier_of(c, routing, directory) != "out-of-network"
        ]
        if in_network:
            problems.append(
                f"the professional is out of network while {in_network[0].practitioner!r}, a qualified in-network "
                "professional, is available"
            )
    if problems:
        involved = "; 90.2.17: the opinion comes from a professional not previously involved in the member's " \
            "treatment plan" if any("involved" in p for p in problems) else ""
        raise _refuse(f"assignedProvider {assigned!r} cannot be authorized: {'; '.join(problems)}{involved}", PARAMETER)
    return candidate.practitioner, tier


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


def _provenance(
    request: DecisionRequest, targets: list[StoredResource], form: StoredResource, now: datetime
) -> dict[str, Any]:
    """Who decided (author), whose consultative review informed the decision (informant, 90.2.17 step 5), and the
    review form that documents it (entity, procedure 5)."""
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
        "entity": [{"role": "source", "what": {"reference": f"{form.reference}/_history/{form.version_id}"}}],
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
    if request.decision == "refer" and request.consultative_reviewer:
        decided["input"] = [
            *(i for i in decided.get("input", ()) if CONSULTANT_INPUT not in codes_in([i.get("type")], TASK_INPUT_SYSTEM)),
            {"type": {"coding": [{"system": TASK_INPUT_SYSTEM, "code": CONSULTANT_INPUT}]},
             "valueReference": {"reference": request.consultative_reviewer}},
        ]
    return decided


def consultant_of(task: dict[str, Any]) -> str | None:
    """The consultative reviewer a referred case waits for (Task.input consultative-reviewer)."""
    for item in task.get("input", ()):
        if CONSULTANT_INPUT in codes_in([item.get("type")], TASK_INPUT_SYSTEM):
            return (item.get("valueReference") or {}).get("reference")
    return None


async def _check_who_decides(
    resolver: Resolver, request: DecisionRequest, task: dict[str, Any], rules: PlanRules
) -> None:
    """The CMO or a physician designee approves, denies or refers (:func:`~reviewers.check_reviewer`); only the
    consultative reviewer the case was referred to recommends or not (90.2.17 procedure 6), and only then."""
    if request.decision not in CONSULTANT_DECISIONS:
        await check_reviewer(resolver, request.reviewer, task, rules, PARAMETER)
        if request.decision == "refer" and request.consultative_reviewer:  # a physician, not involved either
            await check_reviewer(
                resolver, request.consultative_reviewer, task, rules, PARAMETER, at_owner=False,
                role="consultativeReviewer",
            )
        return
    consultant = consultant_of(task)
    if business_status_of(task) != "consultative-review" or not consultant:
        raise _refuse(
            f"decision {request.decision!r} is the consultative reviewer's, and this case is not referred for a "
            "consultative review (90.2.17 procedures 5-6)", "Task.businessStatus",
        )
    if await practitioner_of(resolver, request.reviewer) != await practitioner_of(resolver, consultant):
        raise _refuse(
            f"reviewer {request.reviewer!r} is not {consultant!r}, the consultative reviewer this case was referred to",
            PARAMETER,
        )
    await check_reviewer(resolver, request.reviewer, task, rules, PARAMETER, at_owner=False)


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
        if task.get("status") == "on-hold":
            raise _refuse(
                f"Task/{task_id} is on hold for missing information: only a completed referral is presented for a "
                "determination (90.2.17 procedures 3-4); the provider completes it first",
                "Task.status",
            )
        case = await case_of_task(tx, task)
        if case is None or case.claim_response is None:
            raise _refuse(f"Task/{task_id} has no authorization (ClaimResponse) to decide", "Task.output")
        rules = catalog.rules_for(tag_value(task.get("meta", {}).get("tag", []), "plan"), "Task.meta.tag")
        resolver = Resolver(tx)
        await _check_references(resolver, request)
        await _check_who_decides(resolver, request, task, rules)
        service_request = await resolver.get(task["focus"]["reference"])
        await _check_consultant(tx, request, service_request, catalog, rules)
        approving = request.outcome == "certify"
        provider, tier = await _authorized_provider(resolver, request, task, rules, catalog) if approving else (None, "none")
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
        form = review_form(
            task=task, determination=request.decision, reviewer=request.reviewer, findings=request.findings,
            recommendation=request.recommendation, reason=request.reason_text, now=now,
        )
        stored_form = await tx.create(form, resource_id=form["id"])
        stored_response, _ = await tx.update(response)
        decided_task = with_review_output(_decided_task(task, request, tags, now), stored_form.reference)
        stored_decided, _ = await tx.update(decided_task, if_match=stored_task.version_id)
        assert stored_response.resource is not None and stored_decided.resource is not None
        notices = await notify_decision(
            tx,
            rules=rules,
            task=stored_decided.resource,
            claim_response=stored_response.resource,
            now=now,
            reason=request.reason,
            previous_task=task,
        )
        provenance = _provenance(request, [stored_response, stored_decided], stored_form, now)
        stored_provenance = await tx.create(provenance, resource_id=provenance["id"])
        assert stored_provenance.resource is not None and stored_form.resource is not None
        return Decided(
            stored_response.resource, stored_decided.resource, service_request, notices, stored_provenance.resource,
            stored_form.resource,
        )

    # A concurrent decision of the same Task: the loser runs again after it, and is refused as already final.
    return await store.atomically(run)

