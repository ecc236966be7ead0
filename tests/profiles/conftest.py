"""Shared access to the conformance resources of profiles/ and the example instances that exercise them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = ROOT / "profiles"
EXAMPLES_DIR = ROOT / "tests" / "data" / "profiles"
CANON = "http://example.org/fhir/second-opinion"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def conformance_resources() -> dict[str, dict[str, Any]]:
    """Every resource of profiles/, by file name."""
    return {path.name: load(path) for path in sorted(PROFILES_DIR.glob("*.json"))}


@pytest.fixture(scope="session")
def structure_definitions(conformance_resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The hosted StructureDefinitions, by canonical URL."""
    return {r["url"]: r for r in conformance_resources.values() if r["resourceType"] == "StructureDefinition"}
