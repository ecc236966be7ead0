"""What only the MongoDB store has to prove: its collections and indexes, operator-proof filters, atomic
version checks under concurrency, and real multi-document transactions. The behaviour both stores share is
the storage contract suite's (tests/storage/)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta

import pytest

from fhir_server.errors import FhirError
from fhir_server.search.query import Criterion, SearchQuery, SortKey, StringValue, TokenValue, parse_search
from fhir_server.storage.base import ResourceOperations, StoredResource
from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.mongo.documents import INDEX_ENTRY_ATTRIBUTES, STORED_DOCUMENTS
from fhir_server.storage.mongo.filters import search_filter
from fhir_server.storage.mongo.store import database_name

pytestmark = pytest.mark.mongo


def patient(family: str = "Chalmers", **extra: object) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family}], **extra}


def token_query(name: str, code: str, **options: object) -> SearchQuery:
    return SearchQuery("Patient", [Criterion(name, "token", (TokenValue(None, code),))], **options)


async def raw_collections(store: MongoStore) -> dict[str, list[dict]]:
    database = store._db
    return {name: await database[name].find({}).to_list(None) for name in ("resources", "history")}


def test_database_comes_from_the_url_path() -> None:
    assert database_name("mongodb://db1:27017,db2:27017/plans?replicaSet=rs0") == "plans"
    assert database_name("mongodb://localhost:27017") == "fhir"
    assert database_name("mongodb://localhost/?directConnection=true") == "fhir"


async def test_open_creates_every_declared_index(mongo_store: MongoStore) -> None:
    await mongo_store.open()  # a second open is harmless
    for document_class in STORED_DOCUMENTS:
        info = await mongo_store._db[document_class._get_collection_name()].index_information()
        for spec in document_class._meta["index_specs"]:
            assert info[spec["name"]]["key"] == spec["fields"]
            assert info[spec["name"]].get("unique", False) == spec.get("unique", False)
            assert info[spec["name"]].get("partialFilterExpression") == spec.get("partialFilterExpression")


async def test_current_versions_and_history_are_kept_apart(mongo_store: MongoStore) -> None:
    created = await mongo_store.create(patient("Chalmers"))
    await mongo_store.update({**created.resource, "name": [{"family": "Windsor"}]})
    stored = await raw_collections(mongo_store)
    assert [doc["version_id"] for doc in stored["resources"]] == [2]
    assert sorted(doc["version_id"] for doc in stored["history"]) == [1, 2]
    entries = stored["resources"][0]["_idx"]
    assert {"param": "family", "value": "windsor", "exact": "Windsor"} in entries
    assert {"param": "_id", "code": created.id} in entries


async def test_store_stamps_id_version_and_last_updated(mongo_store: MongoStore) -> None:
    given = patient(id="ignored", meta={"profile": ["http://example.org/p"]})
    created = await mongo_store.create(given)
    assert "meta" not in given or "versionId" not in given["meta"]  # the caller's dict is left alone
    assert uuid.UUID(created.id).version == 4
    meta = created.resource["meta"]
    assert meta["versionId"] == "1" and meta["profile"] == ["http://example.org/p"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", meta["lastUpdated"])
    assert created.last_updated.utcoffset() == timedelta(0)
    read = await mongo_store.read("Patient", created.id)
    assert read.last_updated == created.last_updated and read.resource == created.resource


@pytest.mark.parametrize("hostile", ['{"$ne": null}', "$where", "this.a == 1", ".*", "^"])
async def test_client_values_never_become_operators(mongo_store: MongoStore, hostile: str) -> None:
    await mongo_store.create(patient("Plain", gender="male"))
    target = await mongo_store.create(patient(hostile, gender=hostile))
    found = await mongo_store.search(token_query("gender", hostile))
    assert [item.id for item in found.items] == [target.id]
    by_name = await mongo_store.search(
        SearchQuery("Patient", [Criterion("family", "string", (StringValue(hostile.casefold()),), "contains")])
    )
    assert [item.id for item in by_name.items] == [target.id]


FILTER_FIELDS = {"resource_type", "deleted", "_idx", "param", *INDEX_ENTRY_ATTRIBUTES}
FILTER_OPERATORS = {"$eq", "$regex", "$elemMatch", "$and", "$or", "$nor", "$lt", "$lte", "$gt", "$gte"}
HOSTILE_SEARCHES = [
    ("Patient", [("gender", '{"$ne": null}'), ("family", "$where"), ("name:exact", '{"$gt": ""}')]),
    ("Patient", [("identifier", "$where|{$ne:1}"), ("family:contains", ".*"), ("gender:not", "$regex")]),
    ("Coverage", [("beneficiary", "$ne"), ("subscriber:identifier", "$where|{$gt:0}"), ("payor", "http://x/$where")]),
    ("Coverage", [("identifier:missing", "true"), ("patient", "Patient/p1")]),
    ("Subscription", [("url", '{"$exists": true}'), ("_lastUpdated", "ge2024-01-01")]),
]


def _keys_and_leaves(node: object, under: str = "") -> tuple[set[str], list[tuple[str, object]]]:
    """Every dict key of a filter, and every non-container value with the key it sits under."""
    if isinstance(node, dict):
        found = [_keys_and_leaves(value, key) for key, value in node.items()]
        return set(node) | {k for keys, _ in found for k in keys}, [leaf for _, leaves in found for leaf in leaves]
    if isinstance(node, list):
        found = [_keys_and_leaves(item, under) for item in node]
        return {k for keys, _ in found for k in keys}, [leaf for _, leaves in found for leaf in leaves]
    return set(), [(under, node)]


@pytest.mark.parametrize(("resource_type", "params"), HOSTILE_SEARCHES)
def test_filters_use_only_known_fields_and_explicit_operators(resource_type: str, params: list) -> None:
    query = parse_search(resource_type, params, default_count=20, max_count=100, strict=True)
    keys, leaves = _keys_and_leaves(search_filter(query))
    assert keys <= FILTER_FIELDS | FILTER_OPERATORS
    # every client value is the operand of an explicit operator, never a bare field value
    assert all(under in FILTER_OPERATORS for under, _ in leaves)


@pytest.mark.parametrize("extra", [{"$where": "x"}, {"maritalStatus": {"$set": {"text": "x"}}}])
async def test_operator_keys_are_refused_before_storing(mongo_store: MongoStore, extra: dict) -> None:
    with pytest.raises(FhirError) as raised:
        await mongo_store.create(patient(**extra))
    assert raised.value.status == 400
    assert (await raw_collections(mongo_store)) == {"resources": [], "history": []}


async def test_racing_updates_with_the_same_version_one_wins(mongo_store: MongoStore) -> None:
    created = await mongo_store.create(patient())
    racers = [{**created.resource, "gender": gender} for gender in ("male", "female", "other")]
    results = await asyncio.gather(
        *(mongo_store.update(body, if_match=1) for body in racers), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0][0].version_id == 2
    assert all(isinstance(r, FhirError) and r.status == 412 for r in losers)
    assert (await mongo_store.read("Patient", created.id)).resource["gender"] == winners[0][0].resource["gender"]


async def test_racing_updates_without_if_match_all_land(mongo_store: MongoStore) -> None:
    created = await mongo_store.create(patient())
    racers = [{**created.resource, "gender": gender} for gender in ("male", "female", "other")]
    results = await asyncio.gather(*(mongo_store.update(body) for body in racers))
    assert sorted(stored.version_id for stored, _ in results) == [2, 3, 4]
    page = await mongo_store.history("Patient", created.id)
    assert [item.version_id for item in page.items] == [4, 3, 2, 1]


async def test_transaction_reads_its_own_writes_and_commits_together(mongo_store: MongoStore) -> None:
    async with mongo_store.transaction() as tx:
        assert isinstance(tx, ResourceOperations)
        first = await tx.create(patient("One"))
        second = await tx.create(patient("Two"), resource_id="two")
        assert (await tx.read("Patient", first.id)).id == first.id
        assert (await tx.search(token_query("_id", "two"))).total == 1
        assert (await mongo_store.search(SearchQuery("Patient"))).total == 0  # not visible outside yet
    page = await mongo_store.search(SearchQuery("Patient"))
    assert {item.id for item in page.items} == {first.id, second.id}


async def test_conflicting_transactions_end_in_409(mongo_store: MongoStore) -> None:
    created = await mongo_store.create(patient())
    with pytest.raises(FhirError) as raised:
        async with mongo_store.transaction() as first:
            await first.update({**created.resource, "gender": "male"})
            async with mongo_store.transaction() as second:
                await second.update({**created.resource, "gender": "female"})
    assert raised.value.status == 409
    assert (await mongo_store.read("Patient", created.id)).version_id == 1  # neither committed


async def test_transaction_is_all_or_nothing(mongo_store: MongoStore) -> None:
    existing = await mongo_store.create(patient("Kept"))
    with pytest.raises(FhirError) as raised:
        async with mongo_store.transaction() as tx:
            await tx.create(patient("Lost"))
            await tx.update({**existing.resource, "gender": "female"})
            await tx.create(patient("Again"), resource_id=existing.id)  # 409: already exists
    assert raised.value.status == 409
    assert (await mongo_store.search(SearchQuery("Patient"))).total == 1
    assert (await mongo_store.read("Patient", existing.id)).version_id == 1
    assert (await mongo_store.history()).total == 1


async def test_new_resources_of_a_transaction_are_sent_together_and_read_back_as_stored(
    mongo_store: MongoStore,
) -> None:
    """A transaction's new resources go in one insert per collection (before a search and before the commit);
    until then its reads of them answer what a read from the server would, never the object it wrote."""
    inserts: list[int] = []
    original = type(mongo_store._db["resources"]).insert_many

    async def counting(collection, documents, *args, **kwargs):  # type: ignore[no-untyped-def]
        inserts.append(len(documents))
        return await original(collection, documents, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(mongo_store._db["resources"]), "insert_many", counting)
        async def work(tx: ResourceOperations) -> StoredResource:
            created = [await tx.create(patient(f"P{n}"), resource_id=f"p{n}") for n in range(3)]
            read = await tx.read("Patient", "p1")
            assert read.resource == created[1].resource and read.resource is not created[1].resource
            assert read.last_updated == created[1].last_updated and read.version_id == 1
            assert inserts == []  # nothing sent yet
            assert (await tx.search(SearchQuery("Patient"))).total == 3  # a search sees them: sent first
            assert inserts == [3, 3]
            updated, _ = await tx.update({**read.resource, "gender": "male"})
            assert (await tx.read("Patient", "p1")).resource["gender"] == "male"
            await tx.create(patient("P3"), resource_id="p3")
            return updated

        updated = await mongo_store.atomically(work)
        assert inserts == [3, 3, 1, 1]  # the last one before the commit
    assert (await mongo_store.read("Patient", "p1")).version_id == updated.version_id == 2
    assert (await mongo_store.search(SearchQuery("Patient"))).total == 4


async def test_a_held_back_create_of_an_id_committed_meanwhile_is_a_409(mongo_store: MongoStore) -> None:
    runs: list[int] = []

    async def work(tx: ResourceOperations) -> None:
        runs.append(1)
        await tx.create(patient("Late"), resource_id="taken")
        if len(runs) == 1:
            await mongo_store.create(patient("Early"), resource_id="taken")  # another writer commits first

    with pytest.raises(FhirError) as raised:
        await mongo_store.atomically(work)
    assert raised.value.status == 409 and "already exists" in raised.value.issues[0].diagnostics
    assert (await mongo_store.read("Patient", "taken")).resource["name"] == [{"family": "Early"}]


async def test_deleted_resources_leave_search_but_keep_history(mongo_store: MongoStore) -> None:
    created = await mongo_store.create(patient())
    marker = await mongo_store.delete("Patient", created.id)
    assert marker is not None and marker.deleted and marker.version_id == 2
    assert await mongo_store.delete("Patient", created.id) is None
    with pytest.raises(FhirError) as raised:
        await mongo_store.read("Patient", created.id)
    assert raised.value.status == 410
    assert (await mongo_store.search(SearchQuery("Patient"))).total == 0
    assert (await mongo_store.vread("Patient", created.id, 2)).deleted
    assert (await raw_collections(mongo_store))["resources"][0]["_idx"] == []


async def test_sort_by_parameter_uses_each_resources_own_values(mongo_store: MongoStore) -> None:
    for family in ("Bravo", "alpha", "Charlie"):
        await mongo_store.create(patient(family))
    ascending = SearchQuery("Patient", sort=[SortKey("family", "string")], count=2, total="none")
    page = await mongo_store.search(ascending)
    assert [item.resource["name"][0]["family"] for item in page.items] == ["alpha", "Bravo"]
    assert page.has_more and page.total is None
    descending = SearchQuery("Patient", sort=[SortKey("family", "string", descending=True)], offset=2)
    page = await mongo_store.search(descending)
    assert [item.resource["name"][0]["family"] for item in page.items] == ["alpha"]
    assert not page.has_more and page.total == 3


async def test_clear_drops_the_collections(mongo_store: MongoStore) -> None:
    await mongo_store.create(patient())
    await mongo_store.clear()
    assert not set(await mongo_store._db.list_collection_names()) & {"resources", "history"}
