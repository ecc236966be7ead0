"""Search through the parser on every backend: each parameter type, modifier, prefix, sort, paging, totals."""

from __future__ import annotations

import pytest

from tests.storage.helpers import found, ids, search

pytestmark = pytest.mark.usefixtures("seeded")


# -- token ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("gender", "male")], {"p1"}),
        ([("gender", "female,male")], {"p1", "p2", "p3"}),
        ([("identifier", "http://sys-a|123")], {"p1"}),
        ([("identifier", "123")], {"p1", "p2", "p4"}),
        ([("identifier", "|123")], {"p4"}),
        ([("identifier", "http://sys-b|")], {"p2"}),
        ([("identifier", "http://sys-b|a\\,b")], {"p2"}),
        ([("identifier", "http://sys-a|999")], set()),
        ([("gender:not", "male")], {"p2", "p3", "p4"}),
        ([("gender:not", "male,female")], {"p4"}),
        ([("gender:missing", "true")], {"p4"}),
        ([("gender:missing", "false")], {"p1", "p2", "p3"}),
        ([("_id", "p1,p3")], {"p1", "p3"}),
        ([("_tag", "http://tags|vip")], {"p1"}),
        ([("_security", "R")], {"p2"}),
    ],
)
async def test_patient_token_search(store, params, expected):
    assert await found(store, "Patient", *params) == expected


async def test_token_on_codeable_concept_boolean_and_text(store):
    assert await found(store, "ServiceRequest", ("code", "http://terminology.hl7.org/CodeSystem/v2-0336|S")) == {"sr1"}
    assert await found(store, "ServiceRequest", ("code:text", "second")) == {"sr1"}
    assert await found(store, "ServiceRequest", ("code:text", "CONSULT")) == {"sr2"}
    assert await found(store, "PractitionerRole", ("active", "true")) == {"r1"}
    assert await found(store, "PractitionerRole", ("specialty", "207R00000X")) == {"r1"}
    assert await found(store, "Organization", ("type", "ntwk")) == {"o2"}


# -- string --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("family", "chal")], {"p1", "p3"}),
        ([("name", "chal")], {"p1", "p3", "p4"}),
        ([("family", "muller")], {"p2"}),
        ([("family", "MÜLLER")], {"p2"}),
        ([("given", "zoe")], {"p2"}),
        ([("family:exact", "Chalmers")], {"p1"}),
        ([("family:exact", "chalmers")], set()),
        ([("family:contains", "smith")], {"p3", "p4"}),
        ([("family:contains", "ALMER")], {"p1", "p3"}),
        ([("family", "chalmers"), ("gender", "female")], {"p3"}),
        ([("name", "chal"), ("name", "smith")], {"p4"}),
        ([("name", "zz,peter")], {"p1"}),
        ([("family:missing", "true")], set()),
    ],
)
async def test_patient_string_search(store, params, expected):
    assert await found(store, "Patient", *params) == expected


async def test_string_on_alias_free_organization_name(store):
    assert await found(store, "Organization", ("name", "acme")) == {"o1", "o2"}
    assert await found(store, "Organization", ("name", "acme n")) == {"o2"}


