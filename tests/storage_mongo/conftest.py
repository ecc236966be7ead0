"""A MongoStore on a database of its own, on the suite's MongoDB test server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from fhir_server.storage.mongo import MongoStore

pytestmark = pytest.mark.mongo


@pytest.fixture
async def mongo_store(mongo_server_url: str) -> AsyncIterator[MongoStore]:
    store = MongoStore.from_url(f"{mongo_server_url}/fhir_mongo_{uuid.uuid4().hex[:12]}?directConnection=true")
    await store.open()
    try:
        yield store
    finally:
        await store.clear()
        await store.close()
