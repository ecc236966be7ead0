"""Security tests: apps with authorization ON (``Settings(auth="on")``, overriding the suite's development-mode
switch), real key pairs generated here, real signed client assertions, a frozen clock (Monday 4 March 2030).

A :class:`Party` is a registered client with its own key; ``party.headers`` carries its access token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_server.security.clients import register_client
from fhir_server.settings import Settings
from tests.apps import frozen_app
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json

NOW = datetime(2030, 3, 4, 15, 0, tzinfo=timezone.utc)
TOKEN_PATH = "/fhir/auth/token"
TOKEN_URL = "http://testserver/fhir/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALL = "system/*.cruds"
EHR_SCOPES = ("system/ServiceRequest.crs system/Task.rus system/ClaimResponse.rs system/Claim.rs system/Patient.cruds "
              "system/Coverage.crus system/Practitioner.rs system/PractitionerRole.rs system/Organization.rs "
              "system/Subscription.crus system/Communication.rs system/Condition.crus system/AuditEvent.rs")


@dataclass
class KeyPair:
    """A client's signing key: ES384 (default) or RS384."""

    alg: str = "ES384"
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.alg == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            public = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.public_jwk = {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


@dataclass
class Party:
    client_id: str
    key: KeyPair
    client: TestClient
    token: str | None = None

    def assertion(self, *, aud: str = TOKEN_URL, exp_in: float = 240, jti: str | None = None,
                  key: KeyPair | None = None, **claims: Any) -> str:
        signing = key or self.key
        now = self.client.app.state.clock().timestamp()
        body = {"iss": self.client_id, "sub": self.client_id, "aud": aud, "exp": int(now + exp_in),
                "jti": jti or uuid.uuid4().hex, **claims}
        return jwt.encode(body, signing.private, algorithm=signing.alg, headers={"kid": signing.kid})

    def token_request(self, scope: str, assertion: str | None = None, **form: str) -> Any:
        data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion or self.assertion(), "scope": scope, **form}
        return self.client.post(TOKEN_PATH, data=data)

    def sign_in(self, scope: str) -> "Party":
        response = self.token_request(scope)
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {**FHIR_JSON, "Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url: str, body: Any, **kwargs: Any) -> Any:
        return self.client.post(url, json=body, headers=self.headers, **kwargs)

    def put(self, url: str, body: Any) -> Any:
        return self.client.put(url, json=body, headers=self.headers)

    def delete(self, url: str) -> Any:
        return self.client.delete(url, headers=self.headers)


def secure_settings(store: str, **overrides: Any) -> Settings:
    # Requests to "testserver" get URLs (and the token endpoint's aud) on that host, as a client sees them.
    return Settings(store=store, auth="on", outbox_enabled=False, allowed_hosts=["testserver"], **overrides)


def register(client: TestClient, organization: str, role: str, scopes: str, *, key: KeyPair | None = None,
             practitioner: str | None = None, name: str | None = None) -> Party:
    """Register a client straight in the app's store (the ``clients add`` command does the same)."""
    key = key or KeyPair()

    async def add() -> str:
        registered = await register_client(
            client.app.state.tokens.store, name=name or f"{role} of {organization}", organization=organization,
            role=role, scopes=scopes.split(), jwks=key.jwks, practitioner=practitioner,
        )
        return registered.client_id

    return Party(client.portal.call(add), key, client)  # type: ignore[union-attr]


def secure_client(store: str, **overrides: Any) -> Iterator[TestClient]:
    app = frozen_app(NOW, secure_settings(store, **overrides))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[TestClient]:
    """An app with security on, on the embedded store, with nothing loaded."""
    yield from secure_client(f"sqlite:///{tmp_path / 'fhir.db'}")


@pytest.fixture
def secure_each(store_url: str) -> Iterator[TestClient]:
    """The same on each store (SQLite and MongoDB)."""
    yield from secure_client(store_url)


def load_directory(client: TestClient) -> Party:
    """Load the test provider directory as the plan; answers the plan's party (scopes system/*.cruds)."""
    plan = register(client, "Organization/org-blue-shield-promise", "plan", ALL).sign_in(ALL)
    loaded = plan.post("/fhir", load_json(DIRECTORY_FILE))
    assert loaded.status_code == 200, loaded.text
    return plan