# -- date ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("birthdate", "1974")], {"p1"}),
        ([("birthdate", "1974-12")], {"p1"}),
        ([("birthdate", "1974-12-25")], {"p1"}),
        ([("birthdate", "1980")], {"p2"}),
        ([("birthdate", "1980-05-10")], set()),
        ([("birthdate", "eq1980-05")], {"p2"}),
        ([("birthdate", "ge1980")], {"p2", "p3"}),
        ([("birthdate", "lt1980")], {"p1"}),
        ([("birthdate", "gt1980-05-15")], {"p2", "p3"}),
        ([("birthdate", "le1974-12-25")], {"p1"}),
        ([("birthdate", "sa1980")], {"p3"}),
        ([("birthdate", "eb1980")], {"p1"}),
        ([("birthdate", "ne1980")], {"p1", "p3"}),
        ([("birthdate", "ge1975"), ("birthdate", "lt1985")], {"p2"}),
        ([("birthdate", "1974,1990")], {"p1", "p3"}),
        ([("birthdate:missing", "true")], {"p4"}),
    ],
)
async def test_patient_date_search(store, params, expected):
    assert await found(store, "Patient", *params) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-11", {"sr2"}),  # 09:30+02:00 is 07:30Z on the 11th
        ("2024-03-10T10:00:00Z", {"sr1"}),
        ("2024-03-10T10:00", {"sr1"}),  # zoneless: UTC, minute precision
        ("2024-03-10T12:00:00+02:00", {"sr1"}),
        ("gt2024-03-10T12:00:00+02:00", {"sr2"}),
        ("lt2024", {"sr3"}),
        ("2024-03", {"sr1", "sr2"}),
        ("ge2023-06", {"sr1", "sr2", "sr3"}),
        ("ap2023-06-01", {"sr3"}),
    ],
)
async def test_datetime_search_with_precision_and_zones(store, value, expected):
    assert await found(store, "ServiceRequest", ("authored", value)) == expected


async def test_last_updated_prefixes(store, seeded):
    third = seeded["p3"].last_updated.isoformat(timespec="milliseconds")
    assert await found(store, "Patient", ("_lastUpdated", f"ge{third}")) == {"p3", "p4"}
    assert await found(store, "Patient", ("_lastUpdated", f"gt{third}")) == {"p4"}
    assert await found(store, "Patient", ("_lastUpdated", f"lt{third}")) == {"p1", "p2"}
    assert await found(store, "Patient", ("_lastUpdated", f"le{third}")) == {"p1", "p2", "p3"}
    assert await found(store, "Patient", ("_lastUpdated", third)) == {"p3"}
    assert await found(store, "Patient", ("_lastUpdated", "gt2000")) == {"p1", "p2", "p3", "p4"}


# -- reference and uri ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("subject", "Patient/p1")], {"sr1"}),
        ([("subject", "p1")], {"sr1"}),
        ([("patient", "p1")], {"sr1"}),
        ([("subject:Patient", "p2")], {"sr2"}),
        ([("patient", "Patient/p2")], {"sr2"}),
        ([("subject", "http://other.org/fhir/Patient/p2")], {"sr2"}),
        ([("subject", "Group/g1")], {"sr3"}),
        ([("subject", "Patient/p1,Group/g1")], {"sr1", "sr3"}),
        ([("patient:missing", "true")], {"sr3"}),
        ([("requester", "urn:uuid:abc")], {"sr3"}),
        ([("requester", "Practitioner/d1"), ("status", "active")], {"sr1"}),
        ([("subject", "Patient/nope")], set()),
    ],
)
async def test_service_request_reference_search(store, params, expected):
    assert await found(store, "ServiceRequest", *params) == expected


async def test_reference_search_on_other_types(store):
    assert await found(store, "Task", ("focus", "ServiceRequest/sr1")) == {"t1"}
    assert await found(store, "Task", ("patient", "p1")) == {"t1"}
    assert await found(store, "PractitionerRole", ("network", "Organization/o2")) == {"r1"}
    assert await found(store, "PractitionerRole", ("network", "o2")) == {"r1"}
    assert await found(store, "PractitionerRole", ("practitioner", "d1")) == {"r1", "r2"}
    assert await found(store, "Organization", ("partof", "o1")) == {"o2"}


async def test_uri_search(store):
    assert await found(store, "Patient", ("_profile", "http://example.org/P")) == {"p1"}
    assert await found(store, "Patient", ("_profile", "http://example.org")) == set()
    assert await found(store, "Subscription", ("url", "https://hooks.example.org/a")) == {"s1"}


