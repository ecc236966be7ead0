"""The benchmark's client under the server's production defaults (authorization on): a SMART backend client
registered in the fresh store, and the access tokens it obtains from the token endpoint.

As a deployment would: a key pair made here (``clients keygen``), the public JWKS registered in the store before
the server starts (what ``python -m fhir_server clients add`` does), then ``client_credentials`` token requests
with a client assertion signed by the private key (PyJWT). The client acts for the plan (role ``plan``, scopes
``system/*.cruds``): it sees every tenant, which the workloads need (the provider directory, ``$submit`` for
several groups, searches across them).

Access tokens live ``FHIR_ACCESS_TOKEN_SECONDS`` (300 s by default). A run lasts a few seconds, a whole benchmark
many minutes: :meth:`Token.header` renews the token when less than :data:`RENEW_BEFORE_SECONDS` remain, so a
request never carries an expired one, whatever ``--duration`` is. A renewal is one token request (a few
milliseconds) made by the load generator between two requests of one connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadgen import RequestMaker

from fhir_server.clock import Clock
from fhir_server.security.cli import assertion, keygen
from fhir_server.security.clients import register_client
from fhir_server.storage import open_store

ORGANIZATION = "Organization/org-blue-shield-promise"
ROLE = "plan"
SCOPES = "system/*.cruds"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RENEW_BEFORE_SECONDS = 60.0


@dataclass
class BenchClient:
    client_id: str
    key_dir: Path


def register(store_url: str, key_dir: Path) -> BenchClient:
    """A key pair in ``key_dir`` and the client registered with its public JWKS in the store at ``store_url``
    (the server is not running yet, or reads its clients from the store on each token request)."""
    made = keygen(str(key_dir), "ES384")
    jwks = json.loads(Path(made["jwks"]).read_text())

    async def add() -> str:
        store = open_store(store_url, Clock())
        await store.open()
        try:
            client = await register_client(store, name="benchmark", organization=ORGANIZATION, role=ROLE,
                                           scopes=SCOPES.split(), jwks=jwks)
            return client.client_id
        finally:
            await store.close()

    return BenchClient(asyncio.run(add()), key_dir)


@dataclass
class Token:
    """An access token of ``client`` for the server at ``base`` (``http://127.0.0.1:PORT/fhir``), renewed before
    it expires."""

    client: BenchClient
    base: str
    value: str = ""
    renew_at: float = 0.0
    renewals: int = field(default=0)

    def fetch(self) -> str:
        token_url = f"{self.base}/auth/token"
        signed = assertion(str(self.client.key_dir), self.client.client_id, token_url, seconds=120)
        response = httpx.post(token_url, data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed, "scope": SCOPES}, timeout=30)
        if response.status_code != 200:
            raise SystemExit(f"the token endpoint refused the benchmark's client: {response.status_code} "
                             f"{response.text}")
        answer = response.json()
        self.value = answer["access_token"]
        self.renew_at = time.monotonic() + max(float(answer["expires_in"]) - RENEW_BEFORE_SECONDS, 1.0)
        self.renewals += 1
        return self.value

    def current(self) -> str:
        if not self.value or time.monotonic() >= self.renew_at:
            self.fetch()
        return self.value

    def header(self) -> bytes:
        return f"Authorization: Bearer {self.current()}\r\n".encode()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.current()}"}


def authorized(make: RequestMaker, token: Token | None) -> RequestMaker:
    """``make``'s requests with the token's ``Authorization`` header (after the request line); ``make`` itself
    without a token (development mode)."""
    if token is None:
        return make

    def with_token(number: int) -> bytes:
        raw = make(number)
        end = raw.index(b"\r\n") + 2
        return raw[:end] + token.header() + raw[end:]

    return with_token
