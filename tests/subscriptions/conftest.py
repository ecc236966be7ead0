"""An app per test over HTTP (in-process ASGI) with the test directory loaded, its outbox worker not running:
tests deliver with :class:`OutboxWorker.run_once` and a clock of their own, so retries need no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from fhir_server.outbox import OutboxWorker
from fhir_server.settings import Settings

from tests.apps import frozen_app
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, FIXED_NOW, load_json
from tests.subscriptions.receiver import Receiver

BASE = "http://testserver/fhir"


@asynccontextmanager
async def served(store_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on ``store_url`` (lifespan run), and a client of it."""
    app = frozen_app(FIXED_NOW, Settings(store=store_url, outbox_enabled=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            yield app, http


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with served(f"sqlite:///{tmp_path / 'fhir.db'}") as (app, http):
        await load_directory(http)
        yield app, http


@pytest.fixture
def client(server: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return server[1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def load_directory(http: httpx.AsyncClient) -> None:
    loaded = await http.post("", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON)
    assert loaded.status_code == 200, loaded.text


class Delivery:
    """The outbox worker of an app, on the app's own (frozen) clock, which the test moves."""

    def __init__(self, app: FastAPI) -> None:
        self.clock = app.state.clock
        self.worker = OutboxWorker(app.state.store, clock=self.clock, base_delay=2.0, jitter=lambda: 1.0)

    async def run(self, after_seconds: float = 0) -> int:
        self.clock.advance(after_seconds)
        return await self.worker.run_once()

    async def close(self) -> None:
        await self.worker.stop()


@pytest.fixture
async def delivery(server: tuple[FastAPI, httpx.AsyncClient]) -> AsyncIterator[Delivery]:
    running = Delivery(server[0])
    yield running
    await running.close()
