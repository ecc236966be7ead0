"""Reading several resources at once for a page: one search per type and batch, not one read per row."""

from __future__ import annotations

from typing import Any, Iterable

from fhir_server.second_opinion.reports import search_all
from fhir_server.storage.base import ResourceOperations

IDS_PER_SEARCH = 100  # ids ORed in one ``_id`` search (well under FHIR_MAX_SEARCH_TERMS)


async def by_reference(ops: ResourceOperations, references: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """``Type/id`` -> the resource, for every reference the caller may see (others are simply absent)."""
    wanted: dict[str, set[str]] = {}
    for reference in references:
        resource_type, _, resource_id = (reference or "").partition("/")
        if resource_type and resource_id and "/" not in resource_id:
            wanted.setdefault(resource_type, set()).add(resource_id)
    found: dict[str, dict[str, Any]] = {}
    for resource_type, ids in wanted.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), IDS_PER_SEARCH):
            batch = ordered[start : start + IDS_PER_SEARCH]
            for resource in await search_all(ops, resource_type, [("_id", ",".join(batch))]):
                found[f"{resource_type}/{resource['id']}"] = resource
    return found


def reference_of(element: Any) -> str | None:
    """The ``reference`` of a Reference element (None for anything else)."""
    return element.get("reference") if isinstance(element, dict) else None
