"""Reads a store answers by handing them to an operations object: the one copy of that delegation.

Every store (and the :class:`~fhir_server.storage.observed.ObservedStore` wrapper) answers ``read``, ``vread``,
``search`` and ``history`` the same way: outside any transaction, through whatever reads committed data for it
(the SQLite reader connection, a session-less Mongo operations object, the wrapped store). Only the choice of
that object differs, so each store says only that (:meth:`ReadsDelegated._reads`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fhir_server.storage.base import Page, ResourceOperations, StoredResource

if TYPE_CHECKING:
    from fhir_server.search.query import SearchQuery


class ReadsDelegated:
    """Mixin: the store's reads, answered by :meth:`_reads`."""

    def _reads(self) -> ResourceOperations:
        """What answers reads of committed data."""
        raise NotImplementedError

    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        return await self._reads().read(resource_type, resource_id)

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        return await self._reads().vread(resource_type, resource_id, version_id)

    async def search(self, query: "SearchQuery") -> Page:
        return await self._reads().search(query)

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 20,
        offset: int = 0,
    ) -> Page:
        return await self._reads().history(resource_type, resource_id, since=since, count=count, offset=offset)
