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


# -- load: files, directories, NDJSON, the byte-order mark, $submit Bundles -------------------------------------
def test_a_single_resource_reports_its_own_locations_and_a_bom_is_accepted(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xef\xbb\xbf" + json.dumps({**GOOD_PATIENT, "gender": "sometimes"}).encode())
    store_url = f"sqlite:///{tmp_path / 'fhir.db'}"
    assert main(["load", "--no-progress", "--store", store_url, str(bad)]) == 1
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["issue"][0]["expression"] == ["Patient.gender"]
    good = tmp_path / "good.json"
    good.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD_PATIENT).encode())
    assert main(["load", "--no-progress", "--store", store_url, str(good)]) == 0
    assert asyncio.run(_stored(store_url, "Patient", "cli-1"))["gender"] == "female"


def test_a_submit_bundle_is_refused_with_where_to_post_it(tmp_path: Path, capsys) -> None:
    store_url = f"sqlite:///{tmp_path / 'fhir.db'}"
    sample = ROOT / "examples" / "submit-health-net-cardiology.json"
    assert main(["load", "--no-progress", "--store", store_url, str(sample)]) == 1
    issue = json.loads(capsys.readouterr().out)["issue"][0]
    assert "ServiceRequest/$submit" in issue["diagnostics"] and "POST" in issue["diagnostics"]

    async def count() -> int:
        from fhir_server.search.query import parse_search

        store = open_store(store_url)
        await store.open()
        try:
            query = parse_search("ServiceRequest", [("_summary", "count")], default_count=1, max_count=1, strict=True)
            return (await store.search(query)).total
        finally:
            await store.close()

    assert asyncio.run(count()) == 0  # nothing of it was stored


def test_ndjson_and_directories_with_a_progress_bar(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "export"
    (folder / "more").mkdir(parents=True)
    lines = [json.dumps({**GOOD_PATIENT, "id": f"nd-{n}"}) for n in range(3)]
    lines.insert(2, json.dumps({**GOOD_PATIENT, "id": "nd-bad", "gender": "x"}))
    (folder / "Patient.ndjson").write_text("\n".join(lines) + "\n\n")
    (folder / "more" / "org.json").write_text(json.dumps({"resourceType": "Organization", "id": "o-1", "name": "O"}))
    (folder / "notes.txt").write_text("not loaded")
    store_url = f"sqlite:///{tmp_path / 'fhir.db'}"
    assert main(["load", "--store", store_url, str(folder)]) == 1  # one bad line
    captured = capsys.readouterr()
    assert "Patient.ndjson: 3 of 4 entries stored" in captured.out
    assert json.loads(captured.out[captured.out.index("{"):captured.out.index("\n}") + 2])["issue"][0][
        "expression"] == ["Patient.gender"]
    assert "Patient.ndjson:3: 400" in captured.err
    assert "loading" in captured.err and "5 resources" in captured.err  # the progress bar's last state
    assert asyncio.run(_stored(store_url, "Patient", "nd-2"))["id"] == "nd-2"
    assert asyncio.run(_stored(store_url, "Organization", "o-1"))["name"] == "O"


# -- outbox list | retry ----------------------------------------------------------------------------------------
def test_outbox_list_and_retry(store_url: str, capsys) -> None:
    from datetime import datetime, timezone

    from fhir_server.storage.base import OutboxMessage

    async def park() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            for message_id in ("copy-1", "copy-2"):
                await store.enqueue(OutboxMessage(id=message_id, channel="plan-copy",
                                                  destination="http://plan.test/fhir", payload={"a": 1}))
            await store.outbox_dead("copy-1", "HTTP 503: down", datetime.now(timezone.utc))
        finally:
            await store.close()

    asyncio.run(park())
    assert main(["outbox", "list", "--store", store_url, "--state", "dead"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("dead\tcopy-1\tplan-copy\thttp://plan.test/fhir\tattempts=1\tHTTP 503")
    assert main(["outbox", "list", "--store", store_url]) == 0
    assert [line.split("\t")[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["dead", "copy-1"], ["pending", "copy-2"]]
    assert main(["outbox", "retry", "--store", store_url, "copy-1"]) == 0
    assert "1 dead message(s) queued again" in capsys.readouterr().out
    assert main(["outbox", "retry", "--store", store_url, "copy-1"]) == 1  # no longer dead
    capsys.readouterr()
    assert main(["outbox", "list", "--store", store_url, "--state", "dead"]) == 0
    assert capsys.readouterr().out == ""


# -- dev.py passes every server command through -----------------------------------------------------------------
def test_dev_py_passes_server_commands_through(tmp_path: Path) -> None:
    patient = write(tmp_path, "p.json", GOOD_PATIENT)
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "validate", patient], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resourceType"] == "OperationOutcome"
    store = f"sqlite:///{tmp_path / 'dev.db'}"
    listed = subprocess.run([sys.executable, str(ROOT / "dev.py"), "outbox", "list", "--store", store],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "0 message(s)" in listed.stderr
    unknown = subprocess.run([sys.executable, str(ROOT / "dev.py"), "no-such-command"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
