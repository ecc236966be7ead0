"""``$submit`` orchestration, and the same workflow for a Task created through REST.

Data flows one way: envelope checks -> validation (base R4: 400; hosted profiles: 422; every entry, expressions
``Bundle.entry[i].resource...``) -> where each entry goes and what each reference means (:mod:`references`)
-> the plan's rules (unknown plan: 422) -> completeness -> routing over the stored directory -> Claim,
ClaimResponse and Task -> one store transaction -> the answer Bundle. Everything that can reject a submission
happens before the transaction, so nothing is stored from a rejected one.

Resubmission of a ServiceRequest identifier (system + value) already stored: while its Task is final, or referred
for a consultative review (90.2.17 procedure 6: the consultant's recommendation decides, and a resubmission must not
drop the case back to the first review), the stored answer comes back unchanged; while pended, the request is re-evaluated with the new Bundle and the
decision is a new version of the same Task, Claim and ClaimResponse. An update of a pended ServiceRequest
through REST resumes its case the same way (:func:`resume_on_update`). Every decision (a certification, a
redirection to Member Services) is announced to the member and the provider (:mod:`notices`) in the same
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.clock import Now
from fhir_server.errors import FhirError, error, operation_outcome, unprocessable
from fhir_server.second_opinion.authorization import adopt_claim
from fhir_server.second_opinion.cases import existing_case, new_ids
from fhir_server.second_opinion.codes import TASK_CODE_SYSTEM, TASK_PROFILE, codes_in
from fhir_server.second_opinion.evaluation import Evaluation, RecordIds, build_records, evaluate
from fhir_server.second_opinion.information_requests import follow_missing_information
from fhir_server.second_opinion.notices import notify_decision
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.references import PlannedEntry, Resolver, WritePlan, plan_writes
from fhir_server.second_opinion.validation import check_envelope, validate_entries
from fhir_server.security.tenancy import declare_tenants
from fhir_server.services.validation import ResourceValidator
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource, uniqueness_key

# ServiceRequests whose case the running request is deciding itself (a $submit resubmission), so that the
# update observer that resumes a pended case (:func:`resume_on_update`) does not decide it a second time.
_DECIDING: ContextVar[frozenset[str]] = ContextVar("second_opinion_deciding", default=frozenset())


@contextmanager
def deciding(service_request_ref: str) -> Iterator[None]:
    token = _DECIDING.set(_DECIDING.get() | {service_request_ref})
    try:
        yield
    finally:
        _DECIDING.reset(token)


def answer_bundle(base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Entry 1 the ClaimResponse, 2 the Task, 3 the ServiceRequest, then the Claim, the decision notices
    (Communications) and any warnings."""
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


@dataclass(frozen=True)
class Written:
    """The records of one decision as stored, and the notices it sent."""

    claim: dict[str, Any]
    claim_response: dict[str, Any]
    task: dict[str, Any]
    notices: list[dict[str, Any]]
    information_requests: list[dict[str, Any]]


async def write_decision(
    tx: ResourceOperations,
    evaluation: Evaluation,
    records: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    *,
    claim_exists: bool,
    response_exists: bool,
    previous_task: dict[str, Any] | None,
    now: datetime,
) -> Written:
    """Store the Claim, ClaimResponse and Task of an evaluation and notify the parties of a new decision."""
    claim, claim_response, task = records
    stored_claim = await _write(tx, claim, claim_exists)
    stored_response = await _write(tx, claim_response, response_exists)
    stored_task = await _write(tx, task, previous_task is not None)
    notices = await notify_decision(
        tx, rules=evaluation.rules, task=stored_task, claim_response=stored_response, now=now, previous_task=previous_task
    )
    asked = await follow_missing_information(
        tx, stored_task, evaluation.missing, (stored_task.get("requester") or {}).get("reference"), now
    )
    return Written(stored_claim, stored_response, stored_task, notices, asked)


