"""A running server for PAS clients: the fixed test directory loaded and a fixed clock (Wednesday 25 November
2026, 09:00 in Los Angeles), on the embedded store, or on each store for the transactional paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from fhir_server.settings import Settings
from tests.apps import frozen_app
from tests.clients.conftest import serving
from tests.conftest import _free_port
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, FIXED_NOW


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    app: FastAPI


def live_server(store: str) -> Iterator[LiveServer]:
    port = _free_port()
    app = frozen_app(FIXED_NOW, Settings(store=store, host="127.0.0.1", port=port))
    with serving(app, port) as base_url:
        loaded = httpx.post(base_url, content=DIRECTORY_FILE.read_bytes(), headers=FHIR_JSON, timeout=60)
        assert loaded.status_code == 200, loaded.text
        yield LiveServer(base_url, app)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from live_server(f"sqlite:///{tmp_path / 'fhir.db'}")


@pytest.fixture
def server_on_each_store(store_url: str) -> Iterator[LiveServer]:
    yield from live_server(store_url)
