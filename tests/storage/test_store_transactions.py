"""All-or-nothing transactions that see their own writes."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.errors import FhirError
from tests.storage.helpers import found, patient


async def test_commit_writes_everything_and_tx_sees_its_writes(store):
    async with store.transaction() as tx:
        p = await tx.create(patient("Inside"))
        assert (await tx.read("Patient", p.id)).resource["name"][0]["family"] == "Inside"
        assert await found(tx, "Patient", ("family", "inside")) == {p.id}
        cov = await tx.create({"resourceType": "Coverage", "beneficiary": {"reference": f"Patient/{p.id}"}})
    assert (await store.read("Patient", p.id)).version_id == 1
    assert await found(store, "Coverage", ("beneficiary", f"Patient/{p.id}")) == {cov.id}


async def test_exception_rolls_back_everything_including_index_rows(store):
    existing = await store.create(patient("Before"))
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.create(patient("Ghost"), resource_id="ghost")
            await tx.update({**existing.resource, "name": [{"family": "Changed"}]})
            await tx.delete("Patient", existing.id)
            raise RuntimeError("boom")
    with pytest.raises(FhirError) as caught:
        await store.read("Patient", "ghost")
    assert caught.value.status == 404
    current = await store.read("Patient", existing.id)
    assert current.version_id == 1 and current.resource["name"][0]["family"] == "Before"
    assert await found(store, "Patient", ("family", "ghost")) == set()
    assert await found(store, "Patient", ("family", "changed")) == set()
    assert await found(store, "Patient", ("family", "before")) == {existing.id}
    assert (await store.history()).total == 1


async def test_fhir_error_inside_rolls_back(store):
    await store.create(patient("Taken"), resource_id="taken")
    with pytest.raises(FhirError):
        async with store.transaction() as tx:
            await tx.create(patient("New"), resource_id="new-one")
            await tx.create(patient("Dup"), resource_id="taken")
    assert await found(store, "Patient", ("family", "new")) == set()


async def test_other_writers_wait_for_an_open_transaction(store):
    order: list[str] = []
    entered = asyncio.Event()
    release = asyncio.Event()

    async def in_transaction():
        async with store.transaction() as tx:
            await tx.create(patient("First"), resource_id="first")
            entered.set()
            await release.wait()
            order.append("tx-commit")

    async def outside_writer():
        await entered.wait()
        writer = asyncio.ensure_future(store.create(patient("Second"), resource_id="second"))
        await asyncio.sleep(0)
        order.append("writer-waiting")
        release.set()
        await writer
        order.append("writer-done")

    await asyncio.gather(in_transaction(), outside_writer())
    assert order == ["writer-waiting", "tx-commit", "writer-done"]
    assert await found(store, "Patient", ("_id", "first,second")) == {"first", "second"}


async def test_uncommitted_writes_are_invisible_outside_the_transaction(store):
    seen_outside: list[int] = []

    async with store.transaction() as tx:
        await tx.create(patient("Pending"), resource_id="pending")
        try:
            await store.read("Patient", "pending")
        except FhirError as exc:
            seen_outside.append(exc.status)
        seen_outside.append((await store.search(_family_query("pending"))).total)
    assert seen_outside == [404, 0]
    assert (await store.read("Patient", "pending")).version_id == 1


def _family_query(family: str):
    from fhir_server.search.query import parse_search

    return parse_search("Patient", [("family", family)], default_count=10, max_count=10, strict=True)