# -- sort, paging, totals ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("family", ["p1", "p3", "p2", "p4"]),
        ("-family", ["p4", "p2", "p3", "p1"]),
        ("birthdate", ["p1", "p2", "p3", "p4"]),  # missing values last
        ("-birthdate", ["p3", "p2", "p1", "p4"]),
        ("gender,-birthdate", ["p3", "p2", "p1", "p4"]),
        ("_id", ["p1", "p2", "p3", "p4"]),
        ("-_id", ["p4", "p3", "p2", "p1"]),
        ("-_lastUpdated", ["p4", "p3", "p2", "p1"]),
    ],
)
async def test_sort(store, sort, expected):
    assert await ids(store, "Patient", ("_sort", sort)) == expected


async def test_paging_with_count_offset_and_totals(store):
    first = await search(store, "Patient", ("_sort", "_id"), ("_count", "3"))
    assert [i.id for i in first.items] == ["p1", "p2", "p3"] and first.has_more and first.total == 4
    rest = await search(store, "Patient", ("_sort", "_id"), ("_count", "3"), ("_offset", "3"))
    assert [i.id for i in rest.items] == ["p4"] and not rest.has_more and rest.total == 4
    exact = await search(store, "Patient", ("_count", "4"))
    assert len(exact.items) == 4 and not exact.has_more


async def test_unsorted_pages_cover_every_match_once(store):
    pages = [await search(store, "Patient", ("_count", "1"), ("_offset", str(n))) for n in range(4)]
    assert sorted(p.items[0].id for p in pages) == ["p1", "p2", "p3", "p4"]


async def test_count_zero_gives_only_the_total(store):
    page = await search(store, "Patient", ("gender", "female"), ("_count", "0"))
    assert page.items == [] and page.total == 2


async def test_total_none_is_not_counted(store):
    page = await search(store, "Patient", ("_total", "none"))
    assert page.total is None and len(page.items) == 4


async def test_empty_criteria_search_returns_every_current_resource_of_the_type(store):
    assert (await search(store, "ServiceRequest")).total == 3
    assert await found(store, "Task") == {"t1"}


# -- lifecycle: search sees only current, live versions ------------------------------------------------------

async def test_search_follows_updates_and_deletes(store, seeded):
    await store.update({**seeded["p1"].resource, "gender": "female"})
    assert await found(store, "Patient", ("gender", "male")) == set()
    assert "p1" in await found(store, "Patient", ("gender", "female"))
    await store.delete("Patient", "p2")
    assert await found(store, "Patient", ("family", "muller")) == set()
    assert (await search(store, "Patient")).total == 3


# -- values are data -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value",
    ["' OR 1=1 --", '{"$ne": null}', "%", "_", "Robert'); DROP TABLE resources;--", '{"$gt": ""}', "*"],
)
async def test_injection_like_values_are_plain_data(store, value):
    assert await found(store, "Patient", ("family", value)) == set()
    assert await found(store, "Patient", ("identifier", value)) == set()
    assert await found(store, "Patient", ("_id", value)) == set()
    assert await found(store, "Patient", ("family:contains", value)) == set()
    assert (await search(store, "Patient")).total == 4


async def test_injection_like_content_is_found_exactly(store):
    nasty = "O'Brien\"; DROP TABLE resources;-- %_$ne"
    created = await store.create({"resourceType": "Patient", "name": [{"family": nasty}]})
    assert await found(store, "Patient", ("family:exact", nasty)) == {created.id}
    assert await found(store, "Patient", ("family:contains", "drop table")) == {created.id}
    assert await found(store, "Patient", ("family:contains", "%_")) == {created.id}



async def test_reference_by_identifier_modifier(store):
    created = await store.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "performer": [{"identifier": {"system": "http://npi", "value": "1234567890"}}],
        }
    )
    assert await found(store, "ServiceRequest", ("performer:identifier", "http://npi|1234567890")) == {created.id}
    assert await found(store, "ServiceRequest", ("performer:identifier", "1234567890")) == {created.id}
    assert await found(store, "ServiceRequest", ("performer:identifier", "http://other|1234567890")) == set()
    assert await found(store, "ServiceRequest", ("performer:missing", "false")) == {created.id}
