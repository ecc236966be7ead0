"""Reads and writes of the MongoDB store (the ``ResourceOperations`` of the store and of its transactions).

One class serves both: bound to collections without a session it reads for the store; bound to a session
inside a transaction it reads that transaction's own writes and writes into it. The store runs each single
write in a transaction of its own, so a version always lands in ``history`` and ``resources`` together.

Versions are 1..n per resource; ids are uuid4 unless the caller names one; ``meta.lastUpdated`` is the write
time in UTC with millisecond precision (``2024-05-01T12:00:00.123+00:00``), which is also exactly what a
MongoDB date holds, so the stored ``last_updated`` and the resource's meta never disagree.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fhir_server.errors import bad_request, conflict, gone, not_found, precondition_failed
from fhir_server.storage.base import Page, StoredResource
from fhir_server.storage.mongo.adapter import Filter, MongoCollections, Sort, VersionRace, stored_resource
from fhir_server.storage.mongo.documents import CurrentResource, ResourceVersion
from fhir_server.storage.mongo.filters import search_filter, search_sort
from fhir_server.storage.mongo.indexing import search_fields

if TYPE_CHECKING:
    from fhir_server.search.query import SearchQuery

HISTORY_ORDER: Sort = [("last_updated", -1), ("version_id", -1), ("_id", -1)]


def now_millis() -> datetime:
    """The write time, truncated to what both meta.lastUpdated and a MongoDB date can hold."""
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def stamp(resource: dict[str, Any], resource_id: str, version_id: int, last_updated: datetime) -> dict[str, Any]:
    """A copy of ``resource`` carrying the store-owned ``id``, ``meta.versionId`` and ``meta.lastUpdated``."""
    meta = {**(resource.get("meta") or {}), "versionId": str(version_id),
            "lastUpdated": last_updated.isoformat(timespec="milliseconds")}
    stamped = {"resourceType": resource["resourceType"], "id": resource_id}
    stamped.update((key, value) for key, value in resource.items() if key not in stamped)
    stamped["meta"] = meta
    return stamped


def _check_version(current: dict[str, Any] | None, if_match: int | None, reference: str) -> None:
    if if_match is None:
        return
    if current is None:
        raise precondition_failed(f"{reference} does not exist (If-Match expected version {if_match})")
    if current["version_id"] != if_match:
        raise precondition_failed(
            f"{reference} is at version {current['version_id']}, not {if_match} (If-Match): reload and retry"
        )


def _resource_type_of(resource: dict[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request("resource has no resourceType", "resourceType", code="required")
    return resource_type


class MongoResourceOperations:
    """``ResourceOperations`` on one database, inside the session of ``collections`` (if any)."""

    def __init__(self, collections: MongoCollections) -> None:
        self._collections = collections

    async def _write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        previous: dict[str, Any] | None,
        method: str,
    ) -> StoredResource:
        """Store the version after ``previous`` (a deletion marker when ``resource`` is None)."""
        version_id = previous["version_id"] + 1 if previous else 1
        last_updated = now_millis()
        stamped = stamp(resource, resource_id, version_id, last_updated) if resource is not None else None
        entries, sort_keys = search_fields(resource_type, stamped)
        identity = dict(resource_type=resource_type, resource_id=resource_id, version_id=version_id,
                        last_updated=last_updated, method=method, resource=stamped)
        await self._collections.store_version(
            ResourceVersion(**identity),
            CurrentResource(**identity, deleted=stamped is None, idx=entries, sort_keys=sort_keys),
            previous["version_id"] if previous else None,
        )
        return StoredResource(resource_type, resource_id, version_id, last_updated, stamped, method)

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        resource_type = _resource_type_of(resource)
        new_id = resource_id or str(uuid.uuid4())
        if resource_id is not None and await self._collections.find_current(resource_type, new_id) is not None:
            raise conflict(f"{resource_type}/{new_id} already exists")
        try:
            return await self._write(resource_type, new_id, resource, None, "POST")
        except VersionRace as exc:
            raise conflict(f"{resource_type}/{new_id} already exists") from exc

    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        raw = await self._collections.find_current(resource_type, resource_id)
        if raw is None:
            raise not_found(f"{resource_type}/{resource_id} is not known")
        found = stored_resource(raw)
        if found.deleted:
            raise gone(f"{resource_type}/{resource_id} was deleted")
        return found

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        raw = await self._collections.find_version(resource_type, resource_id, version_id)
        if raw is None:
            raise not_found(f"{resource_type}/{resource_id} has no version {version_id}")
        return stored_resource(raw)

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        resource_type = _resource_type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            raise bad_request("an update needs the resource's id", "id", code="required")
        current = await self._collections.find_current(resource_type, resource_id)
        _check_version(current, if_match, f"{resource_type}/{resource_id}")
        stored = await self._guarded_write(resource_type, resource_id, resource, current, "PUT", if_match)
        return stored, current is None

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        current = await self._collections.find_current(resource_type, resource_id)
        _check_version(current, if_match, f"{resource_type}/{resource_id}")
        if current is None or current.get("resource") is None:
            return None
        return await self._guarded_write(resource_type, resource_id, None, current, "DELETE", if_match)

    async def _guarded_write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        current: dict[str, Any] | None,
        method: str,
        if_match: int | None,
    ) -> StoredResource:
        """A write after a version check: losing the race is a 412 for a client that named the version it saw;
        otherwise the race propagates so the store can retry on the newer version."""
        try:
            return await self._write(resource_type, resource_id, resource, current, method)
        except VersionRace as exc:
            if if_match is None:
                raise
            raise precondition_failed(
                f"{resource_type}/{resource_id} was changed by another request (If-Match {if_match})"
            ) from exc

    async def _page(self, history: bool, query: Filter, sort: Sort, offset: int, count: int, with_total: bool) -> Page:
        rows = await self._collections.find_page(history, query, sort, offset, count + 1)
        total = await self._collections.count(history, query) if with_total else None
        return Page([stored_resource(row) for row in rows[:count]], total, len(rows) > count)

    async def search(self, query: "SearchQuery") -> Page:
        return await self._page(
            False, search_filter(query), search_sort(query), query.offset, query.count, query.total != "none"
        )

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 20,
        offset: int = 0,
    ) -> Page:
        scope = {"resource_type": resource_type, "resource_id": resource_id}
        query: Filter = {field: {"$eq": value} for field, value in scope.items() if value is not None}
        if since is not None:
            query["last_updated"] = {"$gte": since}
        return await self._page(True, query, HISTORY_ORDER, offset, count, True)
