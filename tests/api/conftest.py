"""An app per test on each store backend, driven in-process over ASGI (lifespan included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_server.app import create_app
from fhir_server.settings import Settings

BASE = "http://testserver/fhir"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAGE_SIZE = 3
MAX_BODY = 64 * 1024


def api_settings(store_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": store_url,
        "default_page_size": PAGE_SIZE,
        "max_page_size": 50,
        "max_body_bytes": MAX_BODY,
        "max_json_depth": 20,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings(store_url))
    async with application.router.lifespan_context(application):
        yield application
        await application.state.store.clear()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


def patient(family: str = "Doe", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Jan"]}], "gender": "female", **fields}


def outcome_issue(response: httpx.Response) -> dict[str, Any]:
    """The first issue of an OperationOutcome answer (asserting it is one)."""
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]


async def count_of(client: httpx.AsyncClient, resource_type: str) -> int:
    """How many current resources of a type exist (to check nothing was written)."""
    response = await client.get(f"/{resource_type}", params={"_summary": "count"})
    assert response.status_code == 200, response.text
    return response.json()["total"]
