"""The FHIR RESTful API on single types: create, read, vread, update, delete, history and search.

HTTP only: each handler turns the request into service calls and the result into a FHIR answer. Routes are
added from a table, under the configured base path; ``_history`` and ``_search`` come before ``{id}`` so
they are not taken for ids.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.routing import FhirRoute
from fhir_server.api.media import (
    fhir_response,
    media_type_of,
    parse_json,
    read_body,
    read_resource,
    read_search_form,
    search_parameters,
    version_headers,
)
from fhir_server.errors import bad_request, information, operation_outcome, unsupported_media_type
from fhir_server.services.context import RequestContext
from fhir_server.services.patching import JSON_PATCH, MERGE_PATCH, PATCH_MEDIA_TYPES, parse_patch, patch_resource
from fhir_server.services.queries import history_bundle_for, search_bundle, system_search_bundle
from fhir_server.services.resources import ResourceService, WriteResult, parse_version_tag
from fhir_server.storage.base import StoredResource


def service_of(request: Request) -> ResourceService:
    return request.app.state.services


def require_type(request: Request, resource_type: str) -> str:
    """404 (not-supported) for a type that is not an R4 resource type."""
    service_of(request).require_type(resource_type)
    return resource_type


def resource_response(stored: StoredResource, status: int = 200) -> Response:
    return fhir_response(stored.resource, status, version_headers(stored))


def write_response(ctx: RequestContext, result: WriteResult) -> Response:
    """201/200 with Location, ETag and Last-Modified; the body the client's ``Prefer`` asks for."""
    stored = result.stored
    headers = version_headers(stored)
    headers["Location"] = ctx.url_of(f"{stored.reference}/_history/{stored.version_id}")
    return fhir_response(ctx.preferred_body(stored.resource, result.warnings), result.status, headers)


