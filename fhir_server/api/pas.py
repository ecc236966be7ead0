"""HTTP routes of Da Vinci PAS 2.x: ``POST [base]/Claim/$submit`` and ``POST [base]/Claim/$inquire``.

HTTP only: ``$submit`` maps the PAS request Bundle to the second-opinion intake's input
(:mod:`fhir_server.second_opinion.pas`), runs the same :func:`intake.submit` as ``ServiceRequest/$submit`` and
maps its answer back to a PAS response Bundle; ``$inquire`` is :func:`inquiry.inquire`. Both are declared in
the CapabilityStatement with PAS's OperationDefinition canonicals (the server's own definitions, which say
what it restricts, are in profiles/ and name PAS's as their ``base``). ``register(app)`` comes before the
generic REST routes so ``/Claim/$submit`` is not taken for a read.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response, read_resource
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation
from fhir_server.api.second_opinion import catalog_of
from fhir_server.errors import FhirError
from fhir_server.second_opinion import intake, inquiry, pas
from fhir_server.second_opinion.codes import PAS_INQUIRE_OPERATION, PAS_SUBMIT_OPERATION
from fhir_server.second_opinion.references import read_or_none
from fhir_server.second_opinion.workflow import instant
from fhir_server.services.context import RequestContext


async def pas_submit(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``POST [base]/Claim/$submit``: a PAS request Bundle in, a PAS response Bundle out (200)."""
    app = request.app
    bundle = await read_resource(request, app.state.settings, "Bundle")
    pas_request = await pas.read_request(bundle, app.state.validator, app.state.store)
    try:
        answer = await intake.submit(
            pas_request.intake_bundle,
            store=app.state.store,
            validator=app.state.validator,
            catalog=catalog_of(app),
            base_url=ctx.base_url,
            now=app.state.clock,
            claim_entry=pas_request.claim_entry,
        )
    except FhirError as problem:
        raise pas.in_request_terms(problem, pas_request.origin) from None
    store = app.state.store
    return fhir_response(await pas.response_bundle(
        answer, pas_request.origin, ctx.base_url, lambda reference: read_or_none(store, reference),
        instant(app.state.clock()),
    ))


async def pas_inquire(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``POST [base]/Claim/$inquire``: a PAS inquiry Bundle in, the matching cases' authorizations out (200)."""
    app = request.app
    bundle = await read_resource(request, app.state.settings, "Bundle")
    return fhir_response(await inquiry.inquire(
        bundle,
        store=app.state.store,
        validator=app.state.validator,
        base_url=ctx.base_url,
        timestamp=instant(app.state.clock()),
    ))


# (path, handler, operation name, canonical, documentation) of each PAS operation this server hosts.
OPERATIONS: tuple[tuple[str, Any, str, str, str], ...] = (
    ("/Claim/$submit", pas_submit, "submit", PAS_SUBMIT_OPERATION,
     "Da Vinci PAS: submit a prior-authorization request Bundle for a second opinion (the Claim's item names the "
     "second-opinion ServiceRequest); answers a PAS response Bundle"),
    ("/Claim/$inquire", pas_inquire, "inquire", PAS_INQUIRE_OPERATION,
     "Da Vinci PAS: the current authorization of the requesting provider's second-opinion cases an inquiry Bundle "
     "names (Claim identifier or item trace number)"),
)


def register(app: FastAPI) -> None:
    """Mount both operations and declare them (with PAS's canonicals) in ``app.state.registry``."""
    for path, handler, name, definition, documentation in OPERATIONS:
        add_operation(
            app,
            path,
            {"POST": handler},
            OperationRegistration(name=name, definition=definition, resource_types=("Claim",),
                                  documentation=documentation),
            tags=("Da Vinci PAS",),
        )
