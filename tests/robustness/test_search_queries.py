"""Random search query strings: known and unknown parameters, modifiers, prefixes and values of every odd kind,
through type search (GET and ``POST _search``), system search, history, and conditional update and delete.

Every answer must keep the promise (no 5xx, errors as OperationOutcome, a refused conditional write changes
nothing); a conditional delete that matches is allowed to delete, the store check applies to refusals only.
"""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest

from fhir_server.search.parameters import params_for
from tests.robustness.conftest import FHIR_JSON, SCALE, Prober

TYPES = ("Patient", "ServiceRequest", "Task", "ClaimResponse", "PractitionerRole", "Organization", "Subscription",
         "Observation", "Coverage")
RESULT_PARAMETERS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_offset",
                     "_since", "_at", "_type", "_format", "_pretty", "_contained", "_has:Task:focus:status", "_list",
                     "_id", "_lastUpdated", "_text", "_content", "_filter", "_query", "page", "_getpages")
MODIFIERS = ("", ":exact", ":contains", ":missing", ":not", ":text", ":identifier", ":Patient", ":above", ":below",
             ":in", ":not-in", ":of-type", ":NotAType", ":", "::", ":exact:not", ":missing:x")
PREFIXES = ("", "eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap", "xx", "EQ", "g", "ltlt")
VALUES = (
    "", "x", "2026", "2026-11", "2026-11-25", "2026-11-25T09:00:00Z", "2026-11-25T09:00", "2026-13-45", "T",
    "9999-12-31T23:59:59.999999+14:00", "0000", "-1", "0", "1e9", "true", "false", "null", '{"$ne":null}',
    '{"$gt":""}', "'; DROP TABLE resources; --", "%00", "\x00", "a\u0000b", "|", "||", "http://x|", "|code",
    "a|b|c", "Patient/", "Patient/x/_history/1", "#x", "urn:uuid:", "ServiceRequest/../Task", "*", "*:*",
    "Task:focus", "Task:focus:ServiceRequest", "ServiceRequest:nope", "x" * 5000, "é😀", "\ud800", "%FF", ",", ",,a,,",
    "a,b", "\\,", "$", "name", "-name", "-", "_id,_id,-_lastUpdated", "count", "data", "text", "id,meta",
    "9" * 40, "1.5", "-0", "NaN", "inf",
)


def escaped(text: str, safe: str = "") -> str:
    """Percent-encoded; a lone surrogate goes out as its (invalid) UTF-8 bytes."""
    return quote(text, safe=safe, errors="surrogatepass")


def random_name(rng: random.Random, resource_type: str) -> str:
    known = tuple(params_for(resource_type)) if resource_type in TYPES else ()
    pool = rng.choice((known or RESULT_PARAMETERS, RESULT_PARAMETERS, ("unknown", "", "a b", "_", "%00", "é")))
    return rng.choice(pool) + rng.choice(MODIFIERS)


def random_value(rng: random.Random) -> str:
    return rng.choice(PREFIXES) + rng.choice(VALUES) if rng.random() < 0.4 else rng.choice(VALUES)


def random_query(rng: random.Random, resource_type: str) -> str:
    """A raw query string: each pair percent-encoded, or sent half raw now and then."""
    pairs = []
    for _ in range(rng.randrange(1, 6)):
        name, value = random_name(rng, resource_type), random_value(rng)
        safe = rng.choice(("", "/:,|$*", "%"))
        pairs.append(f"{escaped(name, safe)}={escaped(value, safe)}")
    if rng.random() < 0.15:
        pairs.extend(["_sort=" + escaped(rng.choice(VALUES))] * rng.randrange(2, 4))
    return "&".join(pairs)


def random_search(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    resource_type = rng.choice(TYPES)
    query = random_query(rng, resource_type)
    headers = {"Prefer": "handling=strict"} if rng.random() < 0.3 else {}
    form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    return rng.choice((
        ("GET", f"/{resource_type}?{query}", {"headers": headers}),
        ("POST", f"/{resource_type}/_search", {"content": query.encode(), "headers": form_headers}),
        ("GET", f"?_type={resource_type},{rng.choice(TYPES)}&{query}", {"headers": headers}),
        ("GET", f"/{resource_type}/_history?{query}", {"headers": headers}),
        ("GET", f"/_history?{query}", {"headers": headers}),
        ("DELETE", f"/{resource_type}?{query}", {"headers": headers}),
        ("PUT", f"/{resource_type}?{query}", {"json": {"resourceType": resource_type}, "headers": FHIR_JSON}),
    ))


@pytest.mark.parametrize("seed", range(4))
async def test_random_queries_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(300 * SCALE):
        method, url, options = random_search(rng)
        await prober.send(method, url, **options)
    prober.verdict()
