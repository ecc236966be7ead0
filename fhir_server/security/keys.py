"""The server's own signing key (ES384): it signs the access tokens it issues, and its public half is served as
a JWKS so a plan or subscriber can check what the server sends. Generated once, on first use, and kept as a
security record so every process of the server (and a restart) uses the same key."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from fhir_server.security.records import add_record, get_record
from fhir_server.storage.base import ResourceOperations

KEY_KIND = "server-key"
KEY_NAME = "signing"
ALGORITHM = "ES384"


@dataclass(frozen=True, eq=False)
class ServerKey:
    kid: str
    private_jwk: dict[str, Any]

    @cached_property
    def private_key(self) -> Any:
        return ECAlgorithm.from_jwk(json.dumps(self.private_jwk))

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = {name: value for name, value in self.private_jwk.items() if name != "d"}
        return {**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig", "key_ops": ["verify"]}

    @cached_property
    def public_key(self) -> Any:
        return ECAlgorithm.from_jwk(json.dumps(self.public_jwk))


def _generate() -> dict[str, Any]:
    return json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1())))


class KeyRing:
    """The server key, loaded (or created) on first use and then kept in memory."""

    def __init__(self, store: ResourceOperations) -> None:
        self._store = store
        self._key: ServerKey | None = None

    async def key(self) -> ServerKey:
        if self._key is None:
            data = await get_record(self._store, KEY_KIND, KEY_NAME)
            if data is None:
                await add_record(self._store, KEY_KIND, KEY_NAME, {"kid": uuid.uuid4().hex, "jwk": _generate()})
                data = await get_record(self._store, KEY_KIND, KEY_NAME)  # another process may have won: use its key
            assert data is not None
            self._key = ServerKey(data["kid"], data["jwk"])
        return self._key

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [(await self.key()).public_jwk]}
