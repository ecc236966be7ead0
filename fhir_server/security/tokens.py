"""The token endpoint's work (SMART Backend Services, ``client_credentials`` with a ``private_key_jwt`` assertion)
and the access tokens it issues. All JWT and JWK handling is PyJWT's (with ``cryptography``); times are checked
against the server's one clock, never the wall clock.

An assertion is accepted when: its header names RS384 or ES384; ``iss`` = ``sub`` = a registered, enabled
client; it verifies with a key of that client's JWKS (registered, or fetched from its ``jwks_uri`` and cached);
``aud`` is this token endpoint; ``exp`` is in the future and at most ``assertion_max_seconds`` ahead; its ``jti``
was never used by that client before (kept as a record: refused in every process; dropped once the assertion's
``exp`` is ``replay_leeway_seconds`` past, when a replay is refused for its expiry anyway).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from fhir_server.clock import Now
from fhir_server.security.clients import Client, find_client
from fhir_server.security.jwks import JwksCache, KeySetUnavailable
from fhir_server.security.keys import ALGORITHM, KeyRing
from fhir_server.security.principal import Principal
from fhir_server.security.records import add_record, purge_records
from fhir_server.security.scopes import grant, parse_scopes
from fhir_server.security.throttle import AttemptLimiter, Key, TooManyAttempts
from fhir_server.settings import Settings
from fhir_server.storage.base import ResourceStore

ASSERTION_ALGORITHMS = ("RS384", "ES384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JTI_KIND = "jti"
VERIFIED_CACHE_SIZE = 10_000


class OAuthError(Exception):
    """An OAuth 2.0 error answer (RFC 6749 5.2): ``{"error": code, "error_description": ...}``."""

    def __init__(self, code: str, description: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status
        self.retry_after = retry_after  # seconds, for a 429 (the Retry-After header)


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def slow_down(refused: TooManyAttempts) -> OAuthError:
    """429 with ``slow_down``: the registered OAuth error code of a token endpoint asking a client to wait."""
    return OAuthError("slow_down", str(refused), 429, retry_after=refused.retry_after)


class TokenService:
    """Checks client assertions, issues access tokens and checks them on every request."""

    def __init__(self, store: ResourceStore, settings: Settings, now: Now) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self.keys = KeyRing(store)
        self.jwks_cache = JwksCache(now, settings.jwks_cache_seconds)
        self.attempts = AttemptLimiter(now, {
            "client": settings.token_attempts_per_client, "account": settings.sign_in_attempts_per_account,
            "address": settings.auth_attempts_per_address}, settings.auth_attempts_window_seconds)
        # Access tokens already verified ((token text, audience) -> principal, expiry): a signature is checked once per token,
        # not once per request. Bounded: cleared when full.
        self._verified: dict[tuple[str, str], tuple[Principal, int]] = {}

    # -- the token endpoint ------------------------------------------------------------------------------------
    def _limit(self, address: str | None, name: Key | None) -> None:
        """Count a token request or sign-in under its address and check its name (counted when it fails: see
        :meth:`_failed`), before any costly check: 429 beyond the limits (see throttle)."""
        try:
            self.attempts.attempt(Key("address", address) if address else None)
            self.attempts.attempt(name, count=False)
        except TooManyAttempts as refused:
            raise slow_down(refused) from None

    @asynccontextmanager
    async def _failed(self, name: Key | None) -> AsyncIterator[None]:
        """Count a refusal (an OAuth error) of the block under ``name``: a client or an account is held back by its
        failed attempts only, never by its successful ones."""
        try:
            yield
        except OAuthError:
            self.attempts.record(name)
            raise

    async def exchange(self, form: dict[str, str], token_url: str, base_url: str,
                       address: str | None = None) -> dict[str, Any]:
        """A ``client_credentials`` token request from ``address`` -> the token answer (or an :class:`OAuthError`);
        the token's audience is the FHIR base ``base_url``."""
        claimed = _claimed_client(form.get("client_assertion") or "")
        name = Key("client", claimed) if claimed else None
        self._limit(address, name)
        async with self._failed(name):
            return await self._exchange(form, token_url, base_url)

    async def _exchange(self, form: dict[str, str], token_url: str, base_url: str) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is missing")
        client, claims = await self._verify_assertion(assertion, token_url)
        granted = grant(form.get("scope", ""), client.scopes)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is registered for this client")
        if not await add_record(self.store, JTI_KIND, f"{client.client_id} {claims['jti']}", {"exp": claims["exp"]}):
            raise invalid_client("this client assertion (jti) was used before")
        await self._forget_lapsed_assertions()
        token = await self.issue(client, granted, audience=base_url)
        return {"access_token": token, "token_type": "bearer", "expires_in": self.settings.access_token_seconds,
                "scope": " ".join(granted)}

    async def _forget_lapsed_assertions(self) -> None:
        """Drop used assertion ids whose assertion expired over ``replay_leeway_seconds`` ago: a replay of one is
        refused by its ``exp`` already. A bounded batch on each accepted request, by the server's clock."""
        now = self.now()
        leeway = timedelta(seconds=self.settings.replay_leeway_seconds)
        lapsed_before = (now - leeway).timestamp()
        await purge_records(self.store, JTI_KIND, lambda data: data.get("exp", lapsed_before) < lapsed_before,
                            written_before=now - leeway, limit=self.settings.replay_purge_batch)

    async def _verify_assertion(self, assertion: str, token_url: str) -> tuple[Client, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise invalid_client("client_assertion is not a JWT") from None
        if header.get("alg") not in ASSERTION_ALGORITHMS:
            raise invalid_client(f"client assertions are signed with {' or '.join(ASSERTION_ALGORITHMS)}")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer != unverified.get("sub"):
            raise invalid_client("iss and sub must both be the client_id")
        client = await find_client(self.store, issuer)
        if client is None or not client.enabled:
            raise invalid_client("unknown or disabled client")
        key = await self._key_for(client, header)
        try:
            claims = jwt.decode(
                assertion, key.key, algorithms=[header["alg"]], audience=token_url,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.InvalidAudienceError:
            raise invalid_client(f"aud must be the token endpoint {token_url}") from None
        except jwt.PyJWTError as exc:
            raise invalid_client(f"client_assertion rejected: {exc}") from None
        self._check_expiry(claims)
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise invalid_client("jti must be a non-empty string")
        return client, claims

    def _check_expiry(self, claims: dict[str, Any]) -> None:
        now = self.now().timestamp()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise invalid_client("exp must be a number")
        if exp <= now:
            raise invalid_client("the client assertion has expired")
        if exp > now + self.settings.assertion_max_seconds:
            raise invalid_client(f"exp may be at most {self.settings.assertion_max_seconds} seconds ahead")

    async def _key_for(self, client: Client, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        for refresh in (False, True):
            if client.jwks is not None:
                keys = _keys_of(client.jwks)
            else:
                assert client.jwks_uri is not None
                try:
                    keys = await self.jwks_cache.get(client.jwks_uri, refresh=refresh)
                except KeySetUnavailable as exc:
                    raise invalid_client(f"the client's jwks_uri could not be read: {exc}") from None
            matching = [key for key in keys.keys if kid is None or key.key_id == kid]
            if matching:
                if kid is None and len(matching) > 1:
                    raise invalid_client("the client has several keys: the assertion header names its kid")
                return matching[0]
            if client.jwks is not None:
                break
        raise invalid_client(f"no key {kid!r} in the client's JWKS")

    async def sign_in(self, form: dict[str, str], base_url: str, address: str | None = None) -> dict[str, Any]:
        """A person's sign-in (username, password, optional scope) from ``address`` -> a token answer naming the
        person."""
        from fhir_server.security.accounts import check_password

        name = Key("account", form["username"]) if form.get("username") else None
        self._limit(address, name)
        account = await check_password(self.store, form.get("username", ""), form.get("password", ""))
        if account is None:
            self.attempts.record(name)
            raise OAuthError("invalid_grant", "unknown account or wrong password", 401)
        return await self._person_token(account.as_client(), account.username, form.get("scope"), base_url)

    async def linked_sign_in(self, issuer: str, subject: str, base_url: str) -> dict[str, Any]:
        """A person the external provider ``issuer`` vouched for as ``subject`` -> the token answer of the account
        linked to that identity (never one made up: an unlinked or disabled identity is refused)."""
        from fhir_server.security.identities import find_identity

        identity = await find_identity(self.store, issuer, subject)
        if identity is None:
            raise OAuthError("access_denied", "no account is linked to this identity", 403)
        if not identity.enabled:
            raise OAuthError("access_denied", "the account linked to this identity is disabled", 403)
        return await self._person_token(identity.as_client(), identity.username, None, base_url)

    async def _person_token(self, person: Client, name: str, requested: str | None, base_url: str) -> dict[str, Any]:
        """A signed-in person's token (their account's scopes, or the requested part of them), for a session."""
        granted = grant(requested or " ".join(person.scopes), person.scopes)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this account")
        token = await self.issue(person, granted, audience=base_url, person=name, seconds=self.settings.session_seconds)
        return {"access_token": token, "token_type": "bearer", "expires_in": self.settings.session_seconds,
                "scope": " ".join(granted), "practitioner": person.practitioner}

    # -- access tokens ---------------------------------------------------------------------------------------
    async def issue(self, client: Client, scopes: list[str], audience: str, *, person: str | None = None,
                    practitioner: str | None = None, seconds: int | None = None) -> str:
        key = await self.keys.key()
        now = int(self.now().timestamp())
        claims = {
            "iss": audience, "aud": audience, "sub": client.client_id, "iat": now,
            "exp": now + (seconds or self.settings.access_token_seconds), "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes), "organization": client.organization, "role": client.role,
            "practitioner": practitioner or client.practitioner, "person": person,
        }
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    async def principal_of(self, token: str, audience: str) -> Principal | None:
        """The principal an access token stands for; None when it is not one of ours, expired, or for another
        server."""
        cached = self._verified.get((token, audience))
        if cached is not None:
            principal, exp = cached
            return principal if exp > self.now().timestamp() else None
        key = await self.keys.key()
        try:
            claims = jwt.decode(token, key.public_key, algorithms=[ALGORITHM], audience=audience,
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "require": ["sub", "exp", "aud"]})
        except jwt.PyJWTError:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= self.now().timestamp():
            return None
        if claims.get("aud") != audience:
            return None
        principal = Principal(
            client_id=claims["sub"], organization=claims.get("organization") or "", role=claims.get("role") or "",
            scopes=tuple(parse_scopes(claims.get("scope") or "")), practitioner=claims.get("practitioner"),
            person=claims.get("person"),
        )
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[(token, audience)] = (principal, claims["exp"])
        return principal


def _claimed_client(assertion: str) -> str | None:
    """The client id an assertion claims (its ``iss``), unverified: what its attempts are counted under."""
    try:
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) and issuer else None


def _keys_of(jwks: dict[str, Any]) -> PyJWKSet:
    try:
        return PyJWKSet.from_dict(json.loads(json.dumps(jwks)))
    except jwt.PyJWTError:
        raise invalid_client("the client's registered JWKS holds no usable key") from None
