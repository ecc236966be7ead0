"""Change observers on every store: called inside the write's own transaction, with the version replaced."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError, error, unprocessable
from fhir_server.storage.base import OutboxMessage, ResourceOperations, StoredResource
from fhir_server.storage.observed import ChangeObservers, ObservedStore
from tests.storage.helpers import found, patient

Seen = list[tuple[str, int, int | None]]


def recording(seen: Seen):
    """An observer that records (method, version, previous version) and queues one message per change."""

    async def observer(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        seen.append((stored.method, stored.version_id, previous.version_id if previous else None))
        await tx.enqueue(OutboxMessage(
            id=f"change:{stored.reference}/_history/{stored.version_id}",
            channel="test",
            destination="http://127.0.0.1:9/",
            payload=stored.resource or {"deleted": stored.reference},
        ))

    return observer


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
def observed(store, seen: Seen) -> ObservedStore:
    observers = ChangeObservers()
    observers.add("Patient", recording(seen))
    return ObservedStore(store, observers)


async def message_ids(store) -> list[str]:
    return [message.id for message in await store.outbox_messages()]


async def test_direct_writes_call_the_observer_with_the_replaced_version(observed: ObservedStore, seen: Seen):
    created = await observed.create(patient("One"))
    updated, was_created = await observed.update({**created.resource, "gender": "other"})
    assert not was_created
    await observed.delete("Patient", created.id)
    revived, was_created = await observed.update({**created.resource, "gender": "male"})
    assert was_created and revived.version_id == 4
    assert seen == [("POST", 1, None), ("PUT", 2, 1), ("DELETE", 3, 2), ("PUT", 4, None)]
    assert await message_ids(observed) == [f"change:Patient/{created.id}/_history/{n}" for n in (1, 2, 3, 4)]
    assert await observed.delete("Patient", created.id) is not None
    assert await observed.delete("Patient", created.id) is None  # nothing to delete: nothing observed
    assert len(seen) == 5


async def test_update_as_create_with_a_new_id_has_no_previous(observed: ObservedStore, seen: Seen):
    await observed.update({**patient("Named"), "id": "named"})
    assert seen == [("POST", 1, None)]


async def test_writes_through_a_transaction_are_observed_and_roll_back_with_it(observed: ObservedStore, seen: Seen):
    async with observed.transaction() as tx:
        inside = await tx.create(patient("Inside"))
    assert await message_ids(observed) == [f"change:Patient/{inside.id}/_history/1"]
    with pytest.raises(RuntimeError):
        async with observed.transaction() as tx:
            await tx.update({**inside.resource, "gender": "female"})
            raise RuntimeError("the caller's block fails after the change")
    assert len(seen) == 2  # the observer ran, and its message went with the rolled-back change
    assert await message_ids(observed) == [f"change:Patient/{inside.id}/_history/1"]
    assert (await observed.read("Patient", inside.id)).version_id == 1


async def test_a_failing_observer_rolls_the_direct_write_back(store):
    async def refuse(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        await tx.enqueue(OutboxMessage(id="never", channel="test", destination="http://x/", payload={"a": 1}))
        raise unprocessable([error("business-rule", "refused by the observer")])

    observers = ChangeObservers()
    observers.add("Patient", refuse)
    observed = ObservedStore(store, observers)
    with pytest.raises(FhirError) as refused:
        await observed.create(patient("Refused"), resource_id="refused")
    assert refused.value.status == 422
    with pytest.raises(FhirError) as caught:
        await observed.read("Patient", "refused")
    assert caught.value.status == 404
    assert await observed.outbox_messages() == []


async def test_an_observer_writes_resources_atomically_and_sees_the_change(store):
    async def audit(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        assert (await tx.read(stored.resource_type, stored.id)).version_id == stored.version_id
        await tx.create({"resourceType": "Communication", "status": "completed",
                         "subject": {"reference": stored.reference}})

    observers = ChangeObservers()
    observers.add("Patient", audit)
    observed = ObservedStore(store, observers)
    created = await observed.create(patient("Audited"))
    assert len(await found(observed, "Communication", ("subject", f"Patient/{created.id}"))) == 1


async def test_types_without_observers_are_not_observed(observed: ObservedStore, seen: Seen):
    organization = await observed.create({"resourceType": "Organization", "name": "Plain"})
    await observed.update({**organization.resource, "name": "Still plain"})
    async with observed.transaction() as tx:
        await tx.delete("Organization", organization.id)
    assert seen == []
    assert await observed.outbox_messages() == []


async def test_several_observers_run_in_registration_order(store):
    order: list[str] = []

    def named(name: str):
        async def observer(tx, stored, previous) -> None:
            order.append(name)
        return observer

    observers = ChangeObservers()
    observers.add("Patient", named("first"))
    observers.add("Patient", named("second"))
    await ObservedStore(store, observers).create(patient("Ordered"))
    assert order == ["first", "second"]
