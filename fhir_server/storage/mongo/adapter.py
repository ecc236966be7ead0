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

from dataclasses import dataclass
from typing import Any

from mongoengine.errors import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fhir_server.errors import bad_request
from fhir_server.storage.base import StoredResource
from fhir_server.storage.mongo.documents import STORED_DOCUMENTS, CurrentResource, ResourceVersion

Filter = dict[str, Any]
Sort = list[tuple[str, int]]


class VersionRace(Exception):
    """Another writer stored the version this one was about to store (the atomic version check failed)."""


def to_bson(document: CurrentResource | ResourceVersion) -> dict[str, Any]:
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


KEY_FIELDS = ("resource_type", "resource_id")
# Only what a StoredResource needs travels back from the server (never _idx / _sort).
RESULT_PROJECTION = {"_id": 0, "resource_type": 1, "resource_id": 1, "version_id": 1, "last_updated": 1,
                     "method": 1, "resource": 1}


@dataclass(frozen=True)
class MongoCollections:
    """The ``resources`` and ``history`` collections of one database, bound to one session (or none)."""

    database: AsyncDatabase
    session: AsyncClientSession | None = None

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

    async def find_current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return await self.current.find_one(
            {"resource_type": {"$eq": resource_type}, "resource_id": {"$eq": resource_id}},
            RESULT_PROJECTION,
            session=self.session,
        )

    async def find_version(self, resource_type: str, resource_id: str, version_id: int) -> dict[str, Any] | None:
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
        Raises :class:`VersionRace` when another writer got there first."""
        try:
            await self.history.insert_one(to_bson(version), session=self.session)
            document = to_bson(current)
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

    async def find_page(self, history: bool, query: Filter, sort: Sort, skip: int, limit: int) -> list[dict[str, Any]]:
        collection = self.history if history else self.current
        cursor = collection.find(query, RESULT_PROJECTION, sort=sort, skip=skip, limit=limit, session=self.session)
        return await cursor.to_list(length=None)

    async def count(self, history: bool, query: Filter) -> int:
        collection = self.history if history else self.current
        return await collection.count_documents(query, session=self.session)
