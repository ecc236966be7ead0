"""Batch and transaction Bundles built from the R4 examples, then damaged: bad entries, ``urn:uuid`` cycles,
duplicate fullUrls, entries without a request, odd methods and URLs, and the resource mutations.

A transaction is all-or-nothing: when it is refused, the prober checks the store did not change. A batch is
answered 200 with a status per entry, none of them a 5xx.
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

import pytest

from tests.robustness.conftest import FHIR_JSON, R4_EXAMPLES_DIR, SCALE, Prober, load_json
from tests.robustness.mutations import BAD_REFERENCES, ODD_VALUES, encode, mutate

EXAMPLES = sorted(path for path in R4_EXAMPLES_DIR.glob("*.json") if not path.name.startswith("Bundle-"))
METHODS = ("POST", "PUT", "DELETE", "GET", "HEAD", "PATCH", "OPTIONS", "post", "", None, 5)


def full_url(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"


def entry_for(rng: random.Random, resource: dict[str, Any]) -> dict[str, Any]:
    """A sensible entry for ``resource`` (POST with a urn:uuid, or PUT to its id)."""
    resource_type = resource.get("resourceType", "Patient")
    if rng.random() < 0.5 or not resource.get("id"):
        return {"fullUrl": full_url(rng), "resource": resource, "request": {"method": "POST", "url": resource_type}}
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource_type}/{resource['id']}"}}


def damage_entries(rng: random.Random, entries: list[dict[str, Any]]) -> None:
    """One Bundle-level fault among the entries."""
    well_formed = [e for e in entries if isinstance(e, dict) and isinstance(e.get("request"), dict)
                   and isinstance(e.get("resource"), dict)]
    if not well_formed:
        return
    entry = rng.choice(well_formed)
    fault = rng.randrange(10)
    if fault == 0:
        entry.pop("request", None)
    elif fault == 1:
        entry["request"]["method"] = rng.choice(METHODS)
    elif fault == 2:
        entry["request"]["url"] = rng.choice(("", "/", "Patient/", "NotAType", "Patient?name=x", "Patient/1/_history/x",
                                              "http://elsewhere.example/fhir/Patient/1", "metadata", "$validate",
                                              "Patient/1/$validate", 7, None, "?", "Patient/../x"))
    elif fault == 3:
        rng.choice(well_formed)["fullUrl"] = entry.setdefault("fullUrl", full_url(rng))
    elif fault == 4 and len(well_formed) > 1:
        # A cycle of urn:uuid references: a -> b -> a.
        first, second = rng.sample(well_formed, 2)
        first.setdefault("fullUrl", full_url(rng))
        second.setdefault("fullUrl", full_url(rng))
        first["resource"]["subject"] = {"reference": second["fullUrl"]}
        second["resource"]["subject"] = {"reference": first["fullUrl"]}
    elif fault == 5:
        entry["resource"] = mutate(rng, entry["resource"], rounds=rng.choice((1, 2)))
    elif fault == 6:
        entry["request"]["ifNoneExist"] = rng.choice(("garbage", "=", "_id=", "name:zzz=1", "&&", "unknown=1"))
        entry["request"]["ifMatch"] = rng.choice(('W/"1"', "garbage", 'W/"99999999999999999999"', ""))
    elif fault == 7:
        entry["resource"]["subject"] = {"reference": rng.choice(BAD_REFERENCES)}
    elif fault == 8:
        entries.append(rng.choice(({}, {"resource": None}, {"request": {}}, "entry", [], {"response": {}})))
    else:
        entry["resource"] = rng.choice((None, "text", [], {}, {"resourceType": "Bundle", "type": "transaction"}))


def random_bundle(rng: random.Random) -> Any:
    entries = [entry_for(rng, load_json(rng.choice(EXAMPLES))) for _ in range(rng.randrange(1, 5))]
    for _ in range(rng.choice((1, 1, 2))):
        damage_entries(rng, entries)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": rng.choice(("transaction", "batch")), "entry": entries}
    if rng.random() < 0.1:
        bundle["type"] = copy.deepcopy(rng.choice(("collection", "searchset", "document", "bogus", *ODD_VALUES)))
    if rng.random() < 0.1:
        bundle["entry"] = rng.choice(({}, "x", None, [None]))
    return bundle


@pytest.mark.parametrize("seed", range(4))
async def test_damaged_bundles_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(2000 + seed)
    for _ in range(120 * SCALE):
        bundle = random_bundle(rng)
        await prober.send("POST", "", content=encode(rng, bundle), headers=FHIR_JSON)
    prober.verdict()
