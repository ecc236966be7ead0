"""The narrow storage interface every backend implements.

Stores keep JSON (the validated dict), never models: parsing and dumping models is the slow part of a
FHIR server, and the API answers with the stored JSON as it is. A store owns ``id``, ``meta.versionId``
and ``meta.lastUpdated``; everything else about a resource is the caller's business.

Search arrives already parsed into the backend-neutral :class:`fhir_server.search.query.SearchQuery`;
each backend only translates it (SQL for the embedded store, a Mongo filter for MongoDB). Index values are
computed by :mod:`fhir_server.search.index`, shared by all backends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlencode

if TYPE_CHECKING:
    from fhir_server.search.query import SearchQuery

T = TypeVar("T")


def uniqueness_key(resource_type: str, params: list[tuple[str, str]]) -> str:
    """The lock key of "at most one ``resource_type`` matching ``params``" (see :meth:`ResourceOperations.lock`).

    Normalised (parameters sorted), so ``If-None-Exist: identifier=a|1&active=true`` and its reordering, and a
    ``$submit`` entry's business identifier (``identifier=system|value``) and a conditional create on it, take
    the same lock; hashed, so any query makes a short key."""
    canonical = f"{resource_type}?{urlencode(sorted(params))}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class StoreUnavailable(ValueError):
    """The store cannot be used as configured (unknown URL scheme, unwritable path, database not answering or
    unable to run transactions). Its message is one line an operator can act on: it names the path or the URL
    (without credentials). A ValueError, as a bad store URL always was."""


@dataclass(frozen=True)
class StoredResource:
    """One version of one resource as the store holds it."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime  # timezone-aware, UTC
    resource: dict[str, Any] | None  # None for a deletion marker
    method: str = "PUT"  # POST (created), PUT (updated), DELETE (deleted): for history bundles

    @property
    def deleted(self) -> bool:
        return self.resource is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True)
class Page:
    """A page of search or history results. ``total`` is None when it was not asked for or not known."""

    items: list[StoredResource]
    total: int | None
    has_more: bool


@dataclass(frozen=True)
class OutboxMessage:
    """A message to deliver over HTTP after the transaction that wrote it commits (transactional outbox).

    Written with :meth:`ResourceOperations.enqueue` in the same transaction as the change it reports, so a
    decision and the copy/notification announcing it are stored together or not at all; delivered by the
    outbox worker with retries and back-off, surviving restarts. ``id`` is the idempotency key: enqueueing an
    id that already exists is a no-op, so one decision is never queued (or sent) twice.
    """

    id: str  # e.g. "plan-copy:ClaimResponse/123/_history/2"
    channel: str  # what produced it: "plan-copy", "subscription-notification", ...
    destination: str  # absolute URL the payload is POSTed to
    payload: dict[str, Any]  # JSON body
    headers: dict[str, str] = field(default_factory=dict)  # extra HTTP headers (Content-Type is fhir+json)
    created_at: datetime | None = None  # set by the store when None
    next_attempt_at: datetime | None = None  # None: due now
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None
    # Attempts before the message is parked as dead (None: the worker's default, ``FHIR_OUTBOX_MAX_ATTEMPTS``).
    max_attempts: int | None = None
    # When it was parked as dead: never tried again until ``outbox retry`` revives it; never dropped.
    dead_at: datetime | None = None

    @property
    def dead(self) -> bool:
        return self.dead_at is not None


@dataclass(frozen=True)
class OutboxSummary:
    """What operators watch: messages waiting (due or backing off), parked as dead, delivered, and the creation
    time of the oldest one still waiting (None when none waits)."""

    pending: int
    dead: int
    delivered: int
    oldest_pending_at: datetime | None


