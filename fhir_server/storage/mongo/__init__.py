"""The MongoDB store, built on the mongomotor ODM and pymongo's async client.

Modules, one job each: :mod:`.documents` the stored document model and every index (collections
``resources`` for current versions with their search index, ``history`` for every version);
:mod:`.indexing` a resource's search index in that shape; :mod:`.filters` SearchQuery -> Mongo filter and sort;
:mod:`.adapter` the raw collection I/O (sessions); :mod:`.operations` versioned reads and writes;
:mod:`.store` lifecycle, transactions and retries.
"""

from fhir_server.storage.mongo.store import MongoStore

__all__ = ["MongoStore"]
