"""The real ``serve`` process logs JSON lines with request ids, and neither query strings nor uvicorn's own
access lines (which would print them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port
from tests.servers import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_writes_json_logs_without_query_strings(tmp_path: Path, workers: str) -> None:
    port = _free_port()
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("FHIR_")},
                   "FHIR_PORT": str(port), "FHIR_WORKERS": workers, "FHIR_STORE": f"sqlite:///{tmp_path / 'f.db'}",
                   "FHIR_AUTH": "off"}  # the suite's development mode (tests/conftest.py), on loopback
    log = (tmp_path / "stderr").open("w")
    server = subprocess.Popen([sys.executable, "-m", "fhir_server", "serve"], cwd=ROOT, env=environment,
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "stderr").read_text()
                return False

        wait_until(answers, "the server to start")
        answer = httpx.get(f"http://127.0.0.1:{port}/fhir/Patient", params={"identifier": "urn:mrn|MRN-SECRET-9"},
                           headers={"X-Request-Id": "served-1"}, timeout=30)
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "served-1"
        wait_until(lambda: "served-1" in (tmp_path / "stderr").read_text(), "the access line")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    text = (tmp_path / "stderr").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    [access] = [line for line in lines if line.get("request_id") == "served-1"]
    assert access["logger"] == "fhir_server.access" and access["path"] == "/fhir/Patient"
    assert "MRN-SECRET-9" not in text and "uvicorn.access" not in text
