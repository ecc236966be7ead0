"""Fixtures of the second-opinion tests: the plan catalog, the fixed test directory, and a running app on an
embedded store with that directory loaded and a fixed clock (Wednesday 25 November 2026, 09:00 in Los Angeles)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.second_opinion.plans import PlanCatalog, load_catalog
from fhir_server.settings import PROJECT_ROOT, Settings
from tests.apps import frozen_app

DIRECTORY_FILE = PROJECT_ROOT / "tests" / "data" / "directory" / "directory.json"
EXAMPLES = PROJECT_ROOT / "examples"
FIXED_NOW = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)
FHIR_JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def example(name: str) -> dict[str, Any]:
    """A fresh copy of one of the sample submissions in examples/."""
    return copy.deepcopy(load_json(EXAMPLES / f"{name}.json"))


@pytest.fixture(scope="session")
def catalog() -> PlanCatalog:
    return load_catalog(PROJECT_ROOT / "mappings")


@pytest.fixture(scope="session")
def directory_resources() -> list[dict[str, Any]]:
    return [entry["resource"] for entry in load_json(DIRECTORY_FILE)["entry"]]


def running_app(store: str) -> Iterator[TestClient]:
    app = frozen_app(FIXED_NOW, Settings(store=store))
    with TestClient(app) as test_client:
        loaded = test_client.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON)
        assert loaded.status_code == 200, loaded.text
        yield test_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on the embedded store (most tests: fast)."""
    yield from running_app(f"sqlite:///{tmp_path / 'fhir.db'}")


@pytest.fixture
def client_on_each_store(store_url: str) -> Iterator[TestClient]:
    """The app on each backend in turn (SQLite and MongoDB), for the transactional paths."""
    yield from running_app(store_url)
