"""Create, read, vread, update, delete, versions and meta: the same on every backend."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from fhir_server.errors import FhirError
from tests.storage.helpers import patient


async def test_create_assigns_uuid_id_version_and_meta(store):
    meta = {"versionId": "7", "tag": [{"code": "x"}]}
    stored = await store.create(patient("Chalmers", "Peter", id="client-id", meta=meta))
    uuid.UUID(stored.id)  # server-assigned, the client's id ignored
    assert stored.version_id == 1 and stored.method == "POST"
    meta = stored.resource["meta"]
    assert stored.resource["id"] == stored.id
    assert meta["versionId"] == "1"
    assert meta["tag"] == [{"code": "x"}]
    assert meta["lastUpdated"].endswith("+00:00") and len(meta["lastUpdated"]) == len("2024-01-01T00:00:00.000+00:00")
    assert stored.last_updated.tzinfo is not None


async def test_create_does_not_change_the_callers_dict(store):
    resource = patient("Doe")
    await store.create(resource)
    assert "id" not in resource and "meta" not in resource


async def test_create_with_given_id_then_duplicate_is_409(store):
    stored = await store.create(patient("Doe"), resource_id="p-1")
    assert stored.id == "p-1"
    with pytest.raises(FhirError) as caught:
        await store.create(patient("Doe"), resource_id="p-1")
    assert caught.value.status == 409


async def test_read_returns_current_version(store):
    created = await store.create(patient("Doe"))
    read = await store.read("Patient", created.id)
    assert read.resource == created.resource and read.version_id == 1
    assert read.last_updated == created.last_updated


async def test_read_unknown_is_404(store):
    with pytest.raises(FhirError) as caught:
        await store.read("Patient", "nope")
    assert caught.value.status == 404


async def test_update_makes_new_version_with_later_timestamp(store):
    created = await store.create(patient("Doe"))
    body = {**created.resource, "gender": "female", "meta": {"versionId": "99", "security": [{"code": "R"}]}}
    updated, was_created = await store.update(body)
    assert not was_created and updated.version_id == 2 and updated.method == "PUT"
    assert updated.resource["meta"]["versionId"] == "2"
    assert updated.resource["meta"]["security"] == [{"code": "R"}]
    assert updated.last_updated > created.last_updated
    assert (await store.read("Patient", created.id)).resource["gender"] == "female"
    first = await store.vread("Patient", created.id, 1)
    assert "gender" not in first.resource and first.version_id == 1


async def test_update_as_create(store):
    stored, was_created = await store.update({"resourceType": "Patient", "id": "chosen", "gender": "male"})
    assert was_created and stored.version_id == 1 and stored.id == "chosen"
    assert (await store.read("Patient", "chosen")).resource["gender"] == "male"


async def test_update_without_id_is_400(store):
    with pytest.raises(FhirError) as caught:
        await store.update({"resourceType": "Patient"})
    assert caught.value.status == 400


async def test_vread_unknown_version_is_404(store):
    created = await store.create(patient("Doe"))
    with pytest.raises(FhirError) as caught:
        await store.vread("Patient", created.id, 5)
    assert caught.value.status == 404


async def test_delete_then_read_is_410_and_marker_is_a_version(store):
    created = await store.create(patient("Doe"))
    marker = await store.delete("Patient", created.id)
    assert marker is not None and marker.deleted and marker.version_id == 2 and marker.method == "DELETE"
    with pytest.raises(FhirError) as caught:
        await store.read("Patient", created.id)
    assert caught.value.status == 410
    vread_marker = await store.vread("Patient", created.id, 2)
    assert vread_marker.deleted and vread_marker.resource is None
    assert (await store.vread("Patient", created.id, 1)).resource["name"][0]["family"] == "Doe"


async def test_delete_missing_or_already_deleted_returns_none(store):
    assert await store.delete("Patient", "never") is None
    created = await store.create(patient("Doe"))
    await store.delete("Patient", created.id)
    assert await store.delete("Patient", created.id) is None


async def test_update_after_delete_revives_with_next_version(store):
    created = await store.create(patient("Doe"))
    await store.delete("Patient", created.id)
    revived, was_created = await store.update({**created.resource, "gender": "other"})
    assert was_created and revived.version_id == 3
    assert (await store.read("Patient", created.id)).resource["gender"] == "other"


async def test_if_match_on_update_and_delete(store):
    created = await store.create(patient("Doe"))
    with pytest.raises(FhirError) as caught:
        await store.update(created.resource, if_match=2)
    assert caught.value.status == 412
    updated, _ = await store.update(created.resource, if_match=1)
    assert updated.version_id == 2
    with pytest.raises(FhirError) as caught:
        await store.delete("Patient", created.id, if_match=1)
    assert caught.value.status == 412
    assert (await store.delete("Patient", created.id, if_match=2)).version_id == 3


async def test_concurrent_updates_with_same_if_match_exactly_one_wins(store):
    created = await store.create(patient("Doe"))
    results = await asyncio.gather(
        store.update({**created.resource, "gender": "male"}, if_match=1),
        store.update({**created.resource, "gender": "female"}, if_match=1),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, FhirError)]
    assert len(winners) == 1 and len(losers) == 1 and losers[0].status == 412
    current = await store.read("Patient", created.id)
    assert current.version_id == 2 and current.resource["gender"] == winners[0][0].resource["gender"]


async def test_timestamps_strictly_increase_for_rapid_updates(store):
    created = await store.create(patient("Doe"))
    stamps = [created.last_updated]
    for _ in range(5):
        updated, _ = await store.update(created.resource)
        stamps.append(updated.last_updated)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_unicode_and_nested_content_round_trip(store):
    resource = patient("Ñúñez", "Zoë", extension=[{"url": "http://x", "valueDecimal": 1.5}], active=True)
    created = await store.create(resource)
    read = await store.read("Patient", created.id)
    assert read.resource["name"] == resource["name"] and read.resource["extension"] == resource["extension"]
    assert read.resource["active"] is True


async def test_clear_removes_everything(store):
    created = await store.create(patient("Doe"))
    await store.clear()
    with pytest.raises(FhirError):
        await store.read("Patient", created.id)
    assert (await store.history()).items == []
