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

import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from fhir_server.errors import error, operation_outcome, unprocessable
from fhir_server.second_opinion.cases import existing_case, new_ids
from fhir_server.second_opinion.codes import TASK_CODE_SYSTEM, TASK_PROFILE, codes_in
from fhir_server.second_opinion.evaluation import RecordIds, build_records, evaluate
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.references import Resolver, WritePlan, plan_writes
from fhir_server.second_opinion.validation import Validator, check_envelope, validate_entries
from fhir_server.storage.base import ResourceOperations, ResourceStore

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
        and "approve" in codes_in([task.get("code")], TASK_CODE_SYSTEM)
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
