"""Fixtures shared by the whole suite.

Every store-backed test runs once per backend: the embedded SQLite store, and MongoDB. For MongoDB the suite
starts a real MongoDB wire-protocol server (``secantusd-py`` from the ``secantusdb`` test dependency) on a free
loopback port, unless ``FHIR_TEST_MONGODB_URL`` names a MongoDB to use instead. Each test gets a database of
its own, so tests never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The one switch for the suite: apps built by tests run in development mode (no tokens, no audit trail), which the
# server allows on loopback only, where test apps are bound. Security tests build their apps with
# Settings(auth="on") explicitly (tests/security/).
os.environ["FHIR_AUTH"] = "off"

from fhir_server.clock import Clock  # noqa: E402
from fhir_server.storage import ResourceStore, open_store  # noqa: E402

BACKENDS = ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)]

# In-process tests speak to the app as ``http://testserver`` (httpx's and Starlette's test host): a name this
# server answers to in tests, so their absolute URLs keep it (any other Host gets the configured base).
os.environ.setdefault("FHIR_ALLOWED_HOSTS", '["localhost", "127.0.0.1", "[::1]", "testserver"]')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_mongo(url: str, process: subprocess.Popen | None, timeout: float = 60.0) -> None:
    from pymongo import MongoClient

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"MongoDB test server exited with code {process.returncode}")
        try:
            with MongoClient(url, serverSelectionTimeoutMS=1000) as client:
                client.admin.command("ping")
                return
        except Exception as exc:  # noqa: BLE001 - any connection failure means "not up yet"
            last_error = exc
            time.sleep(0.2)
    raise RuntimeError(f"MongoDB test server did not answer at {url}: {last_error}")


def stop_process(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Ask a server process to stop; kill it if it has not within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def mongo_server_url() -> Iterator[str]:
    """URL of a running MongoDB-compatible server (without database name)."""
    external = os.environ.get("FHIR_TEST_MONGODB_URL")
    if external:
        _wait_for_mongo(external, None)
        yield external.rstrip("/")
        return
    executable = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    port = _free_port()
    storage = tempfile.mkdtemp(prefix="fhir-test-mongo-")
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage, "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"mongodb://127.0.0.1:{port}"
    try:
        _wait_for_mongo(f"{url}/?directConnection=true", process)
        yield url
    finally:
        stop_process(process)
        shutil.rmtree(storage, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL naming an empty store of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fhir.db'}"
    server = request.getfixturevalue("mongo_server_url")
    return f"{server}/fhir_test_{uuid.uuid4().hex[:12]}?directConnection=true"


@pytest.fixture
def store_clock() -> Clock:
    """The clock the ``store`` fixture stamps writes with: the wall clock, unless a module overrides this fixture
    with a frozen one to drive time itself."""
    return Clock()


@pytest.fixture
async def store(store_url: str, store_clock: Clock) -> AsyncIterator[ResourceStore]:
    """An open, empty store of each backend; dropped afterwards."""
    backend = open_store(store_url, store_clock)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.clear()
        await backend.close()
