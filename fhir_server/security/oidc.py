"""The server as an OpenID Connect relying party: the provider's discovery document and keys, the authorization
request (code flow with PKCE), the code exchange at its token endpoint and the checks of the ID token it answers.

All JWT and JWK work is PyJWT's (with ``cryptography``). Times are checked against the server's one clock with
``FHIR_OIDC_LEEWAY_SECONDS`` of tolerance for the provider's clock; what the provider publishes (discovery, JWKS)
is reused for ``FHIR_OIDC_DISCOVERY_CACHE_SECONDS`` by the same clock, and the JWKS is fetched again at once when
an ID token names a key it does not hold (the provider rotated its keys). The HTTP transport can be handed in
(``transport``): the tests talk to a provider application of their own without a network.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from fhir_server.clock import Now
from fhir_server.security.jwks import JwksCache, KeySetUnavailable
from fhir_server.security.oidc_state import PendingSignIn
from fhir_server.settings import Settings

REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class SignInRefused(Exception):
    """An external sign-in that does not start a session: ``words`` for the person, ``status`` for the page."""

    def __init__(self, words: str, status: int = 401) -> None:
        super().__init__(words)
        self.words = words
        self.status = status


@dataclass(frozen=True)
class ProviderMetadata:
    """What the server uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]


@dataclass
class _Cached:
    value: Any
    until: datetime


