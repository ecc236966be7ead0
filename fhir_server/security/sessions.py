"""A person's browser session for the pages under ``/ui``: a signed cookie holding the access token their
sign-in earned and the session's CSRF token.

Why the access token itself: a page then authenticates exactly as an API call does (the same signature, expiry on
the server's clock, organization, role and scopes: :meth:`TokenService.principal_of`), and the route rules of the
access data apply to it unchanged; the cookie only carries it. The cookie is signed (``itsdangerous``) with
``FHIR_UI_SESSION_SECRET``, ``HttpOnly``, ``SameSite=Lax`` and limited to the pages' path; it carries no timestamp
of its own (the token's expiry is the session's), so no wall clock is read. Every form a page posts carries the
session's CSRF token, compared in constant time (:func:`csrf_matches`).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

from fhir_server.security.principal import Principal

SESSION_COOKIE = "fhir_ui_session"
_SALT = "fhir-ui-session"


@dataclass(frozen=True)
class BrowserSession:
    """What the cookie holds: the CSRF token of the session, and the access token once the person signed in."""

    csrf: str
    token: str | None = None


class SignInRequired(Exception):
    """A page was asked for without a valid session: the browser is sent to the sign-in page."""


class SessionCodec:
    """Signs and reads the session cookie."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._serializer = URLSafeSerializer(secret, salt=_SALT)

    def signer(self, salt: str) -> URLSafeSerializer:
        """A signer of another value the pages keep in a cookie: the same secret, a salt of its own (so one value
        never passes for the other)."""
        return URLSafeSerializer(self._secret, salt=salt)

    def dump(self, session: BrowserSession) -> str:
        return self._serializer.dumps({"csrf": session.csrf, "token": session.token})

    def load(self, cookie: str | None) -> BrowserSession | None:
        """The session of a cookie; None when absent, forged or malformed."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        token = data.get("token")
        return BrowserSession(data["csrf"], token if isinstance(token, str) else None)


def new_session(token: str | None = None) -> BrowserSession:
    """A fresh session (a new CSRF token every time: signing in never keeps the anonymous session's)."""
    return BrowserSession(secrets.token_urlsafe(32), token)


def session_of(request: Request) -> BrowserSession | None:
    codec: SessionCodec = request.app.state.sessions
    return codec.load(request.cookies.get(SESSION_COOKIE))


def csrf_matches(session: BrowserSession | None, submitted: str | None) -> bool:
    return bool(session and submitted) and hmac.compare_digest(session.csrf.encode(), (submitted or "").encode())


async def session_principal(request: Request, audience: str) -> Principal:
    """The signed-in person of a page request (:class:`SignInRequired` without a valid session)."""
    session = session_of(request)
    if session is None or session.token is None:
        raise SignInRequired()
    principal = await request.app.state.tokens.principal_of(session.token, audience=audience)
    if principal is None or principal.person is None:
        raise SignInRequired()
    return principal
