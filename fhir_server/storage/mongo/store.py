"""MongoStore: the production backend's lifecycle, transactions and write retries.

MongoDB multi-document transactions need a replica set (a single-node one will do, see docker/compose.yaml).
Transactions never wait for each other: the later of two writing the same document fails with a transient
WriteConflict. :meth:`MongoStore.atomically` therefore runs its work again, from the start, after a short random
pause, up to :data:`TRANSACTION_ATTEMPTS` times, so a concurrent loser gets the answer a later request would
(the winner's resource, a stored ``$submit`` answer) instead of an error; every single write (create, update,
delete) runs that way too, and a lost version race without If-Match is retried on the newer version (with
If-Match it is a 412). A commit whose outcome is unknown is committed again (never the work run again, which
could write twice). ``transaction()`` gives the caller one transaction for a block it cannot replay: a conflict
there ends in a 409 the client can retry.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from fhir_server.clock import Now, utc_now
from fhir_server.errors import conflict
from fhir_server.storage.base import OutboxMessage, OutboxSummary, StoredResource, StoreUnavailable
from fhir_server.storage.delegation import ReadsDelegated
from fhir_server.storage.mongo.adapter import MongoCollections, VersionRace, outbox_message
from fhir_server.storage.mongo.operations import MongoResourceOperations
from fhir_server.storage.versioning import MillisecondClock

T = TypeVar("T")
DEFAULT_DATABASE = "fhir"
# Runs of a transaction's work before a conflict becomes a 409, and the pauses between them: random, so that
# the losers of one race do not collide again, growing from FIRST_PAUSE to at most LONGEST_PAUSE seconds
# (about two seconds of waiting in all at worst).
TRANSACTION_ATTEMPTS = 25
FIRST_PAUSE_SECONDS = 0.002
LONGEST_PAUSE_SECONDS = 0.15
COMMIT_ATTEMPTS = 3
RETRYABLE_LABELS = ("TransientTransactionError", "UnknownTransactionCommitResult")
# How long an operation waits for a MongoDB server to answer before failing (start-up, readiness).
SERVER_SELECTION_TIMEOUT_MS = 5000


def database_name(url: str) -> str:
    """The database a ``mongodb://host:port/dbname?options`` URL names (``fhir`` when it names none)."""
    return unquote(urlsplit(url).path.strip("/")) or DEFAULT_DATABASE


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def connect_timeout_options(url: str) -> dict[str, int]:
    """Fail fast at start-up when nobody answers (pymongo waits 30 s by default), unless the URL sets its own."""
    if "serverselectiontimeoutms" in url.lower():
        return {}
    return {"serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS}


def _lost_race(error: Exception) -> bool:
    """A version race or a transient transaction error: retrying (the caller's whole block) would succeed."""
    if isinstance(error, PyMongoError):
        return any(error.has_error_label(label) for label in RETRYABLE_LABELS)
    return isinstance(error, VersionRace)


def _conflict() -> Exception:
    return conflict("a concurrent request changed the same resources; retry")


async def _pause(attempt: int) -> None:
    """A random pause before run ``attempt + 1``, its upper bound doubling from run to run."""
    ceiling = min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** (attempt - 1))
    await asyncio.sleep(random.uniform(0, ceiling))


async def _abort(session: AsyncClientSession) -> None:
    """Roll back what is still open; a failure to (the server is gone, say) leaves the server to time it out."""
    if session.in_transaction:
        try:
            await session.abort_transaction()
        except PyMongoError:
            pass


