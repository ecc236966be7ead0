"""The server as a SMART backend client of the servers it sends to (plan copies, and any FHIR destination that
asks for a token): it signs a client assertion with its own key (the one its ``[base]/.well-known/jwks.json``
publishes, which the receiver registers as the client's JWKS or ``jwks_uri``), gets an access token from the
token endpoint the receiver's ``.well-known/smart-configuration`` names, and sends it as a bearer token.

Which destinations, and under which client id each receiver registered this server: ``FHIR_OUTBOUND_CLIENTS``, a
JSON object from a receiver's FHIR base to that client id. Destinations under no configured base are sent to
without a token, as before. Tokens are reused until shortly before they expire (by the server's clock).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt

from fhir_server.clock import Now
from fhir_server.security.keys import ALGORITHM, KeyRing
from fhir_server.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 240
RENEW_BEFORE_SECONDS = 30


class OutboundAuthError(Exception):
    """No token could be had: the delivery attempt fails (and is retried with back-off)."""


class OutboundAuth:
    def __init__(self, settings: Settings, keys: KeyRing, now: Now) -> None:
        self.settings = settings
        self.keys = keys
        self.now = now
        self._tokens: dict[str, tuple[str, float]] = {}  # receiver base -> (access token, expiry)

    def receiver_of(self, destination: str) -> tuple[str, str] | None:
        """(receiver base, this server's client id there) for a destination under a configured base."""
        for base, client_id in (self.settings.outbound_clients or {}).items():
            base = base.rstrip("/")
            if destination == base or destination.startswith(base + "/"):
                return base, client_id
        return None

    async def headers_for(self, destination: str, http: httpx.AsyncClient) -> dict[str, str]:
        """The Authorization header a delivery to ``destination`` carries (none when it needs no token)."""
        receiver = self.receiver_of(destination)
        if receiver is None:
            return {}
        base, client_id = receiver
        cached = self._tokens.get(base)
        if cached is None or cached[1] - RENEW_BEFORE_SECONDS <= self.now().timestamp():
            cached = await self._token(base, client_id, http)
            self._tokens[base] = cached
        return {"Authorization": f"Bearer {cached[0]}"}

    async def _token(self, base: str, client_id: str, http: httpx.AsyncClient) -> tuple[str, float]:
        try:
            configuration = await http.get(f"{base}/.well-known/smart-configuration", headers={"Accept": "application/json"})
            configuration.raise_for_status()
            token_endpoint = configuration.json()["token_endpoint"]
            answer = await http.post(token_endpoint, data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": await self._assertion(client_id, token_endpoint),
                "scope": self.settings.outbound_scopes,
            })
            answer.raise_for_status()
            body: dict[str, Any] = answer.json()
            return body["access_token"], self.now().timestamp() + float(body.get("expires_in", 60))
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
            raise OutboundAuthError(f"no access token from {base}: {type(exc).__name__} {exc}") from None

    async def _assertion(self, client_id: str, token_endpoint: str) -> str:
        key = await self.keys.key()
        now = int(self.now().timestamp())
        claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint, "exp": now + ASSERTION_SECONDS,
                  "iat": now, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
