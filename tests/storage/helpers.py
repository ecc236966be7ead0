"""Shared helpers of the storage contract suite (backend-neutral: everything goes through the store interface)."""

from __future__ import annotations

from typing import Any

from fhir_server.search.query import parse_search
from fhir_server.storage.base import Page, ResourceOperations


async def search(store: ResourceOperations, resource_type: str, *params: tuple[str, str], count: int = 100) -> Page:
    """Search as a client would ask, through the parser."""
    query = parse_search(resource_type, list(params), default_count=count, max_count=1000, strict=True)
    return await store.search(query)


async def ids(store: ResourceOperations, resource_type: str, *params: tuple[str, str]) -> list[str]:
    """Ids of the matches, in result order."""
    return [item.id for item in (await search(store, resource_type, *params)).items]


async def found(store: ResourceOperations, resource_type: str, *params: tuple[str, str]) -> set[str]:
    """Ids of the matches, order ignored."""
    return set(await ids(store, resource_type, *params))


def patient(family: str, *given: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": list(given)}], **fields}
