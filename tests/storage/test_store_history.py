"""History: instance, type and system level, newest first, with deletions, since, count and offset."""

from __future__ import annotations

from tests.storage.helpers import patient


async def _three_versions_and_an_organization(store):
    p = await store.create(patient("Doe"))
    await store.update({**p.resource, "gender": "male"})
    org = await store.create({"resourceType": "Organization", "name": "Acme"})
    deleted = await store.delete("Patient", p.id)
    return p, org, deleted


async def test_instance_history_newest_first_with_deletion(store):
    p, _, _ = await _three_versions_and_an_organization(store)
    page = await store.history("Patient", p.id)
    assert [i.version_id for i in page.items] == [3, 2, 1]
    assert [i.method for i in page.items] == ["DELETE", "PUT", "POST"]
    assert page.items[0].deleted and page.total == 3 and not page.has_more


async def test_type_and_system_history(store):
    p, org, _ = await _three_versions_and_an_organization(store)
    type_page = await store.history("Patient")
    assert [i.version_id for i in type_page.items] == [3, 2, 1]
    assert {i.resource_type for i in type_page.items} == {"Patient"}
    system_page = await store.history()
    assert [(i.resource_type, i.version_id) for i in system_page.items] == [
        ("Patient", 3),
        ("Organization", 1),
        ("Patient", 2),
        ("Patient", 1),
    ]
    assert system_page.total == 4


async def test_history_since_is_inclusive(store):
    p, org, deleted = await _three_versions_and_an_organization(store)
    page = await store.history(since=org.last_updated)
    assert [(i.resource_type, i.version_id) for i in page.items] == [("Patient", 3), ("Organization", 1)]


async def test_history_count_and_offset(store):
    p = await store.create(patient("Doe"))
    for _ in range(4):
        await store.update(p.resource)
    first = await store.history("Patient", p.id, count=2)
    second = await store.history("Patient", p.id, count=2, offset=2)
    last = await store.history("Patient", p.id, count=2, offset=4)
    assert [i.version_id for i in first.items] == [5, 4] and first.has_more
    assert [i.version_id for i in second.items] == [3, 2] and second.has_more
    assert [i.version_id for i in last.items] == [1] and not last.has_more
    assert first.total == 5


async def test_history_of_unknown_resource_is_empty(store):
    page = await store.history("Patient", "nobody")
    assert page.items == [] and not page.has_more


async def test_history_since_just_after_a_version_excludes_it(store):
    from datetime import timedelta

    first = await store.create(patient("Doe"))
    second = await store.create(patient("Roe"))
    page = await store.history("Patient", since=first.last_updated + timedelta(microseconds=1))
    assert [i.id for i in page.items] == [second.id]


async def test_expunge_removes_every_version_and_index_entry_of_the_resources_named(store):
    from fhir_server.errors import FhirError
    from fhir_server.search.query import parse_search

    gone = await store.create(patient("Gone"))
    await store.update({**gone.resource, "gender": "male"})
    kept = await store.create(patient("Kept"))
    assert await store.expunge("Patient", [gone.id, "never-was"]) == 1
    try:
        await store.read("Patient", gone.id)
    except FhirError as error:
        assert error.status == 404  # unknown, not 410: no deletion marker left
    else:
        raise AssertionError("an expunged resource was read")
    assert (await store.history("Patient", gone.id)).items == []
    found = await store.search(parse_search("Patient", [("family", "gone")], default_count=10, max_count=10, strict=True))
    assert found.items == []
    assert (await store.read("Patient", kept.id)).resource["name"][0]["family"] == "Kept"
