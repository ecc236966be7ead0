"""A real server of two worker processes (``serve`` with ``FHIR_WORKERS=2``) on each store, for the race tests.

The races this package checks happen between processes and between concurrent transactions, so the tests go
through the real thing: ``python -m fhir_server serve`` in a subprocess on a free port, its two workers sharing
one SQLite file or one MongoDB database (the suite's wire-protocol server), the test directory loaded through
HTTP. One server per backend for the whole module; each test uses identifiers of its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.settings import PROJECT_ROOT

DIRECTORY_FILE = PROJECT_ROOT / "tests" / "data" / "directory" / "directory.json"
EXAMPLES = PROJECT_ROOT / "examples"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
STARTUP_SECONDS = 90.0


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: str, tmp: Path, workers: int = 2, **environment: str) -> tuple[subprocess.Popen, str]:
    """``serve`` in a subprocess; (the process, its base URL) once ``/metadata`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "FHIR_HOST": "127.0.0.1",
        "FHIR_PORT": str(port),
        "FHIR_STORE": store,
        "FHIR_WORKERS": str(workers),
        "FHIR_OUTBOX_ENABLED": "false",
        "FHIR_LOG_LEVEL": "warning",
        **environment,
    }
    log = (tmp / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fhir_server", "serve"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {(tmp / log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError("the server did not answer /metadata in time")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a two-worker server with the test directory loaded, on each store in turn."""
    tmp = tmp_path_factory.mktemp(f"workers-{request.param}")
    if request.param == "sqlite":
        store = f"sqlite:///{tmp / 'fhir.db'}"
    else:
        store = f"{request.getfixturevalue('mongo_server_url')}/fhir_race_{uuid.uuid4().hex[:12]}?directConnection=true"
    process, base = start_server(store, tmp)
    try:
        loaded = httpx.post(base, json=load_json(DIRECTORY_FILE), headers=FHIR_JSON, timeout=120)
        assert loaded.status_code == 200, loaded.text
        yield base
    finally:
        stop_server(process)
