"""HTTP side of case management: ``POST [base]/Task/{id}/$decide`` and the observers that carry a case on.

HTTP only: read the Parameters, hand them to :mod:`fhir_server.second_opinion.decisions`, answer its Bundle.
``register(app)`` also wires the domain into writes made through REST and transactions:
- change observers on DiagnosticReport and DocumentReference link a consultation report to its case and
  send it to the member's PCP (:mod:`fhir_server.second_opinion.consultations`);
- a ServiceRequest change observer resumes a pended case when the provider updates the request
  (:func:`fhir_server.second_opinion.intake.resume_on_update`), whichever way the update arrives (REST PUT,
  a transaction entry).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response
from fhir_server.api.parameters import read_parameters
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation
from fhir_server.api.second_opinion import catalog_of
from fhir_server.second_opinion import consultations, decisions, intake
from fhir_server.second_opinion.codes import CANON
from fhir_server.services.context import RequestContext
from fhir_server.storage.base import ResourceOperations, StoredResource

DECIDE_OPERATION = f"{CANON}/OperationDefinition/Task-decide"
REPORT_TYPES = tuple(consultations.REPORT_KINDS)


async def decide(task_id: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``POST [base]/Task/{id}/$decide``: Parameters in; a collection Bundle out (ClaimResponse, Task,
    ServiceRequest, the notices, the Provenance of the decision)."""
    decided = await decide_task(request.app, task_id, await read_parameters(request), ctx)
    return fhir_response(intake.answer_bundle(ctx.base_url, decided.resources()))


async def decide_task(app: Any, task_id: str, parameters: dict[str, Any], ctx: RequestContext) -> decisions.Decided:
    """``$decide`` on ``task_id`` with these Parameters, by the caller of ``ctx``: the one path every decision takes
    (this operation, and the review form of the pages under ``/ui``)."""
    decision = decisions.reviewer_for(ctx, decisions.parse_decision(parameters))
    return await decisions.decide(app.state.store, task_id, decision, catalog_of(app), app.state.clock())


def consultation_report_observer(app: Any) -> Any:
    """The change observer linking a consultation report (created or updated by any write path) to an approved
    second opinion and sending it to the PCP (90.2.17 procedure 7)."""

    async def observer(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        await consultations.link_report(tx, stored, catalog_of(app), app.state.clock())

    return observer


def resume_observer(app: Any) -> Any:
    """The ServiceRequest change observer of this app (its plans and clock)."""

    async def observer(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        await intake.resume_on_update(tx, stored, previous, catalog_of(app), app.state.clock)

    return observer


def register(app: FastAPI) -> None:
    """Mount ``$decide``, record it for ``/metadata``, and hook consultation reports and pended-request updates."""
    add_operation(
        app,
        "/Task/{task_id}/$decide",
        {"POST": decide},
        OperationRegistration(
            name="decide",
            definition=DECIDE_OPERATION,
            resource_types=("Task",),
            instance=True,
            documentation=(
                "A physician reviewer approves, denies or refers (consultative review) a second-opinion request "
                "in review; "
                "the member and the provider are notified"
            ),
        ),
        tags=("Second opinion",),
    )
    for resource_type in REPORT_TYPES:
        app.state.change_observers.add(resource_type, consultation_report_observer(app))
    app.state.change_observers.add("ServiceRequest", resume_observer(app))
