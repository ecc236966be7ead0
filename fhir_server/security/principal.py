"""Who is asking: the authenticated :class:`Principal` of the current request, kept in a context variable.

Why a context variable: tenancy is applied by the store wrapper (:mod:`fhir_server.security.tenancy`) that every
read and write of a request goes through (REST, Bundles, ``$submit``, ``$decide``, observers), and threading
the principal through every service signature would miss a path. :class:`RequestSecurityMiddleware` gives each
HTTP request a fresh, empty :class:`RequestSecurity` and removes it afterwards, so nothing leaks between
requests, and code outside a request (the delivery worker, the command line) runs as the server itself.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope as AsgiScope, Send

from fhir_server.security.scopes import Scope

ROLES: tuple[str, ...] = ("ehr", "group", "plan", "reviewer")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a registered client (system-to-system) or a signed-in person."""

    client_id: str
    organization: str  # "Organization/id": the tenant the caller acts for
    role: str
    scopes: tuple[Scope, ...]
    practitioner: str | None = None  # "Practitioner/id" of a person, or of the physician a reviewer client acts for
    person: str | None = None  # the account name of a signed-in person
    development: bool = False  # FHIR_AUTH=off: no token, sees everything

    @property
    def sees_everything(self) -> bool:
        """The plan (and development mode) sees every tenant's resources."""
        return self.development or self.role == "plan"


DEVELOPMENT_PRINCIPAL = Principal(client_id="development", organization="", role="plan", scopes=(), development=True)


@dataclass
class RequestSecurity:
    """The security state of one HTTP request (mutable: the authorization dependency fills it in)."""

    principal: Principal | None = None
    # True when the route alone cannot say which types a request touches (Bundles): the store wrapper then checks
    # every read and write against the scopes.
    check_scopes_in_store: bool = False
    # Organizations every resource this request writes is stamped with (the caller's, and those written resources
    # name as tenants: the member's physician group, the Task's owner).
    tenants: set[str] = field(default_factory=set)
    # Patients whose data the request read or wrote (``Patient/id``), for the audit record.
    patients: set[str] = field(default_factory=set)
    # The access rules of the app serving the request (for code that has no app at hand: see declare_tenants).
    rules: Any = None


_current: ContextVar[RequestSecurity | None] = ContextVar("fhir_request_security", default=None)


def current() -> RequestSecurity | None:
    """The security state of the request being served (None outside HTTP requests: the server itself)."""
    return _current.get()


def current_principal() -> Principal | None:
    state = _current.get()
    return state.principal if state is not None else None


class RequestSecurityMiddleware:
    """Pure ASGI middleware: one :class:`RequestSecurity` per HTTP request, reset when the request ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _current.set(RequestSecurity())
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