def clock_start(existing_task: dict[str, Any] | None, evaluation: Evaluation, received: datetime, now: datetime) -> datetime:
    """When the decision clock starts: at receipt, or, for a case on hold that the new information completes, now
    (Cal. Health & Safety Code §1367.01(h)(1): the time counts from receipt of the information reasonably
    necessary to make the determination)."""
    if existing_task is not None and existing_task.get("status") == "on-hold" and not evaluation.missing:
        return now
    return received


# A submission that lost a race with another of the same request (409 on the derived id) is run again once: it
# then finds the winner's case and answers as a resubmission does.
SUBMIT_ATTEMPTS = 2


async def submit(bundle: Any, **options: Any) -> dict[str, Any]:
    """``POST [base]/ServiceRequest/$submit`` (see :func:`submit_once`), run again after a lost race."""
    for attempt in range(SUBMIT_ATTEMPTS):
        try:
            return await submit_once(bundle, **options)
        except FhirError as exc:
            if exc.status != 409 or attempt == SUBMIT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def submit_once(
    bundle: Any,
    *,
    store: ResourceStore,
    validator: ResourceValidator | None,
    catalog: PlanCatalog,
    base_url: str,
    now: Now,
    claim_entry: int | None = None,
) -> dict[str, Any]:
    """``POST [base]/ServiceRequest/$submit``: the answer Bundle (ClaimResponse, Task, ServiceRequest, Claim).

    ``claim_entry``: the index of an entry that is the client's own Claim for this request (a Da Vinci PAS
    client's): it becomes the case's Claim (:func:`adopt_claim`) instead of one the server makes up.

    Validation needs no store and runs first; everything that reads the store to decide (which entries exist,
    the case already running, the evaluation) runs in the transaction that writes the decision, under the locks
    of the request's identifiers: two submissions of one identifier, on any number of processes, make one case
    (the second, run after the first, answers the stored decision or re-evaluates the pended case)."""
    entries = check_envelope(bundle)
    warnings = validate_entries(validator, entries, claim_entry)
    resources, replayed = await store.atomically(lambda tx: _decide(tx, entries, catalog, now, claim_entry))
    extra = [] if replayed or not warnings else [
        {"resourceType": "OperationOutcome", "id": str(uuid.uuid4()), **operation_outcome(warnings)}
    ]
    return answer_bundle(base_url, resources + extra)


def identifier_keys(entry: PlannedEntry) -> list[str]:
    """The lock keys of an entry's business identifiers, as a conditional create on ``identifier=system|value``
    would take them."""
    resource_type = entry.resource["resourceType"]
    return [
        uniqueness_key(resource_type, [("identifier", f"{identifier.get('system') or ''}|{identifier['value']}")])
        for identifier in entry.resource.get("identifier", ())
        if isinstance(identifier, dict) and identifier.get("value")
    ]


