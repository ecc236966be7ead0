"""People (case managers, physician reviewers) signing in with a local account: a name, an argon2 password hash
(``argon2-cffi``), the Practitioner the person is, the organization and role they act for, and the scopes their
sign-in grants. Kept as security records beside the clients.

``POST [base]/auth/sign-in`` (form ``username``, ``password``, optional ``scope``) answers an access token like a
client's, naming the person and the Practitioner: ``$decide`` then records that physician as the reviewer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fhir_server.errors import FhirError, error
from fhir_server.security.clients import Client
from fhir_server.security.principal import ROLES
from fhir_server.security.records import get_record, put_record
from fhir_server.security.scopes import parse_scope
from fhir_server.storage.base import ResourceOperations

ACCOUNT_KIND = "account"
MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher()
# Verified when the account does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, kw_only=True)
class Person:
    """Who signs in, whichever way: the name used here (tokens, audit records, "Signed in as"), the Practitioner
    the person is, the organization and role they act for, and the scopes their sign-in grants."""

    username: str
    practitioner: str
    organization: str
    role: str
    scopes: tuple[str, ...]
    enabled: bool = True

    def as_client(self) -> Client:
        """The person in the shape tokens are issued for."""
        return Client(client_id=f"person:{self.username}", name=self.username, organization=self.organization,
                      role=self.role, scopes=self.scopes, practitioner=self.practitioner)


@dataclass(frozen=True, kw_only=True)
class Account(Person):
    """A local account: the person and their argon2 password hash."""

    password_hash: str


def person_issues(username: str, practitioner: str, organization: str, role: str, scopes: list[str]) -> list[Any]:
    """What is wrong with who a person is (every problem at once): the same rules for every kind of account."""
    issues = []
    if not username or not username.replace("-", "").replace(".", "").replace("_", "").isalnum():
        issues.append(error("value", "a username is letters, digits, '.', '-' and '_'", "username"))
    if not practitioner.startswith("Practitioner/"):
        issues.append(error("value", "the practitioner is a reference Practitioner/id", "practitioner"))
    if not organization.startswith("Organization/"):
        issues.append(error("value", "the organization is a reference Organization/id", "organization"))
    if role not in ROLES:
        issues.append(error("code-invalid", f"role must be one of {', '.join(ROLES)}", "role"))
    if not scopes or any(parse_scope(scope) is None for scope in scopes):
        issues.append(error("value", "scopes are SMART resource scopes", "scopes"))
    return issues


async def add_account(store: ResourceOperations, *, username: str, password: str, practitioner: str,
                      organization: str, role: str, scopes: list[str]) -> Account:
    issues = person_issues(username, practitioner, organization, role, scopes)
    if len(password) < MIN_PASSWORD_LENGTH:
        issues.append(error("value", f"a password has at least {MIN_PASSWORD_LENGTH} characters", "password"))
    if issues:
        raise FhirError(issues, 400)
    account = Account(username=username, password_hash=_HASHER.hash(password), practitioner=practitioner,
                      organization=organization, role=role, scopes=tuple(scopes))
    await put_record(store, ACCOUNT_KIND, username, asdict(account))
    return account


async def check_password(store: ResourceOperations, username: str, password: str) -> Account | None:
    """The account when the password is right (and the account enabled); None otherwise, in about the same time."""
    data = await get_record(store, ACCOUNT_KIND, username) if username else None
    account = Account(**{**data, "scopes": tuple(data["scopes"])}) if data else None
    try:
        _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if account is None or not account.enabled:
        return None
    if _HASHER.check_needs_rehash(account.password_hash):
        await put_record(store, ACCOUNT_KIND, username, {**asdict(account), "password_hash": _HASHER.hash(password)})
    return account


def summary(account: Account) -> dict[str, Any]:
    return {name: value for name, value in asdict(account).items() if name != "password_hash"}
