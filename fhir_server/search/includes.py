"""``_include`` and ``_revinclude``: the resources a searchset carries besides its matches.

Generic over stores: it only reads and searches through :class:`~fhir_server.storage.base.ResourceOperations`,
batching so that each include costs one search per referenced type and each revinclude one search (per page of
results), never one query per resource. ``:iterate`` runs once more over what the first round included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TypeVar

from fhir_server.search.index import parameter_values
from fhir_server.search.query import Criterion, Include, ReferenceValue, SearchQuery, TokenValue
from fhir_server.storage.base import ResourceOperations, StoredResource

BATCH_SIZE = 500  # values per query: well inside every backend's limit on bound parameters

Key = tuple[str, str]
T = TypeVar("T")


def _batches(items: list[T]) -> Iterable[list[T]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


async def _search_all(store: ResourceOperations, query: SearchQuery) -> list[StoredResource]:
    """Every page of ``query`` (includes are not paged: the searchset carries them all)."""
    found: list[StoredResource] = []
    while True:
        page = await store.search(query)
        found.extend(page.items)
        if not page.has_more:
            return found
        query.offset += query.count


def _referenced(include: Include, resources: list[StoredResource]) -> dict[str, list[str]]:
    """Type -> ids of the local resources ``include.param`` of the matching sources points to."""
    targets: dict[str, list[str]] = defaultdict(list)
    for source in resources:
        if source.resource_type != include.source_type or source.resource is None:
            continue
        for value in parameter_values(source.resource_type, source.resource, include.param):
            local = value.ref_type is not None and value.value == f"{value.ref_type}/{value.ref_id}"
            if local and include.target_type in (None, value.ref_type) and value.ref_id not in targets[value.ref_type]:
                targets[value.ref_type].append(value.ref_id)  # type: ignore[index,arg-type]
    return targets


async def _include(
    store: ResourceOperations, include: Include, resources: list[StoredResource]
) -> list[StoredResource]:
    found: list[StoredResource] = []
    for resource_type, ids in _referenced(include, resources).items():
        for batch in _batches(ids):
            criterion = Criterion("_id", "token", tuple(TokenValue(None, resource_id) for resource_id in batch))
            query = SearchQuery(resource_type, criteria=[criterion], count=len(batch), total="none")
            found.extend(await _search_all(store, query))
    return found


async def _revinclude(
    store: ResourceOperations, include: Include, resources: list[StoredResource]
) -> list[StoredResource]:
    targets = [
        ReferenceValue(r.resource_type, r.id) for r in resources if include.target_type in (None, r.resource_type)
    ]
    found: list[StoredResource] = []
    for batch in _batches(targets):
        criterion = Criterion(include.param, "reference", tuple(batch))
        query = SearchQuery(include.source_type, criteria=[criterion], count=BATCH_SIZE, total="none")
        found.extend(await _search_all(store, query))
    return found


async def _round(
    store: ResourceOperations,
    includes: list[Include],
    revincludes: list[Include],
    resources: list[StoredResource],
    seen: set[Key],
) -> list[StoredResource]:
    """One level of includes over ``resources``: new resources only (``seen`` is updated)."""
    added: list[StoredResource] = []
    results = [await _include(store, i, resources) for i in includes]
    results += [await _revinclude(store, i, resources) for i in revincludes]
    for result in results:
        for stored in result:
            key = (stored.resource_type, stored.id)
            if key not in seen:
                seen.add(key)
                added.append(stored)
    return added


async def resolve_includes(
    store: ResourceOperations, query: SearchQuery, page: list[StoredResource]
) -> list[StoredResource]:
    """The resources ``query``'s ``_include`` / ``_revinclude`` add to ``page`` (missing and deleted targets are
    skipped, none repeats a match or another include)."""
    if not query.includes and not query.revincludes:
        return []
    seen: set[Key] = {(r.resource_type, r.id) for r in page}
    included = await _round(store, query.includes, query.revincludes, page, seen)
    iterating = [i for i in query.includes if i.iterate], [i for i in query.revincludes if i.iterate]
    if included and (iterating[0] or iterating[1]):
        included += await _round(store, iterating[0], iterating[1], included, seen)
    return included
