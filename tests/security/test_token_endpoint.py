"""SMART Backend Services through HTTP: discovery, the token endpoint (real ES384/RS384 assertions), and what an
access token is good for (401 without one, expired or forged; 403 beyond its scopes)."""

from __future__ import annotations

import jwt
import pytest

from tests.security.conftest import TOKEN_PATH, KeyPair, register

SCOPES = "system/Patient.crs system/Task.rs"


def test_smart_configuration_advertises_backend_services(secure):
    response = secure.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["token_endpoint"] == "http://testserver/fhir/auth/token"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "permission-v2" in config["capabilities"] and "client-confidential-asymmetric" in config["capabilities"]
    assert "system/ServiceRequest.cr" in config["scopes_supported"]


def test_capability_statement_names_the_token_endpoint(secure):
    security = secure.get("/fhir/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = security["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert oauth["extension"][0]["url"] == "token" and oauth["extension"][0]["valueUri"].endswith("/fhir/auth/token")


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_token_for_a_signed_assertion_grants_requested_and_registered_scopes(secure, alg):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES, key=KeyPair(alg))
    response = party.token_request("system/Patient.rs system/Task.rs system/Claim.rs")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 300
    assert answer["scope"].split() == ["system/Patient.rs", "system/Task.rs"]  # Claim is not registered
    assert response.headers["cache-control"] == "no-store"


def test_jwks_endpoint_publishes_the_key_tokens_are_signed_with(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES).sign_in("system/Patient.rs")
    keys = secure.get("/fhir/.well-known/jwks.json").json()["keys"]
    assert all("d" not in key for key in keys)
    signing = jwt.PyJWK(keys[0])
    claims = jwt.decode(party.token, signing.key, algorithms=["ES384"], audience="http://testserver/fhir",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["sub"] == party.client_id and claims["organization"] == "Organization/ehr-a"


def _refused(response, error="invalid_client"):
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == error
    return response.json()["error_description"]


def test_expired_assertion_is_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    assert "expired" in _refused(party.token_request(SCOPES, party.assertion(exp_in=-1)))


def test_assertion_valid_longer_than_five_minutes_is_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    assert "at most 300" in _refused(party.token_request(SCOPES, party.assertion(exp_in=301)))
    assert party.token_request(SCOPES, party.assertion(exp_in=299)).status_code == 200


def test_replayed_assertion_is_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    assertion = party.assertion(jti="once")
    assert party.token_request(SCOPES, assertion).status_code == 200
    assert "used before" in _refused(party.token_request(SCOPES, assertion))
    # the same jti in a new assertion is a replay too
    assert "used before" in _refused(party.token_request(SCOPES, party.assertion(jti="once")))


def test_assertion_signed_with_another_key_is_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    forged = KeyPair()
    forged.kid = party.key.kid  # same kid, wrong key
    assert "rejected" in _refused(party.token_request(SCOPES, party.assertion(key=forged)))


def test_assertion_for_another_audience_is_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    assert "aud" in _refused(party.token_request(SCOPES, party.assertion(aud="https://elsewhere.example/token")))


def test_unknown_and_disabled_clients_are_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    party_id = party.client_id
    party.client_id = "not-registered"
    assert "unknown" in _refused(party.token_request(SCOPES))
    party.client_id = party_id

    from fhir_server.security.clients import disable_client

    secure.portal.call(disable_client, secure.app.state.tokens.store, party_id)
    assert "disabled" in _refused(party.token_request(SCOPES))


def test_hs256_and_unsigned_assertions_are_refused(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    now = int(secure.app.state.clock().timestamp())
    claims = {"iss": party.client_id, "sub": party.client_id, "aud": "http://testserver/fhir/auth/token",
              "exp": now + 60, "jti": "x"}
    assert "RS384 or ES384" in _refused(party.token_request(SCOPES, jwt.encode(claims, "secret" * 6, algorithm="HS256")))
    assert "RS384 or ES384" in _refused(party.token_request(SCOPES, jwt.encode(claims, None, algorithm="none")))
    assert "not a JWT" in _refused(party.token_request(SCOPES, "garbage"))


def test_bad_token_requests_get_oauth_errors(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES)
    assert party.token_request(SCOPES, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert party.token_request("system/Observation.rs").json()["error"] == "invalid_scope"
    assert party.token_request(SCOPES, client_assertion_type="basic").json()["error"] == "invalid_request"
    as_json = secure.post(TOKEN_PATH, json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


def test_no_token_is_401_with_a_challenge(secure):
    response = secure.get("/fhir/Patient")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "login"


def test_forged_and_expired_access_tokens_are_401(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES).sign_in("system/Patient.rs")
    assert party.get("/fhir/Patient").status_code == 200
    good = party.token
    party.token = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    forged = party.get("/fhir/Patient")
    assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["www-authenticate"]
    party.token = good
    secure.app.state.clock.advance(301)
    assert party.get("/fhir/Patient").status_code == 401


def test_insufficient_scope_is_403_with_the_scope_needed(secure):
    party = register(secure, "Organization/ehr-a", "ehr", SCOPES).sign_in("system/Patient.rs")
    response = party.post("/fhir/Patient", {"resourceType": "Patient"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="system/Patient.c"' in response.headers["www-authenticate"]
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert party.get("/fhir/Task").status_code == 403  # Task.rs registered but not requested: not granted


def test_role_rules_apply_beyond_scopes(secure):
    party = register(secure, "Organization/ehr-a", "ehr", "system/*.cruds").sign_in("system/*.cruds")
    assert party.get("/fhir/_history").status_code == 403  # system history is the plan's
    assert party.post("/fhir/Task/x/$decide", {"resourceType": "Parameters"}).status_code == 403
