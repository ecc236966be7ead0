"""Change observers: code that must run inside the very transaction that changes a resource of a given type.

Why a store wrapper rather than hooks in the REST layer: a ClaimResponse or Task changes through REST, through
transaction and batch Bundles, through ``$submit`` and through ``$decide``, and whatever reacts to the change
(a copy to the plan, a subscription notification) must be written to the outbox atomically with it, or a crash
between the two loses or invents a message. Wrapping the one store every path writes through catches them all.

``ObservedStore(inner, observers)`` is a :class:`~fhir_server.storage.base.ResourceStore`. A write of a type with
observers runs in a transaction (the caller's, or one opened for a direct write) and, after the write, awaits
``observer(tx, stored, previous)`` for each observer of that type, in registration order: ``tx`` is the same
transaction (observed too), ``stored`` the new version (a deletion marker for a delete) and ``previous`` the
version it replaced (None for a creation, or an update of a deleted or unknown resource). An observer that
raises rolls the whole change back. An observer may change the written resource itself (a client's Task that
starts the second-opinion workflow is routed at once): a create or update of an observed type therefore answers
with the version the observers left, so the client sees what is stored. Types without observers go straight to
the inner store: they pay nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from fhir_server.errors import FhirError, Issue
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource
from fhir_server.storage.delegation import WrapsOperations, WrapsStore
from fhir_server.storage.versioning import resource_type_of

# Warnings an observer has for the client whose write it reacts to (a consultation report stored but not taken as
# the case's report, say): collected per write by :func:`collecting_warnings`, answered with the write's own.
_WARNINGS: ContextVar[list[Issue] | None] = ContextVar("observer_warnings", default=None)


def warn(issue: Issue) -> None:
    """Tell the client of the running write something (no-op when no write is collecting)."""
    collected = _WARNINGS.get()
    if collected is not None:
        collected.append(issue)


@contextmanager
def collecting_warnings() -> Iterator[list[Issue]]:
    """Collect what the observers of the writes inside say with :func:`warn`."""
    collected: list[Issue] = []
    token = _WARNINGS.set(collected)
    try:
        yield collected
    finally:
        _WARNINGS.reset(token)


Observer = Callable[[ResourceOperations, StoredResource, "StoredResource | None"], Awaitable[None]]
# A read of the version about to be replaced finds none: never stored (404) or already deleted (410).
NO_CURRENT_VERSION = (404, 410)
T = TypeVar("T")


class ChangeObservers:
    """The observers of each resource type, in registration order."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Observer]] = {}

    def add(self, resource_type: str, observer: Observer) -> None:
        self._by_type.setdefault(resource_type, []).append(observer)

    def of(self, resource_type: str) -> tuple[Observer, ...]:
        return tuple(self._by_type.get(resource_type, ()))

    def observes(self, resource_type: str) -> bool:
        return resource_type in self._by_type


class ObservedOperations(WrapsOperations):
    """An open transaction of the inner store whose writes of observed types call their observers (its reads go to
    the transaction: they see its own writes)."""

    def __init__(self, tx: ResourceOperations, observers: ChangeObservers) -> None:
        self.inner = tx
        self._observers = observers

    async def _current(self, resource_type: str, resource_id: Any) -> StoredResource | None:
        if not isinstance(resource_id, str) or not self._observers.observes(resource_type):
            return None
        try:
            return await self.inner.read(resource_type, resource_id)
        except FhirError as error:
            if error.status in NO_CURRENT_VERSION:
                return None
            raise

    async def _notify(self, stored: StoredResource, previous: StoredResource | None) -> StoredResource:
        """Run the observers; answer the resource's version after them (the same one unless they changed it)."""
        observers = self._observers.of(stored.resource_type)
        for observer in observers:
            await observer(self, stored, previous)
        if not observers or stored.deleted:
            return stored
        return await self.inner.read(stored.resource_type, stored.id)

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        stored = await self.inner.create(resource, resource_id=resource_id)
        return await self._notify(stored, None)

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        previous = await self._current(resource_type_of(resource), resource.get("id"))
        stored, created = await self.inner.update(resource, if_match=if_match)
        return await self._notify(stored, previous), created

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        previous = await self._current(resource_type, resource_id)
        stored = await self.inner.delete(resource_type, resource_id, if_match=if_match)
        if stored is not None:
            await self._notify(stored, previous)
        return stored


class ObservedStore(WrapsStore):
    """``ResourceStore`` over ``inner`` that runs the observers of a type inside every write of that type."""

    def __init__(self, inner: ResourceStore, observers: ChangeObservers) -> None:
        self.inner = inner
        self.observers = observers

    # -- transactions and writes -------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ObservedOperations]:
        async with self.inner.transaction() as tx:
            yield ObservedOperations(tx, self.observers)

    async def atomically(self, work: Callable[[ResourceOperations], Awaitable[T]]) -> T:
        return await self.inner.atomically(lambda tx: work(ObservedOperations(tx, self.observers)))

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        if not self.observers.observes(resource_type_of(resource)):
            return await self.inner.create(resource, resource_id=resource_id)
        return await self.atomically(lambda tx: tx.create(resource, resource_id=resource_id))

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        if not self.observers.observes(resource_type_of(resource)):
            return await self.inner.update(resource, if_match=if_match)
        return await self.atomically(lambda tx: tx.update(resource, if_match=if_match))

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        if not self.observers.observes(resource_type):
            return await self.inner.delete(resource_type, resource_id, if_match=if_match)
        return await self.atomically(lambda tx: tx.delete(resource_type, resource_id, if_match=if_match))