async def _decide(
    tx: ResourceOperations, entries: list[dict[str, Any]], catalog: PlanCatalog, now: Now,
    claim_entry: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One run of a submission in ``tx``: the answer's resources, and whether they are a stored answer replayed."""
    plan: WritePlan = await plan_writes(tx, entries)
    request_entry = plan.entries[0]
    existing = await existing_case(tx, request_entry.reference) if request_entry.exists else None
    if existing and (existing.final or existing.held_for_consultation) and existing.claim_response:
        stored = Resolver(tx)
        records = [existing.claim_response, existing.task, await stored.get(request_entry.reference),
                   await stored.get(f"Claim/{existing.ids.claim}")]
        return [r for r in records if r], True
    locked = [request_entry, *(entry for entry in plan.entries[1:] if not entry.exists)]
    for key in sorted({key for entry in locked for key in identifier_keys(entry)}):
        await tx.lock(key)

    submitted_claim = plan.entries[claim_entry] if claim_entry is not None else None
    moment = now()
    received = existing.received if existing else moment
    evaluation = await evaluate(Resolver(tx, plan), request_entry.resource, catalog)
    ids = existing.ids if existing else new_ids(submitted_claim.resource["id"] if submitted_claim else None)
    claim, claim_response, task = build_records(
        evaluation, request_entry.resource, request_entry.reference, ids, received, moment,
        existing.task if existing else None,
        clock_from=clock_start(existing.task if existing else None, evaluation, received, moment),
    )
    if submitted_claim is not None:
        claim = adopt_claim(submitted_claim.resource, claim)
    # The case is the deciding group's too (the Task names it).
    await declare_tenants(tx, [*(e.resource for e in plan.entries), claim, claim_response, task])
    with deciding(request_entry.reference):
        written = {
            e.index: await _write(tx, e.resource, e.exists) for e in plan.entries if e is not submitted_claim
        }
        decision = await write_decision(
            tx, evaluation, (claim, claim_response, task),
            claim_exists=existing is not None or bool(submitted_claim and submitted_claim.exists),
            response_exists=existing is not None and existing.claim_response is not None,
            previous_task=existing.task if existing else None,
            now=moment,
        )
    return [decision.claim_response, decision.task, written[0], decision.claim, *decision.notices,
            *decision.information_requests], False


# ---------------------------------------------------------------- a Task created through REST


def starts_workflow(task: dict[str, Any]) -> bool:
    """A client's Task that asks for the second-opinion workflow (contract "Submitting", last paragraph)."""
    return (
        TASK_PROFILE in task.get("meta", {}).get("profile", ())
        and task.get("status") == "requested"
        and task.get("intent") == "order"
        and "approve" in codes_in([task.get("code")], TASK_CODE_SYSTEM)
        and str(task.get("focus", {}).get("reference", "")).startswith("ServiceRequest/")
    )


async def start_from_task(
    tx: ResourceOperations, task: dict[str, Any], catalog: PlanCatalog, now: Now
) -> dict[str, Any]:
    """Run the workflow for a Task just created (inside its transaction); returns the Task's new version."""
    focus = task["focus"]["reference"]
    resolver = Resolver(tx)
    service_request = await resolver.get(focus)
    if service_request is None:
        raise unprocessable([error("not-found", f"Task.focus {focus!r} names no stored ServiceRequest", "Task.focus")])
    moment = now()
    evaluation = await evaluate(resolver, service_request, catalog)
    ids = RecordIds(str(uuid.uuid4()), str(uuid.uuid4()), task["id"])
    records = build_records(evaluation, service_request, focus, ids, moment, moment, task)
    await declare_tenants(tx, records)  # the deciding group's too, from the first record written
    written = await write_decision(
        tx, evaluation, records, claim_exists=False, response_exists=False, previous_task=task, now=moment
    )
    return written.task


# ---------------------------------------------------------------- a pended request updated through REST


async def resume_on_update(
    tx: ResourceOperations,
    stored: StoredResource,
    previous: StoredResource | None,
    catalog: PlanCatalog,
    now: Now,
) -> None:
    """Change observer of ServiceRequest: the provider answers a pended case (Task ``on-hold``) by updating the
    request (issue 5 "Pended for information"); the case is re-evaluated inside the update's transaction and
    its decision becomes a new version of the same Claim, ClaimResponse and Task, as a resubmission's would."""
    if previous is None or stored.resource is None or stored.reference in _DECIDING.get():
        return
    case = await existing_case(tx, stored.reference)
    if case is None or case.task.get("status") != "on-hold":
        return
    moment = now()
    evaluation = await evaluate(Resolver(tx), stored.resource, catalog)
    records = build_records(
        evaluation, stored.resource, stored.reference, case.ids, case.received, moment, case.task,
        clock_from=clock_start(case.task, evaluation, case.received, moment),
    )
    await write_decision(
        tx, evaluation, records,
        claim_exists=True, response_exists=case.claim_response is not None, previous_task=case.task, now=moment,
    )
