"""Calls a store or a store wrapper answers by handing them to another object: the one copy of that delegation.

Every store (and every store wrapper) answers ``read``, ``vread``, ``search`` and ``history`` the same way: outside
any transaction, through whatever reads committed data for it (the SQLite reader connection, a session-less Mongo
operations object, the wrapped store). Only the choice of that object differs, so each store says only that
(:meth:`ReadsDelegated._reads`). The wrappers (the change observers, the tenant stamps and guard) pass everything
they do not change to what they wrap: :class:`WrapsOperations` for their transactions, :class:`WrapsStore` for
themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fhir_server.storage.base import OutboxMessage, OutboxSummary, Page, ResourceOperations, ResourceStore, StoredResource

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


class WrapsOperations(ReadsDelegated):
    """Mixin for a wrapper of :class:`ResourceOperations` (a store wrapper, or its transaction): whatever it does
    not change is the wrapped object's (``inner``): its reads, ``enqueue`` and ``lock``. A wrapper then says only
    what it adds, and a call added to the interface is passed on in one place."""

    inner: ResourceOperations

    def _reads(self) -> ResourceOperations:
        return self.inner

    async def enqueue(self, message: OutboxMessage) -> bool:
        return await self.inner.enqueue(message)

    async def lock(self, key: str) -> None:
        await self.inner.lock(key)


class WrapsStore(WrapsOperations):
    """Mixin for a wrapper of a whole :class:`ResourceStore`: also its lifecycle and outbox calls go to the wrapped
    store unchanged; anything else a backend offers (its connection, test helpers) stays reachable through it."""

    inner: ResourceStore

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def clear(self) -> None:
        await self.inner.clear()

    async def ping(self) -> None:
        await self.inner.ping()

    async def expunge(self, resource_type: str, resource_ids: list[str]) -> int:
        return await self.inner.expunge(resource_type, resource_ids)

    async def claim_outbox(self, now: datetime, lease_until: datetime, limit: int = 20) -> list[OutboxMessage]:
        return await self.inner.claim_outbox(now, lease_until, limit)

    async def outbox_delivered(self, message_id: str, at: datetime) -> None:
        await self.inner.outbox_delivered(message_id, at)

    async def outbox_failed(self, message_id: str, error: str, next_attempt_at: datetime) -> None:
        await self.inner.outbox_failed(message_id, error, next_attempt_at)

    async def outbox_dead(self, message_id: str, error: str, at: datetime) -> None:
        await self.inner.outbox_dead(message_id, error, at)

    async def outbox_retry(self, message_ids: list[str] | None, now: datetime) -> int:
        return await self.inner.outbox_retry(message_ids, now)

    async def outbox_summary(self) -> OutboxSummary:
        return await self.inner.outbox_summary()

    async def outbox_messages(self, channel: str | None = None) -> list[OutboxMessage]:
        return await self.inner.outbox_messages(channel)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a half-built or copied wrapper): never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)
