"""Read-many interactions: search (type level) and history (instance, type, system), as Bundles."""

from __future__ import annotations

from typing import Any

from fhir_server.search.includes import resolve_includes
from fhir_server.search.query import parse_search
from fhir_server.services.context import RequestContext
from fhir_server.services.result_bundles import (
    PageRequest,
    history_bundle,
    page_params,
    parse_instant_param,
    parse_int_param,
    searchset_bundle,
)
from fhir_server.settings import Settings
from fhir_server.storage.base import ResourceOperations


async def search_bundle(
    ops: ResourceOperations,
    settings: Settings,
    ctx: RequestContext,
    resource_type: str,
    params: list[tuple[str, str]],
) -> dict[str, Any]:
    """Run ``GET [base]/{resource_type}?params`` and answer the searchset Bundle.

    Unknown parameters are ignored and named in an outcome entry, or a 400 under ``Prefer: handling=strict``
    (``parse_search`` decides, from ``ctx.strict_handling``)."""
    query = parse_search(
        resource_type,
        params,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        strict=ctx.strict_handling,
    )
    summary_count = query.summary == "count"
    page = await ops.search(query)
    included = []
    if page.items and (query.includes or query.revincludes):
        included = await resolve_includes(ops, query, page.items)
    page_request = PageRequest(resource_type, page_params(params, set(query.ignored)), query.count, query.offset)
    return searchset_bundle(
        ctx,
        page,
        included,
        page_request,
        ignored=query.ignored,
        elements=query.elements,
        summary_count=summary_count,
    )


async def history_bundle_for(
    ops: ResourceOperations,
    settings: Settings,
    ctx: RequestContext,
    params: list[tuple[str, str]],
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """``_history`` of one resource, one type, or the system, paged by ``_count`` / ``_offset``."""
    count = min(parse_int_param(params, "_count", settings.default_page_size), settings.max_page_size)
    offset = parse_int_param(params, "_offset", 0)
    since = parse_instant_param(params, "_since")
    page = await ops.history(resource_type, resource_id, since=since, count=count, offset=offset)
    path = "/".join(part for part in (resource_type, resource_id, "_history") if part)
    return history_bundle(ctx, page, PageRequest(path, page_params(params), count, offset))