@runtime_checkable
class ResourceOperations(Protocol):
    """Reads and writes; implemented by a store and by an open transaction of that store."""

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        """Store version 1 of a new resource. The server assigns the id unless ``resource_id`` is given;
        a given id that already exists raises a 409 FhirError."""

    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """Current version. Raises 404 (never existed) or 410 (deleted) FhirError."""

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        """A given version (a deletion marker is returned as such; unknown version raises 404)."""

    async def update(
        self, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version of ``resource`` (its ``resourceType`` and ``id`` say which).

        Creates the resource when it does not exist (update-as-create), returning ``created=True``.
        ``if_match`` is the version the client last saw: anything else raises 412, atomically, so two
        clients racing with the same version cannot both win."""

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        """Write a deletion marker as a new version; None when there was nothing to delete."""

    async def search(self, query: "SearchQuery") -> Page:
        """Current, non-deleted resources matching the query, sorted and paged as it says."""

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 20,
        offset: int = 0,
    ) -> Page:
        """Versions newest first: one resource, one type, or the whole system (both None)."""

    async def enqueue(self, message: OutboxMessage) -> bool:
        """Queue ``message`` for delivery (atomically with the surrounding transaction's writes).
        Returns False (and changes nothing) when a message with the same id already exists."""

    async def lock(self, key: str) -> None:
        """Inside a transaction: make every other transaction that locks ``key`` either wait for this one or
        fail transiently (and be run again by :meth:`ResourceStore.atomically`, then seeing this one's writes).

        The exactly-once pattern: search for the resource that must be unique (a conditional create's match, a
        business identifier); when there is none, ``lock`` its :func:`uniqueness_key`, then create it. Two
        concurrent requests cannot both create it, on any number of processes sharing the store."""


class ResourceStore(ResourceOperations, Protocol):
    """A backend: the operations above plus lifecycle and all-or-nothing transactions."""

    async def open(self) -> None:
        """Connect and create tables/collections and indexes (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise unless the backing database answers (readiness): one round trip, no data read."""

    def transaction(self) -> AbstractAsyncContextManager[ResourceOperations]:
        """``async with store.transaction() as tx:`` — every write through ``tx`` commits together when
        the block ends, or none does if it raises. Reads through ``tx`` see the transaction's own writes."""

    async def atomically(self, work: Callable[[ResourceOperations], Awaitable[T]]) -> T:
        """``await work(tx)`` in one transaction, run again from the start (a bounded number of times, after a
        short random pause) when the store reports a transient conflict with a concurrent transaction, so that
        the loser of a race gets the answer a later request would (the winner's resource) rather than an error.
        ``work`` must therefore be repeatable: it may not keep state from one run to the next."""

    async def clear(self) -> None:
        """Remove everything (tests and ``load --replace`` only)."""

    async def expunge(self, resource_type: str, resource_ids: list[str]) -> int:
        """Remove these resources for good: every version and index entry, no deletion marker left. Only for the
        records the server keeps for itself and drops when they lapse (used client assertion ids): a client's
        delete keeps its resource's history. Returns how many of them existed."""

    async def claim_outbox(self, now: datetime, lease_until: datetime, limit: int = 20) -> list[OutboxMessage]:
        """Undelivered messages due at ``now`` (oldest first), leased until ``lease_until`` atomically so that
        another worker process does not take the same message while this one tries it."""

    async def outbox_delivered(self, message_id: str, at: datetime) -> None:
        """Record a successful delivery: the message is never sent again."""

    async def outbox_failed(self, message_id: str, error: str, next_attempt_at: datetime) -> None:
        """Record a failed attempt (attempts + 1, last_error) and when to try again."""

    async def outbox_dead(self, message_id: str, error: str, at: datetime) -> None:
        """Record a last failed attempt (attempts + 1, last_error) and park the message as dead: no worker claims
        it again until :meth:`outbox_retry`; it stays in the store."""

    async def outbox_retry(self, message_ids: list[str] | None, now: datetime) -> int:
        """Revive dead messages (all of them when ``message_ids`` is None): due at ``now``, attempts back to 0.
        Returns how many were revived."""

    async def outbox_summary(self) -> OutboxSummary:
        """Counts by state and the oldest waiting message's creation time (metrics, readiness)."""

    async def outbox_messages(self, channel: str | None = None) -> list[OutboxMessage]:
        """All messages (delivered or not), oldest first: for status pages, tests and ``$status``."""
