"""Storage backends behind one interface (:mod:`fhir_server.storage.base`)."""

from __future__ import annotations

from fhir_server.clock import Now, utc_now
from fhir_server.storage.base import Page, ResourceOperations, ResourceStore, StoredResource, StoreUnavailable

__all__ = ["Page", "ResourceOperations", "ResourceStore", "StoreUnavailable", "StoredResource", "open_store"]


def open_store(url: str, clock: Now = utc_now) -> ResourceStore:
    """Build (not yet open) the store a URL names: ``sqlite:///file.db`` or ``mongodb://...``, stamping its
    writes with ``clock`` (the app's one clock)."""
    if url.startswith("sqlite:"):
        from fhir_server.storage.sqlite import SqliteStore

        return SqliteStore.from_url(url, clock)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from fhir_server.storage.mongo import MongoStore

        return MongoStore.from_url(url, clock)
    scheme = url.partition(":")[0] if ":" in url else url
    raise StoreUnavailable(f"unsupported store URL scheme {scheme!r} (FHIR_STORE): use sqlite:///path/file.db or "
                           "mongodb://host:port/db?replicaSet=rs0")
