"""HTTP route of the second-opinion intake: ``POST [base]/ServiceRequest/$submit`` (``$decide`` is in
:mod:`case_management`, the committees' report in :mod:`reports`).

HTTP only: read the body, hand it to :func:`fhir_server.second_opinion.intake.submit`, answer its Bundle.
``register(app)`` is called by ``create_app`` before the generic REST routes are added, so that
``/ServiceRequest/$submit`` wins over ``/{type}/{id}``; it also observes Task writes, so a client creating a
second-opinion Task (REST, a Bundle entry, ``load``) starts the same workflow.

The clock is ``app.state.clock`` (:mod:`fhir_server.clock`; tests fix it).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response, read_resource
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation
from fhir_server.second_opinion import intake
from fhir_server.second_opinion.codes import SUBMIT_OPERATION
from fhir_server.second_opinion.plans import PlanCatalog, load_catalog
from fhir_server.services.context import RequestContext
from fhir_server.storage.base import ResourceOperations, StoredResource


def catalog_of(app: Any) -> PlanCatalog:
    """The plan rules of the app's mappings directory (read once: :func:`load_catalog` caches them)."""
    return load_catalog(app.state.settings.mappings_dir)


async def submit(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``POST [base]/ServiceRequest/$submit``: a collection Bundle in, the decision Bundle out (200)."""
    app = request.app
    bundle = await read_resource(request, app.state.settings, "Bundle")
    answer = await intake.submit(
        bundle,
        store=app.state.store,
        validator=app.state.validator,
        catalog=catalog_of(app),
        base_url=ctx.base_url,
        now=app.state.clock,
    )
    return fhir_response(answer)


def task_workflow_observer(app: Any) -> Any:
    """The Task change observer of this app: a client's newly created second-opinion Task (contract
    "Submitting", last paragraph) runs the ``$submit`` workflow inside the same transaction."""

    async def observer(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        if previous is None and stored.resource is not None and intake.starts_workflow(stored.resource):
            await intake.start_from_task(tx, stored.resource, catalog_of(app), app.state.clock)

    return observer


def register(app: FastAPI) -> None:
    """Mount this module's routes and record its operations in ``app.state.registry``."""
    add_operation(
        app,
        "/ServiceRequest/$submit",
        {"POST": submit},
        OperationRegistration(
            name="submit",
            definition=SUBMIT_OPERATION,
            resource_types=("ServiceRequest",),
            documentation="Submit a second-opinion request Bundle; answers the authorization, the Task and the "
            "stored request",
        ),
        tags=("Second opinion",),
    )
    app.state.change_observers.add("Task", task_workflow_observer(app))
