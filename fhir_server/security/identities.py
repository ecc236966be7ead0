"""People who sign in through an external OpenID Connect provider: an identity there (the provider's issuer and the
person's subject) linked to who the person is here (a name, the Practitioner, the organization and role they act
for, the scopes their sign-in grants). Kept as security records beside the local accounts and the clients.

Why linking and never provisioning: the provider proves who someone is, not what they may do in a health plan's
case files. An identity nobody linked, or whose link was disabled, is refused (``accounts link`` and ``accounts
unlink`` from the command line, into the store the server uses: a running server sees a change at once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from fhir_server.errors import FhirError, error
from fhir_server.security.accounts import Person, person_issues
from fhir_server.security.records import get_record, put_record
from fhir_server.storage.base import ResourceOperations

IDENTITY_KIND = "identity"


@dataclass(frozen=True, kw_only=True)
class LinkedIdentity(Person):
    """A person known by an external OpenID Connect identity (issuer, subject)."""

    issuer: str
    subject: str


def _key(issuer: str, subject: str) -> str:
    return f"{issuer} {subject}"


async def link_identity(store: ResourceOperations, *, issuer: str, subject: str, username: str | None,
                        practitioner: str, organization: str, role: str, scopes: list[str]) -> LinkedIdentity:
    """Link (or link again, enabled) an external identity; the name defaults to the subject."""
    name = username or subject
    issues = person_issues(name, practitioner, organization, role, scopes)
    if not issuer.startswith(("https://", "http://")):
        issues.append(error("value", "the issuer is the provider's URL, exactly as its ID tokens name it", "issuer"))
    if not subject:
        issues.append(error("required", "the subject is the person's identifier at the provider", "subject"))
    if issues:
        raise FhirError(issues, 400)
    identity = LinkedIdentity(issuer=issuer, subject=subject, username=name, practitioner=practitioner,
                              organization=organization, role=role, scopes=tuple(scopes))
    await put_record(store, IDENTITY_KIND, _key(issuer, subject), asdict(identity))
    return identity


async def find_identity(store: ResourceOperations, issuer: str, subject: str) -> LinkedIdentity | None:
    """The linked identity, enabled or not (None when nobody linked it)."""
    data = await get_record(store, IDENTITY_KIND, _key(issuer, subject))
    return LinkedIdentity(**{**data, "scopes": tuple(data["scopes"])}) if data else None


async def unlink_identity(store: ResourceOperations, issuer: str, subject: str) -> LinkedIdentity:
    """Disable a link (kept, so the refusal can say the account is disabled rather than unknown)."""
    identity = await find_identity(store, issuer, subject)
    if identity is None:
        raise FhirError([error("not-found", f"no account is linked to {subject} at {issuer}", "subject")], 404)
    disabled = replace(identity, enabled=False)
    await put_record(store, IDENTITY_KIND, _key(issuer, subject), asdict(disabled))
    return disabled


def summary(identity: LinkedIdentity) -> dict[str, Any]:
    return asdict(identity)
