"""One app per module for the robustness tests: the embedded store in a temporary folder, the test directory
loaded (so ``$submit`` can route), a fixed clock, driven in-process over ASGI with its lifespan.

:class:`Prober` sends each request and checks the promise every answer must keep, whatever the input:
no 5xx, every error an ``application/fhir+json`` OperationOutcome, and a refused write leaves the store as
it was (same number of versions, same newest version, same outbox). Broken promises are collected and reported
together by :meth:`Prober.verdict`, so one run shows every kind of failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_server.settings import PROJECT_ROOT, Settings
from tests.apps import frozen_app

BASE = "http://testserver/fhir"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
FIXED_NOW = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)
DIRECTORY_FILE = PROJECT_ROOT / "tests" / "data" / "directory" / "directory.json"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
R4_EXAMPLES_DIR = PROJECT_ROOT / "tests" / "data" / "r4-examples"
MAX_BODY = 256 * 1024
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# Multiplies the number of generated cases (default 1: the bounded suite); raise it locally to fuzz longer.
# ``FHIR_ROBUSTNESS_MONGODB`` (a MongoDB server URL, no database) runs the same cases on MongoDB instead, each
# module in a database of its own that is dropped afterwards.
MONGODB_SERVER = os.environ.get("FHIR_ROBUSTNESS_MONGODB", "").rstrip("/")
SCALE = max(1, int(os.environ.get("FHIR_ROBUSTNESS_SCALE", "1")))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Prober:
    """Sends requests and asserts the robustness promise on each; counts what it sent."""

    client: httpx.AsyncClient
    app: FastAPI
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    async def fingerprint(self) -> tuple[Any, ...]:
        """What any write would change: the number of stored versions, the newest one, the outbox size."""
        store = self.app.state.store
        page = await store.history(count=1)
        newest = page.items[0] if page.items else None
        newest_key = (newest.reference, newest.version_id) if newest else None
        return page.total, newest_key, len(await store.outbox_messages())

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request and check the promise on it; a broken promise is recorded (see :meth:`verdict`)."""
        before = await self.fingerprint() if method in WRITE_METHODS else None
        response = await self.client.request(method, url, **kwargs)
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        problem = await self.broken_promise(response, before)
        if problem:
            self.failures.append(f"{problem}: {method} {url} -> {response.status_code}: {response.text[:400]}")
        return response

    async def broken_promise(self, response: httpx.Response, before: tuple[Any, ...] | None) -> str | None:
        if response.status_code >= 500:
            return "server error"
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 400:
            if response.request.method == "HEAD":
                return None  # a HEAD answer has no body to check
            if not content_type.startswith("application/fhir+json"):
                return f"error answered as {content_type!r}"
            try:
                body = response.json()
            except ValueError:
                return "error body is not JSON"
            if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome" or not body.get("issue"):
                return "error without an OperationOutcome"
            if before is not None and await self.fingerprint() != before:
                return "a refused write changed the store"
        elif response.content and content_type.startswith("application/fhir+json"):
            return failed_entry(response.json())
        return None

    def verdict(self) -> None:
        """Fail with every broken promise at once (first ones shown), so one run shows the whole picture."""
        assert self.sent, "nothing was sent"
        shown = "\n".join(self.failures[:15])
        assert not self.failures, f"{len(self.failures)} of {self.sent} requests broke the promise:\n{shown}"


def failed_entry(body: Any) -> str | None:
    """A batch answer is 200 with a status per entry: none of those may be a 5xx either."""
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        for entry in body.get("entry") or []:
            status = str((entry.get("response") or {}).get("status", ""))
            if status.startswith("5"):
                return f"batch entry answered {status}"
    return None


@pytest.fixture(scope="module")
async def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    folder = tmp_path_factory.mktemp("robustness")
    settings = Settings(
        store=f"{MONGODB_SERVER}/fhir_robustness_{uuid.uuid4().hex[:12]}?directConnection=true" if MONGODB_SERVER
        else f"sqlite:///{folder / 'fhir.db'}",
        max_body_bytes=MAX_BODY,
        max_json_depth=32,
        default_page_size=5,
        max_page_size=50,
        outbox_enabled=False,
    )
    application = frozen_app(FIXED_NOW, settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            loaded = await http.post("", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON)
            assert loaded.status_code == 200, loaded.text
        yield application
        if MONGODB_SERVER:
            await application.state.store.clear()


@pytest.fixture
async def prober(fuzz_app: FastAPI) -> AsyncIterator[Prober]:
    transport = httpx.ASGITransport(app=fuzz_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as http:
        yield Prober(http, fuzz_app)
