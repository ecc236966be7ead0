"""FastAPI dependencies: build the per-request :class:`RequestContext` from headers and settings."""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request

from fhir_server.api.media import check_acceptable
from fhir_server.security.principal import current_principal
from fhir_server.services.context import RequestContext, ReturnPreference
from fhir_server.settings import Settings

RETURN_PREFERENCES: dict[str, ReturnPreference] = {
    "minimal": "minimal",
    "representation": "representation",
    "operationoutcome": "OperationOutcome",
}


def parse_prefer(header: str | None) -> dict[str, str]:
    """``Prefer: return=minimal, handling=strict`` -> ``{"return": "minimal", "handling": "strict"}``."""
    preferences: dict[str, str] = {}
    if not header:
        return preferences
    for part in header.replace(";", ",").split(","):
        name, _, value = part.partition("=")
        if name.strip():
            preferences[name.strip().lower()] = value.strip().strip('"')
    return preferences


# Request base URLs by what they are made of (scheme, Host, server address, root paths): building one from the
# scope costs more than the rest of a read's context. Client-chosen Host values are many at worst: bounded.
_BASE_URLS: dict[tuple[object, ...], str] = {}
_BASE_URLS_KEPT = 256


def remote_address(request: Request) -> str | None:
    """The address a request came from: a proxy's, or the client's it forwards when uvicorn trusts the proxy."""
    return request.client.host if request.client else None


def base_url_for(request: Request, settings: Settings) -> str:
    """The base of the absolute URLs an answer carries (``Location``, ``fullUrl``, paging links).

    The configured public base when there is one (behind a proxy); else the one the client used, but only when
    its ``Host`` names this server (``FHIR_ALLOWED_HOSTS``, ``FHIR_HOST``): anyone can send ``Host:
    evil.example``, and an answer (or a cache in front) must not then point clients at it. Any other Host gets
    the configured base."""
    if settings.public_base_url:
        return settings.public_base()
    scope = request.scope
    server = scope.get("server")  # a tuple, or a list from some servers and test clients
    key = (scope.get("scheme"), request.headers.get("host"), tuple(server) if server else None,
           scope.get("root_path"), scope.get("app_root_path"), settings.public_base(), settings.host,
           tuple(settings.allowed_hosts))
    base = _BASE_URLS.get(key)
    if base is None:
        if len(_BASE_URLS) >= _BASE_URLS_KEPT:
            _BASE_URLS.clear()
        if host_allowed(request.url.hostname, settings):
            base = str(request.base_url).rstrip("/") + settings.normalized_base_path()
        else:
            base = settings.public_base()
        _BASE_URLS[key] = base
    return base


def host_allowed(hostname: str | None, settings: Settings) -> bool:
    """Whether a request's host name (no port) is one of the names this server answers to."""
    if not hostname:
        return False
    allowed = {name.lower().strip("[]") for name in [*settings.allowed_hosts, settings.host]}
    return hostname.lower().strip("[]") in allowed


def context_from_request(request: Request) -> RequestContext:
    """Build the context of one request (also checks the client accepts JSON: 406 otherwise)."""
    check_acceptable(request)
    settings: Settings = request.app.state.settings
    preferences = parse_prefer(request.headers.get("prefer"))
    return RequestContext(
        base_url=base_url_for(request, settings),
        prefer_return=RETURN_PREFERENCES.get(preferences.get("return", "").lower(), "representation"),
        strict_handling=preferences.get("handling", "").lower() == "strict",
    )


async def get_context(request: Request) -> RequestContext:
    """FastAPI dependency form of :func:`context_from_request`, with who is asking (:func:`with_caller`)."""
    return with_caller(context_from_request(request))


def with_caller(ctx: RequestContext) -> RequestContext:
    """``ctx`` with who is asking (set by the app-wide authorization dependency): ``identity`` the physician a
    person or reviewer client acts as (a plan client names its reviewer itself, so none), ``organization`` the
    tenant whose cases it may subscribe to (the plan: any)."""
    principal = current_principal()
    if principal is None or principal.development:
        return ctx
    if principal.sees_everything:  # the plan: names the reviewer it acts for, subscribes for any organization
        return replace(ctx, identity=principal.practitioner if principal.person else None)
    return replace(ctx, identity=principal.practitioner, organization=principal.organization or None)
