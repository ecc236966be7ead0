"""The operations with odd inputs: ``$submit`` with damaged sample submissions, ``$decide`` with random
Parameters on a case waiting for a physician, ``$second-opinion-report`` with bad dates and formats,
``$validate`` with odd Parameters, Subscriptions with a damaged channel, ``$status`` of odd ids."""

from __future__ import annotations

import copy
import random
from typing import Any
from urllib.parse import quote

import pytest

from tests.robustness.conftest import EXAMPLES_DIR, FHIR_JSON, SCALE, Prober, load_json
from tests.robustness.mutations import ODD_VALUES, encode, mutate

SUBMISSIONS = sorted(EXAMPLES_DIR.glob("submit-*.json"))
SUBSCRIPTION = load_json(EXAMPLES_DIR / "subscription-valley.json")
DATES = ("2026-01-01", "2026-12-31", "2026-02-30", "2026-1-1", "2026", "2026-01", "2026-01-01T00:00:00Z", "", "x",
         "9999-12-31", "0001-01-01", "0000-00-00", "-2026-01-01", "2026-01-01\u0000", "２０２６-01-01", "20260101")
VALUE_KEYS = ("valueCode", "valueString", "valueDate", "valueReference", "valueCodeableConcept", "valueBoolean",
              "resource", "part", "valueUri", "valueCanonical", "valueInteger")
DECIDE_NAMES = ("decision", "reviewer", "reason", "assignedProvider", "consultativeReviewer", "unknown", "", None)
VALIDATE_NAMES = ("resource", "profile", "mode", "unknown", None)
ODD_PARAMETER_VALUES: tuple[Any, ...] = (
    *ODD_VALUES, "approve", "deny", "refer", {"reference": "Practitioner/pract-13"}, {"reference": "Patient/x"},
    {"text": "reason"}, {"coding": [{"code": 5}]}, {"resourceType": "Patient"}, {"resourceType": 5},
    "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request",
)


def random_parameters(rng: random.Random, names: tuple[Any, ...]) -> Any:
    """A Parameters body, often malformed: odd names, value keys and values, or no list at all."""
    if rng.random() < 0.1:
        return {"resourceType": "Parameters", "parameter": copy.deepcopy(rng.choice(ODD_VALUES))}
    parameters = []
    for _ in range(rng.randrange(0, 5)):
        parameter: Any = {"name": rng.choice(names)}
        for _ in range(rng.choice((0, 1, 1, 2))):
            parameter[rng.choice(VALUE_KEYS)] = copy.deepcopy(rng.choice(ODD_PARAMETER_VALUES))
        if rng.random() < 0.05:
            parameter = copy.deepcopy(rng.choice(ODD_VALUES))
        parameters.append(parameter)
    return {"resourceType": "Parameters", "parameter": parameters}


def damaged_submission(rng: random.Random) -> Any:
    return damaged(rng, load_json(rng.choice(SUBMISSIONS)))


def damaged(rng: random.Random, bundle: dict[str, Any]) -> Any:
    """``bundle`` with one fault: a mutated entry, an odd fullUrl, shuffled, missing or odd entries, or a
    mutated envelope."""
    entries = bundle["entry"]
    entry = rng.choice(entries)
    fault = rng.randrange(6)
    if fault == 0:
        entry["resource"] = mutate(rng, entry["resource"], rounds=rng.choice((1, 2)))
    elif fault == 1:
        entry["fullUrl"] = rng.choice(("", "urn:uuid:", entries[0]["fullUrl"], "Patient/", None, 5, "#x"))
    elif fault == 2:
        rng.shuffle(entries)
    elif fault == 3:
        del entries[rng.randrange(len(entries))]
    elif fault == 4:
        entries.append(rng.choice(({}, {"resource": None}, "x", {"resource": entries[0]["resource"]})))
    else:
        bundle = mutate(rng, bundle, rounds=1)
    return bundle


@pytest.mark.parametrize("seed", range(3))
async def test_damaged_submissions_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(3000 + seed)
    for _ in range(80 * SCALE):
        await prober.send("POST", "/ServiceRequest/$submit", content=encode(rng, damaged_submission(rng)),
                          headers=FHIR_JSON)
    prober.verdict()


async def pended_task_id(prober: Prober, number: int) -> str:
    """A new Task waiting for a physician (the 90.2.17 third-opinion sample is pended A4; its EHR identifier is
    made unique, else the resubmission would answer the same case)."""
    bundle = load_json(EXAMPLES_DIR / "submit-bsp-cmc-third-opinion.json")
    bundle["entry"][0]["resource"]["identifier"][0]["value"] += f"-fuzz-{number}"
    submitted = await prober.send("POST", "/ServiceRequest/$submit", headers=FHIR_JSON, json=bundle)
    assert submitted.status_code == 200, submitted.text
    return next(e["resource"]["id"] for e in submitted.json()["entry"] if e["resource"]["resourceType"] == "Task")


