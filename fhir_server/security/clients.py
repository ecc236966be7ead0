"""Registered SMART backend clients: who they are (organization, role), the keys they sign assertions with (a JWKS,
or a ``jwks_uri`` the server fetches), and the scopes they may be granted. Kept as security records, so
``python -m fhir_server clients add`` against the store a running server uses takes effect at once."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from fhir_server.errors import FhirError, error
from fhir_server.security.principal import ROLES
from fhir_server.security.records import get_record, list_records, put_record
from fhir_server.security.scopes import parse_scope
from fhir_server.storage.base import ResourceOperations

CLIENT_KIND = "client"


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    organization: str  # "Organization/id"
    role: str
    scopes: tuple[str, ...]
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    practitioner: str | None = None  # the physician a reviewer client decides as
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What ``clients list`` prints (no keys)."""
        return {name: value for name, value in asdict(self).items() if name not in ("jwks", "extra")}


def check_registration(organization: str, role: str, scopes: list[str], jwks: dict[str, Any] | None,
                       jwks_uri: str | None, practitioner: str | None) -> None:
    """Every problem of a registration at once (400)."""
    issues = []
    if not organization.startswith("Organization/") or len(organization) <= len("Organization/"):
        issues.append(error("value", "the organization is a reference Organization/id", "organization"))
    if role not in ROLES:
        issues.append(error("code-invalid", f"role must be one of {', '.join(ROLES)}", "role"))
    bad = [scope for scope in scopes if parse_scope(scope) is None]
    if bad or not scopes:
        issues.append(error("value", f"not SMART resource scopes: {' '.join(bad) or '(none given)'}", "scopes"))
    if (jwks is None) == (jwks_uri is None):
        issues.append(error("required", "give exactly one of a JWKS (file) or a jwks_uri", "jwks"))
    if jwks is not None and not (isinstance(jwks.get("keys"), list) and jwks["keys"]):
        issues.append(error("value", "a JWKS is an object with a non-empty keys array", "jwks"))
    if any("d" in key for key in (jwks or {}).get("keys", []) if isinstance(key, dict)):
        issues.append(error("security", "the JWKS holds a private key: register the public keys only", "jwks"))
    if practitioner is not None and not practitioner.startswith("Practitioner/"):
        issues.append(error("value", "the practitioner is a reference Practitioner/id", "practitioner"))
    if issues:
        raise FhirError(issues, 400)


async def register_client(store: ResourceOperations, *, name: str, organization: str, role: str, scopes: list[str],
                          jwks: dict[str, Any] | None = None, jwks_uri: str | None = None,
                          practitioner: str | None = None) -> Client:
    check_registration(organization, role, scopes, jwks, jwks_uri, practitioner)
    client = Client(uuid.uuid4().hex, name, organization, role, tuple(scopes), jwks, jwks_uri, practitioner)
    await put_record(store, CLIENT_KIND, client.client_id, asdict(client))
    return client


def _client(data: dict[str, Any]) -> Client:
    known = {name: data.get(name) for name in Client.__dataclass_fields__ if name in data}
    known["scopes"] = tuple(known.get("scopes") or ())
    return Client(**known)


async def find_client(store: ResourceOperations, client_id: str) -> Client | None:
    data = await get_record(store, CLIENT_KIND, client_id)
    return _client(data) if data else None


async def all_clients(store: ResourceOperations) -> list[Client]:
    return sorted((_client(data) for data in await list_records(store, CLIENT_KIND)), key=lambda c: c.name)


async def disable_client(store: ResourceOperations, client_id: str) -> Client:
    client = await find_client(store, client_id)
    if client is None:
        raise FhirError([error("not-found", f"no client {client_id}")], 404)
    data = {**asdict(client), "enabled": False}
    await put_record(store, CLIENT_KIND, client_id, data)
    return _client(data)
