"""A real server on a free loopback port (uvicorn in a background thread) for third-party FHIR clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import _free_port


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[str]:
    """Run ``app`` with uvicorn on ``port`` in a background thread; yields its FHIR base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # wait for start-up (not a timing assertion)
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_base_url(store_url: str) -> Iterator[str]:
    """Base URL of a running server on an empty store (page size 2, so clients must follow links)."""
    port = _free_port()
    settings = Settings(store=store_url, host="127.0.0.1", port=port, default_page_size=2)
    with serving(create_app(settings), port) as base_url:
        yield base_url
