"""People sign in with a local account (argon2 hash): the token names the person and the Practitioner, and
``$decide`` records that physician."""

from __future__ import annotations

import subprocess
import sys

from tests.case_management.helpers import BSP, parameters
from tests.second_opinion.helpers import submission
from tests.security.conftest import EHR_SCOPES, load_directory, register

SCOPES = "system/Task.rus system/ServiceRequest.rs system/ClaimResponse.rs system/Patient.rs system/Claim.rs"
PASSWORD = "correct horse battery staple"


def add_account(store: str, username: str = "dr-cmo", password: str = PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fhir_server", "accounts", "add", "--store", store, "--username", username,
         "--practitioner", "Practitioner/pract-13", "--organization", "Organization/ipa-harbor", "--role", "reviewer",
         "--scopes", SCOPES], input=password + "\n", capture_output=True, text=True, timeout=120)


def sign_in(client, username: str, password: str, **extra: str):
    return client.post("/fhir/auth/sign-in", data={"username": username, "password": password, **extra})


def test_a_physician_signs_in_and_decides_as_themselves(secure):
    load_directory(secure)
    added = add_account(secure.app.state.settings.store)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "password" not in added.stdout and "argon2" not in added.stdout

    ehr = register(secure, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    answer = ehr.post("/fhir/ServiceRequest/$submit", submission(plan=BSP, group="Organization/ipa-harbor", treating=[]))
    task_id = next(e["resource"]["id"] for e in answer.json()["entry"] if e["resource"]["resourceType"] == "Task")

    signed_in = sign_in(secure, "dr-cmo", PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["practitioner"] == "Practitioner/pract-13"
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}", "Content-Type": "application/fhir+json"}
    decided = secure.post(f"/fhir/Task/{task_id}/$decide", json=parameters(reviewer="Practitioner/pract-99"),
                          headers=headers)
    assert decided.status_code == 200, decided.text
    provenance = next(e["resource"] for e in decided.json()["entry"] if e["resource"]["resourceType"] == "Provenance")
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/pract-13"


def test_wrong_passwords_and_unknown_people_are_refused_alike(secure):
    assert add_account(secure.app.state.settings.store).returncode == 0
    wrong = sign_in(secure, "dr-cmo", "not the password at all")
    unknown = sign_in(secure, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "invalid_grant", "error_description": "unknown account or wrong password"}
    assert sign_in(secure, "dr-cmo", PASSWORD, scope="system/Observation.rs").json()["error"] == "invalid_scope"


def test_short_passwords_are_refused(secure):
    result = add_account(secure.app.state.settings.store, password="short")
    assert result.returncode == 1 and "at least 12" in result.stdout
