"""Security records (registered clients, accounts, the server's signing key, used assertion ids) kept in the store
the server uses, so every server process and a running server see a change without a restart.

Each record is a ``Basic`` resource coded with its kind and labelled internal: :class:`~fhir_server.security.tenancy.
GuardedStore` never shows one through the API. Records are read and written through the raw store (no tenancy:
the security layer itself is the only caller).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.search.query import parse_search
from fhir_server.security.tenancy import INTERNAL_CODE, INTERNAL_SYSTEM
from fhir_server.storage.base import ResourceOperations, ResourceStore

RECORD_SYSTEM = "http://example.org/fhir/second-opinion/CodeSystem/security-record"
RECORD_EXTENSION = "http://example.org/fhir/second-opinion/StructureDefinition/security-record-data"


def record_id(kind: str, key: str) -> str:
    """A FHIR id for ``key`` of ``kind`` (ids allow 64 characters of ``[A-Za-z0-9.-]``)."""
    return f"{kind[:8]}-{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def _resource(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": record_id(kind, key),
        "meta": {"security": [{"system": INTERNAL_SYSTEM, "code": INTERNAL_CODE}]},
        "code": {"coding": [{"system": RECORD_SYSTEM, "code": kind}]},
        "extension": [{"url": RECORD_EXTENSION, "valueString": orjson.dumps(data).decode()}],
    }


def _data(resource: dict[str, Any] | None) -> dict[str, Any] | None:
    for extension in (resource or {}).get("extension") or []:
        if extension.get("url") == RECORD_EXTENSION:
            return orjson.loads(extension["valueString"])
    return None


async def get_record(store: ResourceOperations, kind: str, key: str) -> dict[str, Any] | None:
    try:
        return _data((await store.read("Basic", record_id(kind, key))).resource)
    except FhirError as error:
        if error.status in (404, 410):
            return None
        raise


async def put_record(store: ResourceOperations, kind: str, key: str, data: dict[str, Any]) -> None:
    await store.update(_resource(kind, key, data))


async def add_record(store: ResourceOperations, kind: str, key: str, data: dict[str, Any]) -> bool:
    """Create the record unless one with this key exists (atomically: two processes cannot both add it)."""
    try:
        await store.create(_resource(kind, key, data), resource_id=record_id(kind, key))
    except FhirError as error:
        if error.status == 409:
            return False
        raise
    return True


async def list_records(store: ResourceOperations, kind: str) -> list[dict[str, Any]]:
    query = parse_search("Basic", [("code", f"{RECORD_SYSTEM}|{kind}")], default_count=1000, max_count=1000, strict=True)
    page = await store.search(query)
    return [data for data in (_data(item.resource) for item in page.items) if data is not None]


async def purge_records(store: ResourceStore, kind: str, lapsed: Callable[[dict[str, Any]], bool], *,
                        written_before: datetime, limit: int) -> int:
    """Remove for good (no history left) the records of ``kind`` that have ``lapsed``, among the ``limit`` oldest
    written before ``written_before``: bounded work, so a caller can do it on every write and the records never
    pile up. Returns how many were removed."""
    query = parse_search("Basic", [("code", f"{RECORD_SYSTEM}|{kind}"), ("_lastUpdated", f"lt{written_before.isoformat()}"),
                                   ("_sort", "_lastUpdated"), ("_total", "none")],  # no count on every token
                         default_count=limit, max_count=limit, strict=True)
    page = await store.search(query)
    ids = [item.id for item in page.items if lapsed(_data(item.resource) or {})]
    return await store.expunge("Basic", ids) if ids else 0
