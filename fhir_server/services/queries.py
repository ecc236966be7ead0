"""Read-many interactions: search (type and system level) and history (instance, type, system), as Bundles."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fhir_server.search.includes import resolve_includes
from fhir_server.search.query import SearchQuery, parse_search
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
from fhir_server.storage.base import Page, ResourceOperations, StoredResource


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
    return await _searchset(ops, settings, ctx, [resource_type], params, resource_type)


async def system_search_bundle(
    ops: ResourceOperations,
    settings: Settings,
    ctx: RequestContext,
    resource_types: list[str],
    params: list[tuple[str, str]],
) -> dict[str, Any]:
    """``GET [base]?_type=A,B&params``: the types' matches one type after the other (in ``_type`` order),
    paged as one list; ``_sort`` orders within each type."""
    return await _searchset(ops, settings, ctx, resource_types, params, "")


async def _searchset(
    ops: ResourceOperations,
    settings: Settings,
    ctx: RequestContext,
    resource_types: list[str],
    params: list[tuple[str, str]],
    path: str,
) -> dict[str, Any]:
    search_params = [(name, value) for name, value in params if name != "_type"]
    queries = [
        parse_search(
            resource_type,
            search_params,
            default_count=settings.default_page_size,
            max_count=settings.max_page_size,
            strict=ctx.strict_handling,
            limits=settings.search_limits(),
        )
        for resource_type in resource_types
    ]
    first = queries[0]
    page, page_parts = await _run_queries(ops, queries)
    included: list[StoredResource] = []
    for query, items in page_parts:
        if items and (query.includes or query.revincludes):
            included += await resolve_includes(ops, query, items)
    ignored = list(dict.fromkeys(name for query in queries for name in query.ignored))
    page_request = PageRequest(path, page_params(params, set(ignored)), first.count, first.offset)
    return searchset_bundle(
        ctx,
        page,
        included,
        page_request,
        ignored=ignored,
        elements=first.elements,
        summary_count=first.summary == "count",
    )


async def _run_queries(
    ops: ResourceOperations, queries: list[SearchQuery]
) -> tuple[Page, list[tuple[SearchQuery, list[StoredResource]]]]:
    """One page over the concatenated results of ``queries`` (one query: a plain search, no counting)."""
    if len(queries) == 1:
        page = await ops.search(queries[0])
        return page, [(queries[0], page.items)]
    count, offset = queries[0].count, queries[0].offset
    totals = [(await ops.search(replace(query, count=0, offset=0, total="accurate"))).total or 0 for query in queries]
    items: list[StoredResource] = []
    parts: list[tuple[SearchQuery, list[StoredResource]]] = []
    start = 0
    for query, total in zip(queries, totals):
        low, high = max(offset, start), min(offset + count, start + total)
        if low < high:
            found = (await ops.search(replace(query, offset=low - start, count=high - low, total="none"))).items
            items += found
            parts.append((query, found))
        start += total
    return Page(items, total=sum(totals), has_more=offset + count < sum(totals)), parts


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
    offset = parse_int_param(params, "_offset", 0, maximum=settings.max_search_offset)
    since = parse_instant_param(params, "_since")
    page = await ops.history(resource_type, resource_id, since=since, count=count, offset=offset)
    path = "/".join(part for part in (resource_type, resource_id, "_history") if part)
    return history_bundle(ctx, page, PageRequest(path, page_params(params), count, offset))
