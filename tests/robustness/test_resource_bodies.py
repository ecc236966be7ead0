"""Damaged copies of the official R4 examples through every interaction that takes a resource body.

Each case draws an example, damages it (:mod:`tests.robustness.mutations`), and sends it as a create, an update,
an update-as-create, a conditional create or update, or a ``$validate``. Whatever the answer, the prober checks
it is not a 5xx, that errors are OperationOutcomes, and that a refused write changed nothing.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.robustness.conftest import FHIR_JSON, R4_EXAMPLES_DIR, SCALE, Prober, load_json
from tests.robustness.mutations import encode, mutate

EXAMPLES = sorted(R4_EXAMPLES_DIR.glob("*.json"))
CASES_PER_SEED = 200 * SCALE


def interactions(resource_type: str, resource_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, URL, extra headers) of every interaction with a body, for a resource of this type and id."""
    return [
        ("POST", f"/{resource_type}", {}),
        ("PUT", f"/{resource_type}/{resource_id}", {}),
        ("PUT", f"/{resource_type}/fuzz-{resource_id}"[:64], {}),
        ("POST", f"/{resource_type}", {"If-None-Exist": "_id=nothing-like-this"}),
        ("PUT", f"/{resource_type}?_id={resource_id}", {}),
        ("POST", f"/{resource_type}/$validate", {}),
        ("POST", f"/{resource_type}/{resource_id}/$validate", {}),
    ]


def typed(value: Any) -> tuple[str, str]:
    """The type and id a damaged body claims, falling back to something routable."""
    if isinstance(value, dict):
        resource_type = value.get("resourceType")
        resource_id = value.get("id")
        return (resource_type if isinstance(resource_type, str) and resource_type.isalpha() else "Patient",
                resource_id if isinstance(resource_id, str) and resource_id.isalnum() else "fuzz")
    return "Patient", "fuzz"


@pytest.mark.parametrize("seed", range(6))
async def test_damaged_examples_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(CASES_PER_SEED):
        original = load_json(rng.choice(EXAMPLES))
        damaged = mutate(rng, original, rounds=rng.choice((1, 1, 2, 3)))
        resource_type, resource_id = typed(original)
        method, url, headers = rng.choice(interactions(resource_type, resource_id))
        await prober.send(method, url, content=encode(rng, damaged), headers={**FHIR_JSON, **headers})
    prober.verdict()
