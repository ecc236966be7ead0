"""A sign-in in progress at the external provider: the ``state``, ``nonce`` and PKCE ``code_verifier`` the callback
has to match, where the person goes afterwards, and until when (by the server's clock) the sign-in may finish.

Why a cookie of its own: the values must survive the round trip through the provider without the server keeping
anything (every instance can take the callback), they must not be readable by scripts or forgeable (signed with the
pages' session secret, ``HttpOnly``, limited to the sign-in paths) and they serve once (the callback deletes it).
The expiry is inside the signed value, not a timestamp of the signing library, so the wall clock is never read.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

PENDING_COOKIE = "fhir_ui_oidc"
PENDING_SALT = "fhir-ui-oidc-sign-in"


@dataclass(frozen=True)
class PendingSignIn:
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next: str
    expires: int  # seconds since the epoch, by the server's clock

    @classmethod
    def start(cls, redirect_uri: str, next_page: str, now: datetime, seconds: int) -> "PendingSignIn":
        """Fresh random values (RFC 7636: a verifier of 43 to 128 characters; 64 random bytes give 86)."""
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64), redirect_uri,
                   next_page, int(now.timestamp()) + seconds)

    @property
    def code_challenge(self) -> str:
        """RFC 7636 4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))), without padding."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class PendingSignInCodec:
    """Signs and reads the pending sign-in cookie (with a signer of the pages' secret, salted with
    :data:`PENDING_SALT`)."""

    def __init__(self, serializer: URLSafeSerializer) -> None:
        self._serializer = serializer

    def dump(self, pending: PendingSignIn) -> str:
        return self._serializer.dumps(asdict(pending))

    def load(self, cookie: str | None, now: datetime) -> PendingSignIn | None:
        """The sign-in in progress; None when absent, forged, malformed or expired."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie)
            pending = PendingSignIn(**data)
        except (BadSignature, TypeError):
            return None
        texts = [value for name, value in asdict(pending).items() if name != "expires"]
        if not all(isinstance(value, str) for value in texts) or not isinstance(pending.expires, int):
            return None
        if pending.expires <= now.timestamp():
            return None
        return pending
