"""The official R4 examples of the types the second-opinion workflow uses round-trip through REST."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.api.conftest import FHIR_JSON

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "r4-examples"
ROUND_TRIP_TYPES = ("ServiceRequest", "Task", "ClaimResponse", "Patient", "Organization", "Practitioner",
                    "PractitionerRole", "Coverage")
EXAMPLE_FILES = sorted(path for kind in ROUND_TRIP_TYPES for path in EXAMPLES.glob(f"{kind}-*.json"))


def without_server_fields(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


def test_examples_are_present() -> None:
    assert {path.name.split("-")[0] for path in EXAMPLE_FILES} == set(ROUND_TRIP_TYPES)


async def test_examples_round_trip(client: httpx.AsyncClient) -> None:
    """One app for all examples (a store per example would make this the slowest test of the suite)."""
    mismatches: list[str] = []
    for path in EXAMPLE_FILES:
        example = json.loads(path.read_text())
        created = await client.post(f"/{example['resourceType']}", json=example, headers=FHIR_JSON)
        if created.status_code != 201:
            mismatches.append(f"{path.name}: create answered {created.status_code} {created.text[:300]}")
            continue
        read = (await client.get(created.headers["location"].rsplit("/_history", 1)[0])).json()
        if without_server_fields(read) != without_server_fields(example):
            mismatches.append(f"{path.name}: read back differs")
        if meta_without_versions(read) != meta_without_versions(example):
            mismatches.append(f"{path.name}: meta differs")
    assert not mismatches, "\n".join(mismatches)


def meta_without_versions(resource: dict) -> dict:
    return {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
