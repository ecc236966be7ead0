"""A small OpenID Connect provider for the tests: discovery, authorization (code flow, PKCE S256 enforced), token
(client_secret_basic, one-use codes bound to their redirect URI and challenge) and JWKS endpoints, with RSA keys
generated here and ID tokens signed by PyJWT, dated by the server's (frozen) clock.

The server talks to it through ``httpx.ASGITransport`` (``create_app(..., oidc_transport=...)``); the test's
"browser" visits its authorization endpoint through a TestClient. Its knobs make it misbehave one way at a time:
``error`` (the person declines), ``claims`` (ID token claims to change; None removes one), ``sign_with`` (a key
it does not publish), ``algorithm``, ``kid``, ``rotate()`` (a new key, the old one withdrawn), ``broken``
(discovery answers 500).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fhir_server.clock import Now
from tests.security.conftest import KeyPair

ISSUER = "https://id.example.test/realms/plan"
CLIENT_ID = "second-opinion-pages"
CLIENT_SECRET = "a client secret with spaces & symbols"


@dataclass
class _Grant:
    subject: str
    nonce: str
    challenge: str
    redirect_uri: str


@dataclass
class TestProvider:
    """The provider; ``subject`` is who signs in at it next."""

    __test__ = False  # not a test class, whatever its name

    now: Now
    issuer: str = ISSUER
    subject: str = "f3c1b7e2-reed"
    error: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    sign_with: KeyPair | None = None
    algorithm: str = "RS256"
    kid: str | None = None  # the kid an ID token names (default: the published key's)
    broken: bool = False
    requests: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.key = KeyPair("RS256")
        self._codes: dict[str, _Grant] = {}
        self.app = Starlette(routes=[
            Route("/realms/plan/.well-known/openid-configuration", self.discovery),
            Route("/realms/plan/protocol/openid-connect/auth", self.authorize),
            Route("/realms/plan/protocol/openid-connect/token", self.token, methods=["POST"]),
            Route("/realms/plan/protocol/openid-connect/certs", self.jwks),
        ])

    def rotate(self) -> None:
        """A new signing key; the old one is no longer published."""
        self.key = KeyPair("RS256")

    # -- endpoints -----------------------------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        self.requests["discovery"] += 1
        if self.broken:
            return Response("down for maintenance", status_code=500)
        endpoints = f"{self.issuer}/protocol/openid-connect"
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{endpoints}/auth", "token_endpoint": f"{endpoints}/token",
            "jwks_uri": f"{endpoints}/certs", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"], "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def jwks(self, request: Request) -> Response:
        self.requests["jwks"] += 1
        return JSONResponse({"keys": [{**self.key.public_jwk, "alg": "RS256"}]})

    async def authorize(self, request: Request) -> Response:
        """Signs ``subject`` in at once (no form) and sends the browser back with a code, or with ``error``."""
        self.requests["authorize"] += 1
        query = request.query_params
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert "openid" in query["scope"].split()
        if self.error:
            answer = {"error": self.error, "error_description": "<b>The user declined</b>", "state": query["state"]}
        else:
            code = secrets.token_urlsafe(16)
            self._codes[code] = _Grant(self.subject, query["nonce"], query["code_challenge"], query["redirect_uri"])
            answer = {"code": code, "state": query["state"]}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(answer)}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.requests["token"] += 1
        form = dict(parse_qsl((await request.body()).decode()))  # no multipart library needed
        if _basic_credentials(request.headers.get("authorization", "")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._codes.pop(str(form.get("code")), None)  # a code serves once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant.redirect_uri or _s256(str(form.get("code_verifier"))) != grant.challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": 300,
                             "id_token": self.id_token(grant)}, headers={"Cache-Control": "no-store"})

    def id_token(self, grant: _Grant) -> str:
        now = int(self.now().timestamp())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": grant.subject, "aud": CLIENT_ID, "iat": now,
                                  "exp": now + 300, "auth_time": now, "nonce": grant.nonce, "name": "Thomas Reed"}
        for name, value in self.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value(now) if callable(value) else value
        headers = {"kid": self.kid or self.key.kid}
        if self.algorithm.startswith("HS"):
            return jwt.encode(claims, CLIENT_SECRET, algorithm=self.algorithm, headers=headers)
        if self.algorithm == "none":
            return jwt.encode(claims, None, algorithm="none", headers=headers)
        return jwt.encode(claims, (self.sign_with or self.key).private, algorithm=self.algorithm, headers=headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return unquote(user), unquote(password)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
