"""The SQLite query plan of one search per parameter type (and modifier): prints EXPLAIN QUERY PLAN, asserts nothing.

Loads the test provider directory plus ``--patients`` generated patients into a throw-away SQLite file, runs
ANALYZE-free plans (what a fresh server file gets), and for each search prints its plan and its time, so that
an index change can be checked against what the planner really does.

    python bench/query_plans.py [--patients 5000] [--requests 200000]

``--requests N`` also stores N second-opinion requests with the scale test's bulk loader (``bench/bulk.py``) and
adds the scale test's searches (``ServiceRequest?patient=``, ``Task?owner=&status=``) to the plans printed, on a
member and an owner of that data.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the package is the checkout's

from fhir_server.search.query import parse_search  # noqa: E402
from fhir_server.storage.sqlite import SqliteStore, _from_sql, _order_sql, _where_sql  # noqa: E402

SEARCHES: tuple[tuple[str, str], ...] = (
    ("token code", "PractitionerRole?specialty=http://nucc.org/provider-taxonomy|207RC0000X"),
    ("token system only", "Patient?identifier=http://example.org/mrn|"),
    ("token :text", "PractitionerRole?specialty:text=cardio"),
    ("token :not", "Patient?gender:not=female"),
    ("_id", "Patient?_id=p17"),
    ("string prefix", "Patient?family=bench17"),
    ("string :exact", "Patient?family:exact=Bench17"),
    ("string :contains", "Patient?family:contains=ch17"),
    ("reference", "PractitionerRole?practitioner=Practitioner/x"),
    ("date eq", "Patient?birthdate=1970-01-17"),
    ("date gt", "Patient?birthdate=gt1975-01-01"),
    ("date ge", "Patient?birthdate=ge1975-01-01"),
    ("date lt", "Patient?birthdate=lt1971-01-01"),
    ("_lastUpdated gt", "Patient?_lastUpdated=gt2000-01-01"),
    (":missing", "Patient?birthdate:missing=true"),
    ("sort by string", "Patient?_sort=family&gender=female"),
    ("no criteria", "Patient?_count=10"),
)


def patient(number: int) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "http://example.org/mrn", "value": f"mrn-{number}"}],
        "name": [{"family": f"Bench{number}", "given": ["Ada"]}],
        "gender": "female" if number % 2 else "male",
        "birthDate": f"{1970 + number % 30}-01-{1 + number % 28:02d}",
    }


async def load(store: SqliteStore, patients: int) -> None:
    bundle = orjson.loads((ROOT / "tests" / "data" / "directory" / "directory.json").read_bytes())
    async with store.transaction() as tx:
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            await tx.update(resource) if resource.get("id") else await tx.create(resource)
        for number in range(patients):
            await tx.create(patient(number), resource_id=f"p{number}")


def scale_searches(requests: int) -> tuple[tuple[str, str], ...]:
    """The scale test's searches on what the bulk loader stored (``bench/bulk.py``)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bulk

    probe = bulk.probe(requests)
    return (("scale: reference", f"ServiceRequest?patient=Patient/{probe['patient']}"),
            ("scale: reference + token", f"Task?owner=Organization/{probe['owner']}&status={probe['open_status']}"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=0, help="stored requests loaded by bench/bulk.py")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fhir-plans-"))
    store = SqliteStore(workdir / "plans.db")
    await store.open()
    try:
        await load(store, args.patients)
        searches = SEARCHES
        if args.requests:
            import bulk

            began = time.perf_counter()
            await bulk.load(store, 0, args.requests)
            print(f"{args.requests} requests stored by the bulk loader in {time.perf_counter() - began:.0f} s")
            searches = SEARCHES + scale_searches(args.requests)
        db = store._reads()._db
        for label, search in searches:
            resource_type, _, query_string = search.partition("?")
            pairs = [tuple(pair.split("=", 1)) for pair in query_string.split("&")]
            query = parse_search(resource_type, pairs, default_count=20, max_count=1000, strict=True)
            where, params = _where_sql(query, store._reads()._driver(query))
            order, order_params = _order_sql(query.sort)
            sql = f"SELECT r.id FROM {_from_sql(query)} WHERE {where} {order} LIMIT 21"
            bound = [*params, *order_params]
            began = time.perf_counter()
            found = len(db.execute(sql, bound).fetchall())
            elapsed_ms = (time.perf_counter() - began) * 1000
            print(f"\n{label}: {search}  ({found} rows, {elapsed_ms:.2f} ms)")
            for _, parent, _, detail in db.execute(f"EXPLAIN QUERY PLAN {sql}", bound):
                print(f"   {parent:3d} {detail}")
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
