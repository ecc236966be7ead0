"""Asking the requester for the missing information, through FHIR (90.2.17 procedure 3: "If more information is
needed the case manager will contact the treating provider to obtain additional information").

When a decision puts a case on hold for missing information, a ``CommunicationRequest`` (status ``active``) goes
to the requester (the treating or requesting provider; the member when the member asked), basedOn the
ServiceRequest, about the Task, one payload line per missing item (its words and FHIRPath), written in the same
transaction as the decision. While the case stays on hold, the open request is kept in step with what is still
missing (a new version only when that changes). The answer (a resubmission or an update that completes the
request) closes it: ``completed``, in the transaction that decides the case.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Sequence

from fhir_server.fhir.resources import copy_resource
from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery, TokenValue
from fhir_server.second_opinion.completeness import MissingItem
from fhir_server.second_opinion.references import search_every
from fhir_server.second_opinion.workflow import instant
from fhir_server.storage.base import ResourceOperations

CATEGORY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "instruction"}],
    "text": "Request for the information missing from a second-opinion request",
}


async def open_requests(ops: ResourceOperations, service_request_ref: str) -> list[dict[str, Any]]:
    """The active information requests of a second-opinion request."""
    resource_type, _, resource_id = service_request_ref.partition("/")
    return await search_every(ops, SearchQuery(resource_type="CommunicationRequest", criteria=[
        Criterion("based-on", "reference", (ReferenceValue(resource_type, resource_id),)),
        Criterion("status", "token", (TokenValue(None, "active"),)),
    ]))


def _payload(missing: Sequence[MissingItem]) -> list[dict[str, str]]:
    return [{"contentString": f"Please send {item.description} ({item.expression})."} for item in missing]


def information_request(
    task: dict[str, Any], missing: Sequence[MissingItem], recipient: str, now: datetime
) -> dict[str, Any]:
    """The CommunicationRequest naming every missing item, to ``recipient``."""
    resource: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "id": str(uuid.uuid4()),
        "status": "active",
        "category": [CATEGORY],
        "priority": task.get("priority", "routine"),
        "basedOn": [task["focus"]],
        "subject": task["for"],
        "about": [{"reference": f"Task/{task['id']}"}],
        "payload": _payload(missing),
        "authoredOn": instant(now),
        "recipient": [{"reference": recipient}],
        "reasonCode": [{"text": "Information missing: the request is on hold until it is supplied (90.2.17 procedure 3)"}],
    }
    owner = (task.get("owner") or {}).get("reference")
    if owner:
        resource["requester"] = {"reference": owner}
        resource["sender"] = {"reference": owner}
    return resource


async def follow_missing_information(
    ops: ResourceOperations,
    task: dict[str, Any],
    missing: Sequence[MissingItem],
    recipient: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Keep the case's information requests in step with its state (inside the decision's transaction): ask when
    something is missing, update the open request when what is missing changed, close it once nothing is.
    Returns the requests written."""
    written: list[dict[str, Any]] = []
    current = await open_requests(ops, task["focus"]["reference"])
    if not missing:
        for request in current:
            closed = copy_resource(request)
            closed["status"] = "completed"
            stored, _ = await ops.update(closed)
            written.append(stored.resource)
        return written
    if not recipient:
        return written
    if current:
        request = copy_resource(current[0])
        if request.get("payload") != _payload(missing):
            request["payload"] = _payload(missing)
            stored, _ = await ops.update(request)
            written.append(stored.resource)
        return written
    created = information_request(task, missing, recipient, now)
    stored = await ops.create(created, resource_id=created["id"])
    written.append(stored.resource)
    return written
