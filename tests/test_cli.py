"""The command line: serve --help, validate (good and bad files), load (a transaction and a collection)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fhir_server.__main__ import main
from fhir_server.storage import open_store

ROOT = Path(__file__).resolve().parent.parent
GOOD_PATIENT = {"resourceType": "Patient", "id": "cli-1", "gender": "female", "name": [{"family": "Cli"}]}


def write(tmp_path: Path, name: str, content: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


def test_serve_help_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "fhir_server", "serve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--host", "--port", "--base-path", "--store"):
        assert flag in result.stdout


def test_validate_good_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(tmp_path, "good.json", GOOD_PATIENT)]) == 0
    assert json.loads(capsys.readouterr().out)["issue"][0]["severity"] == "information"
    bad = {**GOOD_PATIENT, "gender": "sometimes"}
    assert main(["validate", write(tmp_path, "bad.json", bad)]) == 1
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["issue"][0]["expression"] == ["Patient.gender"]
    profile = "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request"
    request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}}
    assert main(["validate", write(tmp_path, "sr.json", request), "--profile", profile]) == 1
    capsys.readouterr()
    (tmp_path / "broken.json").write_text("{ nope")
    assert main(["validate", str(tmp_path / "broken.json")]) == 1
    assert "line 1" in json.loads(capsys.readouterr().out)["issue"][0]["diagnostics"]


async def _stored(store_url: str, resource_type: str, resource_id: str) -> dict | None:
    store = open_store(store_url)
    await store.open()
    try:
        return (await store.read(resource_type, resource_id)).resource
    finally:
        await store.close()


def test_load_transaction_and_collection(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": GOOD_PATIENT, "request": {"method": "PUT", "url": "Patient/cli-1"}},
        {"resource": {"resourceType": "Observation", "id": "obs", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "urn:uuid:p"}}, "request": {"method": "PUT", "url": "Observation/obs"}},
    ]}
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Organization", "id": "cli-org", "name": "Loaded"}}]}
    files = [write(tmp_path, "tx.json", transaction), write(tmp_path, "col.json", collection)]
    assert main(["load", "--store", store_url, *files]) == 0
    assert "2 of 2 entries stored" in capsys.readouterr().out
    observation = asyncio.run(_stored(store_url, "Observation", "obs"))
    assert observation["subject"]["reference"] == "Patient/cli-1"
    assert asyncio.run(_stored(store_url, "Organization", "cli-org"))["name"] == "Loaded"
    invalid = write(tmp_path, "bad.json", {**GOOD_PATIENT, "id": "cli-2", "gender": "sometimes"})
    assert main(["load", "--store", store_url, invalid]) == 1


def test_serve_answers_metadata_under_the_given_base_path(tmp_path: Path) -> None:
    import httpx

    from tests.conftest import _free_port

    port = _free_port()
    command = [sys.executable, "-m", "fhir_server", "serve", "--port", str(port), "--base-path", "/r4",
               "--store", f"sqlite:///{tmp_path / 'served.db'}"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(retries=50)) as http:
            for _ in range(300):  # wait for start-up: connection refused until uvicorn listens
                try:
                    response = http.get(f"http://127.0.0.1:{port}/r4/metadata")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read().decode()
                    time.sleep(0.05)
            assert response.status_code == 200 and response.json()["fhirVersion"] == "4.0.1"
    finally:
        server.terminate()
        server.wait(timeout=30)
