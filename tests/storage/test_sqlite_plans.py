"""The SQLite store's searches use the indexes made for them (EXPLAIN QUERY PLAN), and older files are migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fhir_server.search.query import parse_search
from fhir_server.storage.sqlite import SqliteStore, _from_sql, _order_sql, _where_sql

PLANS = [
    ("PractitionerRole", "specialty=http://nucc.org/provider-taxonomy|207RC0000X", "search_by_code"),
    ("Patient", "family=bench", "search_by_value"),
    ("Patient", "family:exact=Bench", "search_by_value"),
    ("PractitionerRole", "practitioner=Practitioner/x", "search_by_reference"),
    ("Patient", "birthdate=1970", "search_by_date"),
    ("Patient", "birthdate=gt1970", "search_by_date"),
]


def plan(db: sqlite3.Connection, resource_type: str, query_string: str) -> str:
    pairs = [tuple(pair.split("=", 1)) for pair in query_string.split("&")]
    query = parse_search(resource_type, pairs, default_count=20, max_count=100, strict=True)
    where, params = _where_sql(query)
    order, order_params = _order_sql(query.sort)
    sql = f"EXPLAIN QUERY PLAN SELECT r.id FROM {_from_sql(query)} WHERE {where} {order}"
    return "\n".join(row[3] for row in db.execute(sql, [*params, *order_params]))


@pytest.fixture
async def store(tmp_path: Path):
    opened = SqliteStore(tmp_path / "plans.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.mark.parametrize(("resource_type", "query_string", "index"), PLANS)
async def test_a_criterion_reads_its_own_index_and_probes_only_the_matching_resources(
    store, resource_type, query_string, index
):
    found = plan(store._reads()._db, resource_type, query_string)
    assert f"INDEX {index} (type=? AND param=?" in found
    assert "USING INDEX resources_current (type=? AND id=?)" in found


async def test_a_sort_on_a_parameter_reads_each_resources_own_rows(store):
    found = plan(store._reads()._db, "Patient", "gender=female&_sort=family")
    assert "search_by_owner (type=? AND id=? AND param=?)" in found


async def test_a_search_without_narrowing_criteria_walks_live_resources_in_order(store):
    assert "resources_live_by_time (type=?)" in plan(store._reads()._db, "Patient", "gender:not=male")


async def test_a_file_with_the_former_indexes_gets_the_current_ones(tmp_path: Path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE search_index (type TEXT, id TEXT, param TEXT, system TEXT, code TEXT, text TEXT,"
                    " value TEXT, exact TEXT, ref_type TEXT, ref_id TEXT, low TEXT, high TEXT)")
        old.execute("CREATE INDEX search_token ON search_index (type, param, code, system)")
        old.execute("CREATE INDEX search_owner ON search_index (type, id)")
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as migrated:
        names = {row[0] for row in migrated.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"search_by_code", "search_by_owner"} <= names
    assert not names & {"search_token", "search_owner"}


def _tasks_query(query_string: str):
    pairs = [tuple(pair.split("=", 1)) for pair in query_string.split("&")]
    return parse_search("Task", pairs, default_count=20, max_count=100, strict=True)


async def _store_tasks(store: SqliteStore, owners_and_statuses: list[tuple[str, str]]) -> None:
    async with store.transaction() as tx:
        for owner, status in owners_and_statuses:
            await tx.create({"resourceType": "Task", "status": status, "intent": "order",
                             "owner": {"reference": f"Organization/{owner}"}})


async def test_with_several_criteria_the_most_selective_drives_and_the_others_are_probed(store):
    # one group's closed tasks are many, everybody's open ones few: status drives, whichever comes first
    await _store_tasks(store, [("big", "completed")] * 30 + [("big", "in-progress")] * 3 + [("other", "in-progress")] * 2)
    reads = store._reads()
    for query_string in ("owner=Organization/big&status=in-progress", "status=in-progress&owner=Organization/big"):
        query = _tasks_query(query_string)
        driver = reads._driver(query)
        assert driver is not None and driver.name == "status"
        page = await reads.search(query)
        assert page.total == 3 and len(page.items) == 3
        where, params = _where_sql(query, driver)
        found = "\n".join(row[3] for row in reads._db.execute(
            f"EXPLAIN QUERY PLAN SELECT r.id FROM {_from_sql(query)} WHERE {where}", params))
        # the owner check is one seek in the reference index, down to the id
        assert "search_by_reference (type=? AND param=? AND ref_id=? AND ref_type=? AND id=?)" in found
    # the other way round: the owner is the rarer one
    query = _tasks_query("status=completed&owner=Organization/other")
    assert reads._driver(query).name == "owner"
    assert (await reads.search(query)).total == 0


async def test_a_code_only_check_probes_the_resources_own_rows(store):
    """A token without a system cannot seek down to the id in the code index: the check reads the candidate's own
    rows (search_by_owner) instead of every row with that code."""
    query = _tasks_query("owner=Organization/big&status=completed")
    owner, status = query.criteria
    where, params = _where_sql(query, owner)
    found = "\n".join(row[3] for row in store._reads()._db.execute(
        f"EXPLAIN QUERY PLAN SELECT r.id FROM {_from_sql(query)} WHERE {where}", params))
    assert "search_by_owner (type=? AND id=? AND param=?)" in found
