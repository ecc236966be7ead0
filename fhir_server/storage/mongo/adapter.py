"""The one place that talks to pymongo's async collections directly.

Why not the ODM's own ``save()`` / ``objects``: mongomotor 0.17 (on mongoengine 0.29) takes no client session
in ``Document.save``, ``QuerySet`` or ``modify``, so nothing done through them can join a MongoDB transaction,
and every write of this store runs in one (history and current version commit together). Reads are the hot
path (building ODM objects per result and again per StoredResource is the slow part of a FHIR search) and
must also run inside a transaction so that it sees its own writes. So the ODM classes of :mod:`.documents`
declare the schema, validate and map a document to BSON, and declare the indexes; this adapter moves the
BSON, always passing the session it was given (None outside a transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from mongoengine.errors import ValidationError
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from fhir_server.errors import bad_request, conflict
from fhir_server.storage.base import OutboxMessage, StoredResource
from fhir_server.storage.mongo.documents import (
    STORED_DOCUMENTS,
    CurrentResource,
    OutboxRecord,
    ResourceVersion,
    WriteLock,
)

Filter = dict[str, Any]
Sort = list[tuple[str, int]]


class VersionRace(Exception):
    """Another writer stored the version this one was about to store (the atomic version check failed)."""


def to_bson(document: CurrentResource | ResourceVersion | OutboxRecord) -> dict[str, Any]:
    """Validate through the ODM (which also refuses keys that MongoDB would read as operators) and map."""
    try:
        document.validate()
    except ValidationError as exc:
        raise bad_request(f"resource cannot be stored: {exc}", code="structure") from exc
    return document.to_mongo().to_dict()


def stored_resource(raw: dict[str, Any]) -> StoredResource:
    """A ``resources`` or ``history`` document -> the store-neutral StoredResource."""
    return StoredResource(
        resource_type=raw["resource_type"],
        id=raw["resource_id"],
        version_id=raw["version_id"],
        last_updated=raw["last_updated"],
        resource=raw.get("resource"),
        method=raw["method"],
    )


def outbox_message(raw: dict[str, Any]) -> OutboxMessage:
    """An ``outbox`` document -> OutboxMessage."""
    return OutboxMessage(
        id=raw["_id"],
        channel=raw["channel"],
        destination=raw["destination"],
        payload=raw["payload"],
        headers=raw.get("headers") or {},
        created_at=raw["created_at"],
        next_attempt_at=raw["next_attempt_at"],
        attempts=raw["attempts"],
        last_error=raw.get("last_error"),
        delivered_at=raw.get("delivered_at"),
        max_attempts=raw.get("max_attempts"),
        dead_at=raw.get("dead_at"),
    )


def outbox_record(message: OutboxMessage, now: datetime) -> OutboxRecord:
    """The document a new message is stored as (created now and due now unless it says otherwise)."""
    created = message.created_at or now
    return OutboxRecord(
        message_id=message.id,
        channel=message.channel,
        destination=message.destination,
        payload=message.payload,
        headers=message.headers,
        created_at=created,
        next_attempt_at=message.next_attempt_at or created,
        attempts=message.attempts,
        last_error=message.last_error,
        delivered=message.delivered_at is not None,
        delivered_at=message.delivered_at,
        max_attempts=message.max_attempts,
        dead_at=message.dead_at,
    )


KEY_FIELDS = ("resource_type", "resource_id")
OUTBOX_ORDER = [("created_at", 1), ("_id", 1)]
# Only what a StoredResource needs travels back from the server (never _idx / _sort).
RESULT_PROJECTION = {"_id": 0, "resource_type": 1, "resource_id": 1, "version_id": 1, "last_updated": 1,
                     "method": 1, "resource": 1}


DUPLICATE_KEY = 11000


@dataclass
class PendingWrites:
    """The first versions of new resources a transaction has written but not yet sent: sent together, one command
    per collection, before the first command whose answer they could change (a search, a count, a version read,
    a replacement) and at the latest before the commit. A transaction's writes are seen by nobody else before its
    commit, and its own reads of a single current document are answered from :attr:`written`, so holding them
    changes no answer, only the number of round trips (a ``$submit`` writes about ten resources, two documents
    each)."""

    versions: list[dict[str, Any]] = field(default_factory=list)  # history documents
    currents: list[dict[str, Any]] = field(default_factory=list)  # new current documents
    # (type, id) -> the current document this transaction wrote last (sent or not), as a read would return it
    written: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.versions or self.currents)


def _as_read(document: dict[str, Any]) -> dict[str, Any]:
    """A current document as :data:`RESULT_PROJECTION` reads it back, its resource a copy of its own (a read
    from the server never shares objects with what was written)."""
    read = {name: document.get(name) for name in RESULT_PROJECTION if name != "_id"}
    moment = read["last_updated"]  # as a tz-aware client reads a date: UTC
    read["last_updated"] = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if read["resource"] is not None:
        read["resource"] = orjson.loads(orjson.dumps(read["resource"]))
    return read


@dataclass(frozen=True)
class MongoCollections:
    """The ``resources`` and ``history`` collections of one database, bound to one session (or none).

    In a transaction that is run again whenever it conflicts (``hold_back``: ``MongoStore.atomically``), the first
    versions of new resources are held in :class:`PendingWrites` and sent in batches (:meth:`flush`); otherwise,
    and for every other write (a new version of a stored resource, a lock, an outbox message), a write goes at
    once. (A ``MongoStore.transaction()`` block cannot be run again, so there a writer outside it must meet its
    writes, and wait, from the moment they are made.)"""

    database: AsyncDatabase
    session: AsyncClientSession | None = None
    hold_back: bool = False  # hold new resources back until needed (only in a session: a transaction's writes)
    pending: PendingWrites = field(default_factory=PendingWrites, compare=False)

    @property
    def current(self) -> AsyncCollection:
        return self.database[CurrentResource._get_collection_name()]

    @property
    def history(self) -> AsyncCollection:
        return self.database[ResourceVersion._get_collection_name()]

    async def ensure_indexes(self) -> None:
        """Create exactly the indexes the ODM classes declare (idempotent)."""
        for document_class in STORED_DOCUMENTS:
            collection = self.database[document_class._get_collection_name()]
            for spec in document_class._meta["index_specs"]:
                options = {key: value for key, value in spec.items() if key != "fields"}
                await collection.create_index(spec["fields"], **options)

    async def drop(self) -> None:
        for document_class in STORED_DOCUMENTS:
            await self.database.drop_collection(document_class._get_collection_name())

    async def remove(self, resource_type: str, resource_ids: list[str]) -> int:
        """Every version of these resources, for good (see ``ResourceStore.expunge``): history first, so a
        half-done removal leaves the current documents, which a search finds and the next removal finishes.
        Answers how many current documents there were."""
        query = {"resource_type": {"$eq": resource_type}, "resource_id": {"$in": list(resource_ids)}}
        await self.history.delete_many(query, session=self.session)
        removed = await self.current.delete_many(query, session=self.session)
        return removed.deleted_count

    async def find_current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        own = self.pending.written.get((resource_type, resource_id))
        if own is not None:
            return _as_read(own)
        return await self.current.find_one(
            {"resource_type": {"$eq": resource_type}, "resource_id": {"$eq": resource_id}},
            RESULT_PROJECTION,
            session=self.session,
        )

    async def find_version(self, resource_type: str, resource_id: str, version_id: int) -> dict[str, Any] | None:
        await self.flush()
        return await self.history.find_one(
            {
                "resource_type": {"$eq": resource_type},
                "resource_id": {"$eq": resource_id},
                "version_id": {"$eq": version_id},
            },
            RESULT_PROJECTION,
            session=self.session,
        )

    async def store_version(
        self, version: ResourceVersion, current: CurrentResource, previous_version: int | None
    ) -> None:
        """Write one new version: history first, its unique (type, id, version) index being the atomic claim on
        the version number, then the current document, replaced only if it still holds ``previous_version``
        (inserted when there was none, the unique (type, id) index refusing a second creator).
        Raises :class:`VersionRace` when another writer got there first (in a transaction, a first version's
        claim is only judged when it is sent: :meth:`flush`)."""
        history_document = to_bson(version)
        document = to_bson(current)
        if self.session is not None and self.hold_back:
            self.pending.written[(current.resource_type, current.resource_id)] = document
            if previous_version is None:
                self.pending.versions.append(history_document)
                self.pending.currents.append(document)
                return
            await self.flush()
        try:
            await self.history.insert_one(history_document, session=self.session)
            if previous_version is None:
                await self.current.insert_one(document, session=self.session)
                return
            key = {field: {"$eq": document[field]} for field in KEY_FIELDS}
            result = await self.current.replace_one(
                {**key, "version_id": {"$eq": previous_version}}, document, session=self.session
            )
        except DuplicateKeyError as exc:
            raise VersionRace(str(exc)) from exc
        if result.matched_count != 1:
            raise VersionRace(f"{current.resource_type}/{current.resource_id} changed while being written")

    async def flush(self) -> None:
        """Send the pending first versions: one command per collection. A first version whose
        (type, id) another transaction committed meanwhile is a 409, as the create would have answered."""
        pending = self.pending
        if not pending:
            return
        versions, currents = pending.versions, pending.currents
        pending.versions, pending.currents = [], []
        for collection, documents in ((self.history, versions), (self.current, currents)):
            if not documents:
                continue
            try:
                await collection.insert_many(documents, ordered=True, session=self.session)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors or errors[0].get("code") != DUPLICATE_KEY:
                    raise
                refused = documents[errors[0]["index"]]
                raise conflict(f"{refused['resource_type']}/{refused['resource_id']} already exists") from exc
            except DuplicateKeyError as exc:  # pragma: no cover - insert_many reports duplicates as above
                raise VersionRace(str(exc)) from exc

    async def find_page(self, history: bool, query: Filter, sort: Sort, skip: int, limit: int) -> list[dict[str, Any]]:
        await self.flush()
        collection = self.history if history else self.current
        cursor = collection.find(query, RESULT_PROJECTION, sort=sort, skip=skip, limit=limit, session=self.session)
        return await cursor.to_list(length=None)

    async def count(self, history: bool, query: Filter) -> int:
        await self.flush()
        collection = self.history if history else self.current
        return await collection.count_documents(query, session=self.session)

    async def lock(self, key: str) -> None:
        """Write the lock document of ``key`` in this session's transaction (see :class:`WriteLock`): at once,
        never held back, so that a second transaction taking it waits (fails and runs again) from this call on."""
        await self.database[WriteLock._get_collection_name()].update_one(
            {"_id": {"$eq": key}}, {"$inc": {"writes": 1}}, upsert=True, session=self.session
        )

    # -- outbox ------------------------------------------------------------------------------------------------

    @property
    def outbox(self) -> AsyncCollection:
        return self.database[OutboxRecord._get_collection_name()]

    async def insert_message(self, record: OutboxRecord) -> bool:
        """Insert unless the id exists (an upsert that only sets on insert: no duplicate-key error, which would
        abort the surrounding transaction); True when inserted."""
        document = to_bson(record)
        result = await self.outbox.update_one(
            {"_id": {"$eq": document["_id"]}}, {"$setOnInsert": document}, upsert=True, session=self.session
        )
        return result.upserted_id is not None

    async def lease_due_message(
        self, now: datetime, lease_until: datetime, skip_ids: list[str]
    ) -> dict[str, Any] | None:
        """The oldest due undelivered message not in ``skip_ids`` (those this claim already holds), its
        ``next_attempt_at`` moved to ``lease_until`` in the same atomic step (so no other worker can take it)."""
        return await self.outbox.find_one_and_update(
            {"delivered": {"$eq": False}, "dead_at": {"$eq": None}, "next_attempt_at": {"$lte": now},
             "_id": {"$nin": skip_ids}},
            {"$set": {"next_attempt_at": lease_until}},
            sort=OUTBOX_ORDER,
            return_document=ReturnDocument.AFTER,
            session=self.session,
        )

    async def update_message(self, message_id: str, update: dict[str, Any], undelivered_only: bool = False) -> None:
        condition: Filter = {"_id": {"$eq": message_id}}
        if undelivered_only:
            condition["delivered"] = {"$eq": False}
        await self.outbox.update_one(condition, update, session=self.session)

    async def revive_messages(self, message_ids: list[str] | None, now: datetime) -> int:
        condition: Filter = {"delivered": {"$eq": False}, "dead_at": {"$ne": None}}
        if message_ids is not None:
            condition["_id"] = {"$in": message_ids}
        update = {"$set": {"dead_at": None, "attempts": 0, "next_attempt_at": now}}
        result = await self.outbox.update_many(condition, update, session=self.session)
        return result.modified_count

    async def message_summary(self) -> dict[str, Any]:
        """Counts by state and the oldest waiting message's creation time, in one aggregation."""
        waiting = {"$and": [{"$eq": ["$delivered", False]}, {"$eq": [{"$ifNull": ["$dead_at", None]}, None]}]}
        pipeline = [{"$group": {
            "_id": None,
            "pending": {"$sum": {"$cond": [waiting, 1, 0]}},
            "dead": {"$sum": {"$cond": [{"$and": [{"$eq": ["$delivered", False]},
                                                  {"$ne": [{"$ifNull": ["$dead_at", None]}, None]}]}, 1, 0]}},
            "delivered": {"$sum": {"$cond": [{"$eq": ["$delivered", True]}, 1, 0]}},
            "oldest": {"$min": {"$cond": [waiting, "$created_at", None]}},
        }}]
        rows = await (await self.outbox.aggregate(pipeline, session=self.session)).to_list(length=1)
        return rows[0] if rows else {"pending": 0, "dead": 0, "delivered": 0, "oldest": None}

    async def find_messages(self, channel: str | None) -> list[dict[str, Any]]:
        condition: Filter = {"channel": {"$eq": channel}} if channel is not None else {}
        return await self.outbox.find(condition, sort=OUTBOX_ORDER, session=self.session).to_list(length=None)