class OidcClient:
    """One configured provider (``FHIR_OIDC_ISSUER``): discovery, keys, authorization URLs, ID tokens."""

    def __init__(self, settings: Settings, now: Now, transport: httpx.AsyncBaseTransport | None = None) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id, "OIDC is configured by an issuer and a client id"
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.display_name = settings.oidc_provider_name
        self.now = now
        self._transport = transport
        self._metadata: _Cached | None = None
        self._jwks = JwksCache(now, settings.oidc_discovery_cache_seconds, timeout=settings.oidc_timeout_seconds,
                               transport=transport)

    # -- what the provider publishes ---------------------------------------------------------------------------
    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError):
            raise SignInRefused(f"{self.display_name} could not be reached ({what}): try again later.", 502) from None
        if not isinstance(document, dict):
            raise SignInRefused(f"{self.display_name} answered something unexpected ({what}).", 502)
        return document

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=self.settings.oidc_timeout_seconds)

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and cached.until > self.now()

    def _keep(self, value: Any) -> _Cached:
        return _Cached(value, self.now() + timedelta(seconds=self.settings.oidc_discovery_cache_seconds))

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (``{issuer}/.well-known/openid-configuration``), cached."""
        if self._fresh(self._metadata):
            return self._metadata.value  # type: ignore[union-attr]
        document = await self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
        missing = [name for name in REQUIRED_METADATA if not isinstance(document.get(name), str)]
        if missing or document["issuer"] != self.issuer:
            # OpenID Connect Discovery 4.3: the document is the issuer's own, or it is not used.
            raise SignInRefused(f"{self.display_name}'s configuration does not match FHIR_OIDC_ISSUER.", 502)
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        metadata = ProviderMetadata(document["issuer"], document["authorization_endpoint"],
                                    document["token_endpoint"], document["jwks_uri"], tuple(methods))
        self._metadata = self._keep(metadata)
        return metadata

    async def _key_set(self, refresh: bool) -> PyJWKSet:
        try:
            return await self._jwks.get((await self.metadata()).jwks_uri, refresh)
        except KeySetUnavailable:
            raise SignInRefused(f"{self.display_name}'s signing keys could not be read: try again later.", 502) from None

    async def _signing_key(self, kid: str | None) -> PyJWK:
        """The provider's key the ID token names; an unknown kid fetches the JWKS again once (key rotation)."""
        for refresh in (False, True):
            keys = [key for key in (await self._key_set(refresh)).keys if key.public_key_use in (None, "sig")]
            matching = [key for key in keys if kid is None or key.key_id == kid]
            if len(matching) == 1:
                return matching[0]
            if kid is None and matching:
                break  # several keys and no kid to choose: fetching again would not tell which
        raise SignInRefused(f"The sign-in answer of {self.display_name} is signed with a key it does not publish.")

    # -- the authorization code flow ---------------------------------------------------------------------------
    async def authorization_url(self, pending: PendingSignIn) -> str:
        """Where the browser goes to sign in at the provider (code flow, PKCE S256, state and nonce)."""
        endpoint = (await self.metadata()).authorization_endpoint
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": pending.redirect_uri,
            "scope": self.settings.oidc_scopes, "state": pending.state, "nonce": pending.nonce,
            "code_challenge": pending.code_challenge, "code_challenge_method": "S256",
        })
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def redeem(self, code: str, pending: PendingSignIn) -> dict[str, Any]:
        """The claims of the ID token the code is exchanged for, once every check passed."""
        id_token = await self._exchange(code, pending)
        return await self.verify_id_token(id_token, pending.nonce)

    async def _exchange(self, code: str, pending: PendingSignIn) -> str:
        metadata = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.code_verifier}
        auth: tuple[str, str] | None = None
        secret = self.settings.oidc_client_secret
        if secret is None:
            form["client_id"] = self.client_id  # a public client: PKCE is its proof
        elif "client_secret_basic" in metadata.token_auth_methods:
            # RFC 6749 2.3.1: the id and secret are form-encoded before they are joined for Basic.
            auth = (quote(self.client_id, safe=""), quote(secret.get_secret_value(), safe=""))
        else:
            form.update(client_id=self.client_id, client_secret=secret.get_secret_value())
        try:
            async with self._http() as http:
                response = await http.post(metadata.token_endpoint, data=form, auth=auth,
                                           headers={"Accept": "application/json"})
                answer = response.json()
        except (httpx.HTTPError, ValueError):
            raise SignInRefused(f"{self.display_name} could not be reached (token): try again later.", 502) from None
        if response.status_code != 200 or not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            code_word = answer.get("error") if isinstance(answer, dict) else None
            raise SignInRefused(f"{self.display_name} did not complete the sign-in ({plain(code_word) or 'no ID token'}).")
        return answer["id_token"]

    # -- the ID token ------------------------------------------------------------------------------------------
    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core 3.1.3.7: signature by the provider's key with an allowed algorithm, ``iss``, ``aud``
        (and ``azp``), ``exp``/``iat``/``nbf`` on the server's clock, and the ``nonce`` of this sign-in."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInRefused(f"The sign-in answer of {self.display_name} is not a signed ID token.") from None
        algorithm = header.get("alg")
        if algorithm not in self.settings.oidc_algorithms:
            raise SignInRefused(f"The ID token of {self.display_name} is signed with {plain(algorithm) or 'an unknown algorithm'}, which this "
                                "server does not accept.")
        key = await self._signing_key(header.get("kid"))
        try:
            claims = jwt.decode(id_token, key.key, algorithms=[algorithm], audience=self.client_id,
                                issuer=self.issuer, options={"verify_exp": False, "verify_iat": False,
                                                             "verify_nbf": False,
                                                             "require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.InvalidSignatureError:
            raise SignInRefused(f"The ID token's signature does not verify with {self.display_name}'s key.") from None
        except jwt.InvalidAudienceError:
            raise SignInRefused("The ID token was issued for another application.") from None
        except jwt.InvalidIssuerError:
            raise SignInRefused(f"The ID token was not issued by {self.display_name}.") from None
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # TypeError: a key of another type than the alg's
            raise SignInRefused(f"The ID token of {self.display_name} is not acceptable ({type(exc).__name__}).") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("The ID token was issued for another application.")
        self._check_times(claims)
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
            raise SignInRefused("The ID token belongs to another sign-in (nonce): start again.")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInRefused("The ID token names nobody (sub).")
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self.now().timestamp()
        leeway = self.settings.oidc_leeway_seconds
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
        if any(value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool))
               for value in times.values()):
            raise SignInRefused("The ID token's times are not numbers.")
        if times["exp"] <= now - leeway:
            raise SignInRefused("The ID token has expired: sign in again.")
        if times["iat"] > now + leeway or (times["nbf"] is not None and times["nbf"] > now + leeway):
            raise SignInRefused("The ID token is dated in the future: the provider's clock and this server's differ.")


def link_subject(claims: dict[str, Any], claim: str) -> str | None:
    """The value an account is linked by (``FHIR_OIDC_LINK_CLAIM``); an e-mail address only when verified."""
    value = claims.get(claim)
    if claim == "email" and claims.get("email_verified") is not True:
        return None
    return value if isinstance(value, str) and value else None


def plain(value: Any) -> str:
    """A provider's word, shown to the person only when it is a short plain token (never markup or a long text)."""
    text = value if isinstance(value, str) else ""
    return text if len(text) <= 64 and all(ch.isalnum() or ch in "_-." for ch in text) else ""