REFERENCES = ("Practitioner/pract-13", "Practitioner/pract-05", "Practitioner/unknown", "Patient/x", "Organization/x",
              "Practitioner/", "#x", "urn:uuid:00000000-0000-0000-0000-000000000000", "http://elsewhere/Practitioner/1")


def plausible_decision(rng: random.Random) -> dict[str, Any]:
    """Well-formed Parameters whose values may still be wrong: unknown or mistyped references, odd codes."""
    parameters: list[dict[str, Any]] = [
        {"name": "decision", "valueCode": rng.choice(("approve", "deny", "refer", "maybe"))},
        {"name": "reviewer", "valueReference": {"reference": rng.choice((REFERENCES[0], *REFERENCES))}},
    ]
    optional = (
        rng.choice(({"name": "reason", "valueString": "fuzz"},
                    {"name": "reason", "valueCodeableConcept": {"coding": [{"system": "http://x", "code": "y"}]}})),
        {"name": "assignedProvider", "valueReference": {"reference": rng.choice(REFERENCES)}},
        {"name": "consultativeReviewer", "valueReference": {"reference": rng.choice(REFERENCES)}},
    )
    parameters += rng.sample(optional, rng.randrange(len(optional) + 1))
    return {"resourceType": "Parameters", "parameter": parameters}


async def test_random_decide_parameters_never_break_the_promise(prober: Prober) -> None:
    rng = random.Random(4000)
    task_ids = [await pended_task_id(prober, number) for number in range(6)] + ["unknown", "a%20b", "x" * 70]
    for _ in range(150 * SCALE):
        task_id = rng.choice(task_ids)
        if rng.random() < 0.6:
            await prober.send("POST", f"/Task/{task_id}/$decide", json=plausible_decision(rng), headers=FHIR_JSON)
        else:
            await prober.send("POST", f"/Task/{task_id}/$decide",
                              content=encode(rng, random_parameters(rng, DECIDE_NAMES)), headers=FHIR_JSON)
    prober.verdict()


async def test_random_report_periods_never_break_the_promise(prober: Prober) -> None:
    rng = random.Random(5000)
    accepts = ("text/csv", "application/fhir+json", "text/html", "*/*", "text/csv;q=0.1, application/json", "")
    formats = ("", "&_format=text/csv", "&_format=csv", "&_format=xml", "&_format=json")
    for _ in range(150 * SCALE):
        headers = {"Accept": rng.choice(accepts)}
        start, end = rng.choice(DATES), rng.choice(DATES)
        if rng.random() < 0.5:
            query = f"start={quote(start)}&end={quote(end)}" + rng.choice(("", f"&start={quote(start)}", "&x=1"))
            await prober.send("GET", f"/$second-opinion-report?{query}{rng.choice(formats)}", headers=headers)
        else:
            parameters = random_parameters(rng, ("start", "end", "unknown"))
            if rng.random() < 0.6:
                parameters["parameter"] = [{"name": "start", "valueDate": start}, {"name": "end", "valueDate": end}]
            await prober.send("POST", f"/$second-opinion-report?{rng.choice(formats)[1:]}",
                              content=encode(rng, parameters), headers={**FHIR_JSON, **headers})
    prober.verdict()


async def test_random_validate_parameters_never_break_the_promise(prober: Prober) -> None:
    rng = random.Random(6000)
    for _ in range(150 * SCALE):
        url = rng.choice(("/Patient/$validate", "/ServiceRequest/$validate", "/Patient/unknown/$validate",
                          "/NotAType/$validate", "/Patient/$validate?profile=%00", "/Patient/$validate?profile=x"))
        await prober.send("POST", url, content=encode(rng, random_parameters(rng, VALIDATE_NAMES)), headers=FHIR_JSON)
    prober.verdict()


async def test_damaged_subscriptions_never_break_the_promise(prober: Prober) -> None:
    rng = random.Random(7000)
    for _ in range(150 * SCALE):
        subscription = copy.deepcopy(SUBSCRIPTION)
        subscription["channel"] = mutate(rng, subscription["channel"], rounds=rng.choice((1, 2))) \
            if rng.random() < 0.5 else copy.deepcopy(rng.choice(ODD_VALUES))
        damaged = mutate(rng, subscription) if rng.random() < 0.3 else subscription
        method, url = rng.choice((("POST", "/Subscription"), ("PUT", "/Subscription/fuzz")))
        if method == "PUT" and isinstance(damaged, dict):
            damaged["id"] = "fuzz"
        await prober.send(method, url, content=encode(rng, damaged), headers=FHIR_JSON)
        await prober.send("GET", rng.choice(("/Subscription/fuzz/$status", "/Subscription/%00/$status")))
    prober.verdict()