async def _commit(session: AsyncClientSession) -> None:
    """Commit, again when the outcome is unknown (a commit is idempotent; running the work again is not)."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as exc:
            if not exc.has_error_label("UnknownTransactionCommitResult") or attempt == COMMIT_ATTEMPTS:
                raise


class MongoStore(ReadsDelegated):
    """``ResourceStore`` on MongoDB (see :mod:`fhir_server.storage.mongo` for the data model)."""

    def __init__(self, url: str, database: str = DEFAULT_DATABASE, clock: Now = utc_now) -> None:
        self.url = url
        self.database_name = database
        self._client: AsyncMongoClient | None = None
        self._database: AsyncDatabase | None = None
        self._clock = MillisecondClock(clock)

    @classmethod
    def from_url(cls, url: str, clock: Now = utc_now) -> "MongoStore":
        return cls(url, database_name(url), clock)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is None:
            # tz_aware: dates come back as UTC-aware datetimes, as StoredResource.last_updated promises.
            self._client = AsyncMongoClient(self.url, tz_aware=True, uuidRepresentation="standard",
                                            **connect_timeout_options(self.url))
            self._database = self._client[self.database_name]
        try:
            await self._require_transactions()
        except PyMongoError as exc:
            await self.close()
            raise StoreUnavailable(f"MongoDB at {redacted(self.url)} did not answer: {type(exc).__name__}") from None
        except StoreUnavailable:
            await self.close()
            raise
        await MongoCollections(self._db).ensure_indexes()

    async def _require_transactions(self) -> None:
        """Fail at start-up, not at the first write, when the server cannot run transactions (a standalone
        mongod: start it with ``--replSet`` and initiate the set, as docker/compose.yaml does)."""
        hello = await self._mongo.admin.command("hello")
        if "setName" not in hello and hello.get("msg") != "isdbgrid":
            raise StoreUnavailable(
                f"MongoDB at {redacted(self.url)} is a standalone server; the store needs transactions, which need "
                "a replica set (a single-node one will do) or a sharded cluster"
            )

    async def ping(self) -> None:
        await self._mongo.admin.command("ping")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._database = None

    async def clear(self) -> None:
        await MongoCollections(self._db).drop()

    async def expunge(self, resource_type: str, resource_ids: list[str]) -> int:
        return await MongoCollections(self._db).remove(resource_type, resource_ids)

    @property
    def _db(self) -> AsyncDatabase:
        if self._database is None:
            raise RuntimeError("MongoStore is not open: await store.open() first")
        return self._database

    @property
    def _mongo(self) -> AsyncMongoClient:
        if self._client is None:
            raise RuntimeError("MongoStore is not open: await store.open() first")
        return self._client

    def _operations(
        self, session: AsyncClientSession | None = None, hold_back: bool = False
    ) -> MongoResourceOperations:
        return MongoResourceOperations(MongoCollections(self._db, session, hold_back), self._clock)

    def _reads(self) -> MongoResourceOperations:
        return self._operations()

    # -- transactions ------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MongoResourceOperations]:
        async with self._mongo.start_session() as session:
            try:
                async with await session.start_transaction():
                    yield self._operations(session)
            except (VersionRace, PyMongoError) as exc:
                if not _lost_race(exc):
                    raise
                raise _conflict() from exc

    async def atomically(self, work: Callable[[MongoResourceOperations], Awaitable[T]]) -> T:
        """``work`` in one transaction, run again on a transient conflict (see the module docstring). Anything
        else ``work`` raises (a FHIR error) ends the transaction, rolled back, and reaches the caller as it is;
        ending the session aborts a transaction left open by a cancellation."""
        async with self._mongo.start_session() as session:
            for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
                await session.start_transaction()
                try:
                    operations = self._operations(session, hold_back=True)
                    result = await work(operations)
                    await operations.flush()  # the writes it held back, before the commit
                except Exception as exc:
                    await _abort(session)
                    if not isinstance(exc, (VersionRace, PyMongoError)) or not _lost_race(exc):
                        raise
                    if attempt == TRANSACTION_ATTEMPTS:
                        raise _conflict() from exc
                    await _pause(attempt)
                    continue
                try:
                    await _commit(session)
                except PyMongoError as exc:
                    if not _lost_race(exc):
                        raise
                    if exc.has_error_label("UnknownTransactionCommitResult") or attempt == TRANSACTION_ATTEMPTS:
                        raise _conflict() from exc
                    await _pause(attempt)
                    continue
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- ResourceOperations ------------------------------------------------------------------------------------

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        return await self.atomically(lambda ops: ops.create(resource, resource_id=resource_id))

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        return await self.atomically(lambda ops: ops.update(resource, if_match=if_match))

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        return await self.atomically(lambda ops: ops.delete(resource_type, resource_id, if_match=if_match))

    # -- outbox ------------------------------------------------------------------------------------------------

    async def enqueue(self, message: OutboxMessage) -> bool:
        return await self._operations().enqueue(message)

    async def claim_outbox(self, now: datetime, lease_until: datetime, limit: int = 20) -> list[OutboxMessage]:
        """Lease due messages one atomic find-and-update at a time: each is taken by exactly one worker."""
        collections = MongoCollections(self._db)
        claimed: list[OutboxMessage] = []
        while len(claimed) < limit:
            raw = await collections.lease_due_message(now, lease_until, [message.id for message in claimed])
            if raw is None:
                break
            claimed.append(outbox_message(raw))
        return claimed

    async def outbox_delivered(self, message_id: str, at: datetime) -> None:
        await MongoCollections(self._db).update_message(message_id, {"$set": {"delivered": True, "delivered_at": at}})

    async def outbox_failed(self, message_id: str, error: str, next_attempt_at: datetime) -> None:
        update = {"$inc": {"attempts": 1}, "$set": {"last_error": error, "next_attempt_at": next_attempt_at}}
        await MongoCollections(self._db).update_message(message_id, update, undelivered_only=True)

    async def outbox_dead(self, message_id: str, error: str, at: datetime) -> None:
        update = {"$inc": {"attempts": 1}, "$set": {"last_error": error, "dead_at": at}}
        await MongoCollections(self._db).update_message(message_id, update, undelivered_only=True)

    async def outbox_retry(self, message_ids: list[str] | None, now: datetime) -> int:
        return await MongoCollections(self._db).revive_messages(message_ids, now)

    async def outbox_summary(self) -> OutboxSummary:
        raw = await MongoCollections(self._db).message_summary()
        return OutboxSummary(pending=raw["pending"], dead=raw["dead"], delivered=raw["delivered"],
                             oldest_pending_at=raw["oldest"])

    async def outbox_messages(self, channel: str | None = None) -> list[OutboxMessage]:
        return [outbox_message(raw) for raw in await MongoCollections(self._db).find_messages(channel)]
