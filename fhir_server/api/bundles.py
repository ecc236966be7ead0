"""``POST [base]``: batch and transaction Bundles (processing lives in ``services/transactions.py``)."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response, read_resource
from fhir_server.api.rest import add_route, service_of
from fhir_server.services.context import RequestContext
from fhir_server.services.transactions import BundleProcessor


async def process_bundle(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    service = service_of(request)
    bundle = await read_resource(request, service.settings, "Bundle")
    return fhir_response(await BundleProcessor(service).process(ctx, bundle))


def register(app: FastAPI, base_path: str) -> None:
    add_route(app, base_path, "", "POST", process_bundle)