# -- handlers ----------------------------------------------------------------------------------------------------
async def create(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    require_type(request, resource_type)
    service = service_of(request)
    resource = await read_resource(request, service.settings, resource_type)
    result = await service.create(resource, if_none_exist=request.headers.get("if-none-exist"))
    return write_response(ctx, result)


async def read(
    resource_type: str, resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    require_type(request, resource_type)
    return resource_response(await service_of(request).read(resource_type, resource_id))


async def vread(
    resource_type: str, resource_id: str, version_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    require_type(request, resource_type)
    version = parse_version_tag(version_id, "version id")
    return resource_response(await service_of(request).vread(resource_type, resource_id, version))


async def update(
    resource_type: str, resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    require_type(request, resource_type)
    service = service_of(request)
    resource = await read_resource(request, service.settings, resource_type)
    if_match = parse_version_tag(request.headers.get("if-match"))
    result = await service.update(resource_type, resource_id, resource, if_match=if_match)
    return write_response(ctx, result)


async def patch(
    resource_type: str, resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    """``PATCH [base]/Type/id`` with a JSON Patch or a JSON Merge Patch: an update of the patched current version
    (the same validation and version checks as ``PUT``)."""
    require_type(request, resource_type)
    service = service_of(request)
    media_type = media_type_of(request.headers.get("content-type", ""))
    if media_type not in PATCH_MEDIA_TYPES:
        raise unsupported_media_type(f"PATCH takes a JSON Patch ({JSON_PATCH}) or a JSON Merge Patch "
                                     f"({MERGE_PATCH}) document")
    document = parse_json(await read_body(request, service.settings.max_body_bytes), service.settings)
    if_match = parse_version_tag(request.headers.get("if-match"))
    result = await patch_resource(service, resource_type, resource_id, parse_patch(media_type, document), if_match)
    return write_response(ctx, result)


async def conditional_update(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``PUT [base]/Type?query``."""
    require_type(request, resource_type)
    service = service_of(request)
    resource = await read_resource(request, service.settings, resource_type)
    result = await service.conditional_update(resource_type, request.url.query, resource)
    return write_response(ctx, result)


async def delete(
    resource_type: str, resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    require_type(request, resource_type)
    if_match = parse_version_tag(request.headers.get("if-match"))
    marker = await service_of(request).delete(resource_type, resource_id, if_match=if_match)
    return delete_response(ctx, f"{resource_type}/{resource_id}", marker)


async def conditional_delete(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``DELETE [base]/Type?query`` (single match)."""
    require_type(request, resource_type)
    marker = await service_of(request).conditional_delete(resource_type, request.url.query)
    return delete_response(ctx, f"{resource_type}?{request.url.query}", marker)


def delete_response(ctx: RequestContext, what: str, marker: StoredResource | None) -> Response:
    """204, or 200 with an OperationOutcome under ``Prefer: return=OperationOutcome``."""
    headers = {"ETag": marker.etag} if marker is not None else {}
    if ctx.prefer_return == "OperationOutcome":
        outcome = operation_outcome([information("informational", f"{what}: deleted")])
        return fhir_response(outcome, 200, headers)
    return Response(status_code=204, headers=headers)


async def search_get(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    require_type(request, resource_type)
    return await _search(request, ctx, resource_type, request.query_params.multi_items())


async def search_post(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    require_type(request, resource_type)
    params = await read_search_form(request, service_of(request).settings)
    return await _search(request, ctx, resource_type, params)


async def _search(request: Request, ctx: RequestContext, resource_type: str, params: list[tuple[str, str]]) -> Response:
    service = service_of(request)
    bundle = await search_bundle(service.store, service.settings, ctx, resource_type, search_parameters(params))
    return fhir_response(bundle)


async def search_system(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    """``GET [base]?_type=A,B&...``: search across the named types."""
    params = search_parameters(request.query_params.multi_items())
    # each type once: a repeated one would list its matches twice, and cost a search per repetition
    resource_types = list(dict.fromkeys(
        name for value in request.query_params.getlist("_type") for name in value.split(",") if name
    ))
    if not resource_types:
        raise bad_request("a search at the base needs _type naming the resource types to search", "_type")
    for resource_type in resource_types:
        require_type(request, resource_type)
    service = service_of(request)
    bundle = await system_search_bundle(service.store, service.settings, ctx, resource_types, params)
    return fhir_response(bundle)


async def history_instance(
    resource_type: str, resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    require_type(request, resource_type)
    return await _history(request, ctx, resource_type, resource_id)


async def history_type(resource_type: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    require_type(request, resource_type)
    return await _history(request, ctx, resource_type)


async def history_system(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    return await _history(request, ctx)


async def _history(
    request: Request, ctx: RequestContext, resource_type: str | None = None, resource_id: str | None = None
) -> Response:
    service = service_of(request)
    params = search_parameters(request.query_params.multi_items())
    bundle = await history_bundle_for(service.store, service.settings, ctx, params, resource_type, resource_id)
    return fhir_response(bundle)


# (path under the base, HTTP method, handler). Order matters: literal segments before ``{resource_id}``.
ROUTES: tuple[tuple[str, str, Any], ...] = (
    ("", "GET", search_system),
    ("/_history", "GET", history_system),
    ("/{resource_type}", "GET", search_get),
    ("/{resource_type}", "POST", create),
    ("/{resource_type}", "PUT", conditional_update),
    ("/{resource_type}", "DELETE", conditional_delete),
    ("/{resource_type}/_search", "POST", search_post),
    ("/{resource_type}/_history", "GET", history_type),
    ("/{resource_type}/{resource_id}", "GET", read),
    ("/{resource_type}/{resource_id}", "PUT", update),
    ("/{resource_type}/{resource_id}", "PATCH", patch),
    ("/{resource_type}/{resource_id}", "DELETE", delete),
    ("/{resource_type}/{resource_id}/_history", "GET", history_instance),
    ("/{resource_type}/{resource_id}/_history/{version_id}", "GET", vread),
)


def add_route(app: FastAPI, base_path: str, path: str, method: str, handler: Any, tags: tuple[str, ...] = ("FHIR REST",)) -> None:
    """Add ``handler`` at ``base_path + path``; the base itself also answers with a trailing slash (a redirect
    would lose a POST body)."""
    app.router.add_api_route(base_path + path or "/", handler, methods=[method], name=handler.__name__,
                             tags=list(tags), response_class=Response, route_class_override=FhirRoute)
    if not path and base_path:
        app.router.add_api_route(base_path + "/", handler, methods=[method], include_in_schema=False,
                                 response_class=Response, route_class_override=FhirRoute)


def add_operation(
    app: FastAPI,
    path: str,
    handlers: dict[str, Any],
    registration: OperationRegistration,
    tags: tuple[str, ...] = ("FHIR operations",),
) -> None:
    """Mount an operation's handlers (method -> handler) at ``[base] + path`` and declare it for ``/metadata``,
    so a route and its CapabilityStatement entry cannot drift apart. Call before :func:`register`."""
    base_path = app.state.settings.normalized_base_path()
    for method, handler in handlers.items():
        add_route(app, base_path, path, method, handler, tags)
    app.state.registry.add_operation(registration)


def register(app: FastAPI, base_path: str) -> None:
    """Add the REST routes under ``base_path`` (after any operation routes, which must match first)."""
    for path, method, handler in ROUTES:
        add_route(app, base_path, path, method, handler)
