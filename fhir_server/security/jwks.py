"""Key sets published at a URL (a client's ``jwks_uri``, an OpenID provider's ``jwks_uri``), fetched and reused
for a while by the server's clock: one cache for both, so the client credentials grant and the external sign-in
fetch, parse and keep keys the same way. Callers ask for a fresh copy (``refresh``) when a token names a key id
the kept set lacks (the key was rotated), and turn :class:`KeySetUnavailable` into their own refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import jwt
from jwt import PyJWKSet

from fhir_server.clock import Now


class KeySetUnavailable(Exception):
    """The key set could not be fetched, or holds no usable key; the message names the cause's type."""


@dataclass
class _Kept:
    keys: PyJWKSet
    until: datetime


class JwksCache:
    """Key sets by URL, each reused for ``seconds``; ``transport`` and ``timeout`` as httpx takes them (tests
    hand in the transport of an application of their own)."""

    def __init__(self, now: Now, seconds: int, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._now = now
        self._seconds = seconds
        self._timeout = timeout
        self._transport = transport
        self._kept: dict[str, _Kept] = {}

    async def get(self, uri: str, refresh: bool = False) -> PyJWKSet:
        kept = self._kept.get(uri)
        if kept and kept.until > self._now() and not refresh:
            return kept.keys
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
                response = await http.get(uri, headers={"Accept": "application/json"})
                response.raise_for_status()
                keys = PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, TypeError, AttributeError, jwt.PyJWTError) as exc:
            raise KeySetUnavailable(type(exc).__name__) from None
        self._kept[uri] = _Kept(keys, self._now() + timedelta(seconds=self._seconds))
        return keys
