"""_include / _revinclude (with :iterate) resolved through the store interface."""

from __future__ import annotations

import pytest

from fhir_server.search.includes import resolve_includes
from fhir_server.search.query import parse_search

pytestmark = pytest.mark.usefixtures("seeded")


async def _included(store, resource_type: str, *params: tuple[str, str]) -> tuple[list[str], list[str]]:
    """(matches, included) as ``Type/id`` lists."""
    query = parse_search(resource_type, list(params), default_count=50, max_count=100, strict=True)
    page = await store.search(query)
    extra = await resolve_includes(store, query, page.items)
    return [i.reference for i in page.items], [i.reference for i in extra]


async def test_include_reads_local_targets_and_skips_unknown_and_absolute(store):
    matches, extra = await _included(store, "ServiceRequest", ("_include", "ServiceRequest:subject"))
    assert sorted(matches) == ["ServiceRequest/sr1", "ServiceRequest/sr2", "ServiceRequest/sr3"]
    assert extra == ["Patient/p1"]  # Group/g1 does not exist; sr2 points to another server


async def test_include_with_target_type_and_several_includes(store):
    _, extra = await _included(
        store,
        "ServiceRequest",
        ("_id", "sr1"),
        ("_include", "ServiceRequest:subject"),
        ("_include", "ServiceRequest:requester:Practitioner"),
    )
    assert sorted(extra) == ["Patient/p1", "Practitioner/d1"]
    only_organizations = ("_include", "ServiceRequest:requester:Organization")
    _, extra = await _included(store, "ServiceRequest", ("_id", "sr1"), only_organizations)
    assert extra == []


async def test_include_skips_deleted_targets(store):
    await store.delete("Practitioner", "d1")
    _, extra = await _included(store, "PractitionerRole", ("_include", "PractitionerRole:practitioner"))
    assert extra == []


async def test_included_resources_are_not_repeated(store):
    matches, extra = await _included(
        store,
        "PractitionerRole",
        ("_include", "PractitionerRole:practitioner"),
        ("_include", "PractitionerRole:network"),
    )
    assert sorted(matches) == ["PractitionerRole/r1", "PractitionerRole/r2"]
    assert sorted(extra) == ["Organization/o2", "Practitioner/d1"]


async def test_include_of_a_match_is_not_repeated(store):
    matches, extra = await _included(store, "Organization", ("_include", "Organization:partof"))
    assert sorted(matches) == ["Organization/o1", "Organization/o2"] and extra == []


async def test_revinclude_finds_sources_pointing_at_the_page(store):
    matches, extra = await _included(store, "Patient", ("_id", "p1,p2"), ("_revinclude", "ServiceRequest:subject"))
    assert sorted(extra) == ["ServiceRequest/sr1", "ServiceRequest/sr2"]  # sr2's absolute URL ends in Patient/p2
    _, extra = await _included(store, "Practitioner", ("_revinclude", "PractitionerRole:practitioner"))
    assert sorted(extra) == ["PractitionerRole/r1", "PractitionerRole/r2"]


async def test_revinclude_iterate_goes_one_level_further(store):
    _, extra = await _included(
        store,
        "Patient",
        ("_id", "p1"),
        ("_revinclude", "ServiceRequest:patient"),
        ("_revinclude:iterate", "Task:focus"),
    )
    assert extra == ["ServiceRequest/sr1", "Task/t1"]


async def test_include_iterate_follows_included_resources(store):
    _, extra = await _included(
        store,
        "Task",
        ("_include", "Task:focus"),
        ("_include:iterate", "ServiceRequest:requester"),
    )
    assert extra == ["ServiceRequest/sr1", "Practitioner/d1"]


async def test_no_includes_means_nothing_extra(store):
    _, extra = await _included(store, "Patient")
    assert extra == []
