"""Client registration from the command line into the store a running server uses; keys fetched from a client's
``jwks_uri``; development mode only on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.security.conftest import KeyPair, Party


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fhir_server", *args], capture_output=True, text=True, timeout=120)


def test_a_client_added_from_the_command_line_gets_tokens_from_the_running_server(secure, tmp_path):
    jwks_file = tmp_path / "jwks.json"
    key = KeyPair("RS384")
    jwks_file.write_text(json.dumps(key.jwks))
    store = secure.app.state.settings.store
    added = cli("clients", "add", "--store", store, "--name", "Valley EHR", "--organization", "Organization/ppg-valley",
                "--role", "ehr", "--jwks", str(jwks_file), "--scopes", "system/ServiceRequest.cr system/Task.rs")
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout.strip().splitlines()[-1])["client_id"]

    party = Party(client_id, key, secure).sign_in("system/Task.rs")  # no restart
    assert party.get("/fhir/Task").status_code == 200

    listed = json.loads(cli("clients", "list", "--store", store).stdout)
    assert [(c["client_id"], c["organization"], c["role"]) for c in listed] == [(client_id, "Organization/ppg-valley", "ehr")]
    assert "keys" not in json.dumps(listed)

    assert cli("clients", "disable", client_id, "--store", store).returncode == 0
    refused = party.token_request("system/Task.rs")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_bad_registrations_name_every_problem(tmp_path):
    private = KeyPair()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [{**private.public_jwk, "d": "secret"}]}))
    result = cli("clients", "add", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--name", "x", "--organization", "ppg",
                 "--role", "ehr", "--jwks", str(jwks_file), "--scopes", "read-everything")
    assert result.returncode == 1
    problems = {issue["expression"][0] for issue in json.loads(result.stdout)["issue"]}
    assert problems == {"organization", "scopes", "jwks"}


@pytest.fixture
def jwks_server():
    """A client's JWKS served over HTTP on loopback (the document can be changed between requests)."""
    served: dict = {"jwks": {"keys": []}, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            served["hits"] += 1
            body = json.dumps(served["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    yield served
    server.shutdown()
    server.server_close()


def test_keys_come_from_the_jwks_uri_cached_and_refetched_for_a_new_kid(secure, jwks_server):
    from fhir_server.security.clients import register_client

    first = KeyPair()
    jwks_server["jwks"] = first.jwks
    client = secure.portal.call(lambda: register_client(
        secure.app.state.tokens.store, name="by uri", organization="Organization/ehr-a", role="ehr",
        scopes=["system/Patient.rs"], jwks_uri=jwks_server["url"]))
    party = Party(client.client_id, first, secure)
    assert party.token_request("system/Patient.rs").status_code == 200
    assert party.token_request("system/Patient.rs").status_code == 200
    assert jwks_server["hits"] == 1  # cached
    rotated = KeyPair()
    jwks_server["jwks"] = rotated.jwks
    party.key = rotated
    assert party.token_request("system/Patient.rs").status_code == 200  # unknown kid: fetched again
    assert jwks_server["hits"] == 2
    party.key = first  # the old key is gone from the document
    assert party.token_request("system/Patient.rs").status_code == 401


def test_development_mode_is_refused_off_loopback(tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        create_app(Settings(store=f"sqlite:///{tmp_path / 'x.db'}", auth="off", host="0.0.0.0"))
    create_app(Settings(store=f"sqlite:///{tmp_path / 'x.db'}", auth="off", host="127.0.0.1"))
    create_app(Settings(store=f"sqlite:///{tmp_path / 'x.db'}", auth="on", host="0.0.0.0"))


def test_security_is_on_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FHIR_AUTH", raising=False)
    assert Settings(_env_file=None).auth == "on"
