"""``lock`` and ``atomically``: a resource that must be unique is created once, however many requests race for it.

Two store objects on one backing store stand for two server processes; the racing transactions interleave at
every await, as requests on one event loop do. Without the lock, MongoDB's snapshot isolation lets every one of
them find nothing and create its own; SQLite's write lock serialises them anyway. Either way the contract is the
same: one resource, and every racer answers it (none sees an error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fhir_server.storage import ResourceStore, open_store
from fhir_server.storage.base import ResourceOperations, StoredResource, uniqueness_key
from tests.storage.helpers import patient, search

RACERS = 12
IDENTIFIER = ("identifier", "http://ehr.example/mrn|race-1")


@pytest.fixture
async def second_store(store, store_url: str, store_clock) -> AsyncIterator[ResourceStore]:
    """Another store object on the same data, as a second worker process has."""
    other = open_store(store_url, store_clock)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def create_once(tx: ResourceOperations) -> StoredResource:
    """The exactly-once pattern of the interface: find, lock when nothing is found, create."""
    page = await search(tx, "Patient", IDENTIFIER)
    if page.items:
        return page.items[0]
    await asyncio.sleep(0)  # let the other racers reach the same point
    await tx.lock(uniqueness_key("Patient", [IDENTIFIER]))
    body = patient("Racer", identifier=[{"system": "http://ehr.example/mrn", "value": "race-1"}])
    return await tx.create(body)


async def test_racing_transactions_that_lock_the_same_key_create_one_resource(store, second_store):
    stores = [store, second_store] * (RACERS // 2)
    results = await asyncio.gather(*(each.atomically(create_once) for each in stores))
    assert len({stored.id for stored in results}) == 1
    assert (await search(store, "Patient", IDENTIFIER)).total == 1


async def test_different_keys_do_not_hold_each_other_up(store, second_store):
    async def create(tx: ResourceOperations, key: str) -> StoredResource:
        await tx.lock(uniqueness_key("Patient", [("identifier", key)]))
        await asyncio.sleep(0)
        return await tx.create(patient(key))

    first, second = await asyncio.gather(
        store.atomically(lambda tx: create(tx, "a|1")), second_store.atomically(lambda tx: create(tx, "a|2"))
    )
    assert first.id != second.id
    assert (await search(store, "Patient")).total == 2


async def test_atomically_commits_everything_or_nothing(store):
    async def fails(tx: ResourceOperations) -> None:
        await tx.create(patient("Ghost"), resource_id="ghost")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.atomically(fails)
    assert (await search(store, "Patient")).total == 0


def test_uniqueness_keys_ignore_parameter_order_and_tell_conditions_apart():
    key = uniqueness_key("Patient", [("identifier", "a|1"), ("active", "true")])
    assert key == uniqueness_key("Patient", [("active", "true"), ("identifier", "a|1")])
    assert key != uniqueness_key("Patient", [("identifier", "a|1")])
    assert key != uniqueness_key("Practitioner", [("identifier", "a|1"), ("active", "true")])


async def test_a_locked_key_holds_a_second_transaction_until_the_first_commits(store, second_store):
    key = uniqueness_key("Patient", [IDENTIFIER])
    order: list[str] = []
    first_locked, release = asyncio.Event(), asyncio.Event()

    async def first(tx: ResourceOperations) -> None:
        await tx.lock(key)
        first_locked.set()
        await release.wait()
        order.append("first")

    async def second(tx: ResourceOperations) -> None:
        await tx.lock(key)  # waits (SQLite) or fails transiently and runs again (MongoDB) while the first is open
        order.append("second")

    holder = asyncio.create_task(store.atomically(first))
    await first_locked.wait()
    contender = asyncio.create_task(second_store.atomically(second))
    await asyncio.sleep(0.2)
    release.set()
    await asyncio.gather(holder, contender)
    assert order == ["first", "second"]
