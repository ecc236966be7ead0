"""Reads and writes of the MongoDB store (the ``ResourceOperations`` of the store and of its transactions).

One class serves both: bound to collections without a session it reads for the store; bound to a session
inside a transaction it reads that transaction's own writes and writes into it. The store runs each single
write in a transaction of its own, so a version always lands in ``history`` and ``resources`` together.

Stamping, ids, write times and history methods come from :mod:`fhir_server.storage.versioning`, shared with
the SQLite store. A write time is a MongoDB date at millisecond precision, exactly what the resource's
``meta.lastUpdated`` says, so the two never disagree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fhir_server.errors import conflict, gone, not_found, precondition_failed
from fhir_server.storage.base import OutboxMessage, Page, ResourceOperations, StoredResource
from fhir_server.storage.mongo.adapter import (
    Filter,
    MongoCollections,
    Sort,
    VersionRace,
    outbox_record,
    stored_resource,
)
from fhir_server.storage.mongo.documents import CurrentResource, ResourceVersion
from fhir_server.storage.mongo.filters import search_filter, search_sort
from fhir_server.storage.mongo.indexing import search_fields
from fhir_server.storage.versioning import (
    MillisecondClock,
    ceil_to_millisecond,
    check_id,
    check_if_match,
    history_method,
    resource_type_of,
    stamp,
    update_target,
)

if TYPE_CHECKING:
    from fhir_server.search.query import SearchQuery

# Newest first, as the SQLite store; then insertion order (ObjectIds grow) for versions of the same millisecond.
HISTORY_ORDER: Sort = [("last_updated", -1), ("version_id", -1), ("_id", -1)]


def _is_live(current: dict[str, Any] | None) -> bool:
    return current is not None and current.get("resource") is not None


def _check_version(current: dict[str, Any] | None, if_match: int | None, reference: str) -> None:
    check_if_match(reference, if_match, current["version_id"] if _is_live(current) else None)


class MongoResourceOperations(ResourceOperations):
    """``ResourceOperations`` on one database, inside the session of ``collections`` (if any)."""

    def __init__(self, collections: MongoCollections, clock: MillisecondClock) -> None:
        self._collections = collections
        self._clock = clock

    async def _write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        previous: dict[str, Any] | None,
    ) -> StoredResource:
        """Store the version after ``previous`` (a deletion marker when ``resource`` is None)."""
        version_id = previous["version_id"] + 1 if previous else 1
        last_updated = self._clock.next(previous["last_updated"] if previous else None)
        stamped = stamp(resource, resource_id, version_id, last_updated) if resource is not None else None
        method = history_method(version_id, stamped is None)
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
        resource_type = resource_type_of(resource)
        if resource_id is None:
            resource_id = str(uuid.uuid4())
        else:
            check_id(resource_id)
            if await self._collections.find_current(resource_type, resource_id) is not None:
                raise conflict(f"{resource_type}/{resource_id} already exists")
        try:
            return await self._write(resource_type, resource_id, resource, None)
        except VersionRace as exc:  # another request created the same id meanwhile
            raise conflict(f"{resource_type}/{resource_id} already exists") from exc

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
        resource_type, resource_id = update_target(resource)
        current = await self._collections.find_current(resource_type, resource_id)
        _check_version(current, if_match, f"{resource_type}/{resource_id}")
        stored = await self._guarded_write(resource_type, resource_id, resource, current, if_match)
        return stored, not _is_live(current)

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        current = await self._collections.find_current(resource_type, resource_id)
        if not _is_live(current):
            return None
        _check_version(current, if_match, f"{resource_type}/{resource_id}")
        return await self._guarded_write(resource_type, resource_id, None, current, if_match)

    async def _guarded_write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        current: dict[str, Any] | None,
        if_match: int | None,
    ) -> StoredResource:
        """A write after a version check: losing the race is a 412 for a client that named the version it saw;
        otherwise the race propagates so the store can retry on the newer version."""
        try:
            return await self._write(resource_type, resource_id, resource, current)
        except VersionRace as exc:
            if if_match is None:
                raise
            raise precondition_failed(
                f"{resource_type}/{resource_id} was changed by another request (If-Match {if_match})"
            ) from exc

    async def enqueue(self, message: OutboxMessage) -> bool:
        return await self._collections.insert_message(outbox_record(*self._clock.stamp_outbox(message)))

    async def lock(self, key: str) -> None:
        await self._collections.lock(key)

    async def flush(self) -> None:
        """Send what the transaction holds back (see :class:`~.adapter.PendingWrites`): before its commit."""
        await self._collections.flush()

    async def _page(self, history: bool, query: Filter, sort: Sort, offset: int, count: int, with_total: bool) -> Page:
        rows = await self._collections.find_page(history, query, sort, offset, count + 1)
        total = await self._collections.count(history, query) if with_total else None
        return Page([stored_resource(row) for row in rows[:count]], total, len(rows) > count)

    async def search(self, query: "SearchQuery") -> Page:
        criteria = search_filter(query)
        if query.count == 0:  # _count=0 / _summary=count: only the total
            return Page([], await self._collections.count(False, criteria), has_more=False)
        return await self._page(False, criteria, search_sort(query), query.offset, query.count, query.total != "none")

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
            query["last_updated"] = {"$gte": ceil_to_millisecond(since)}
        return await self._page(True, query, HISTORY_ORDER, offset, count, True)
