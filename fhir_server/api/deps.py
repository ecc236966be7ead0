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


def base_url_for(request: Request, settings: Settings) -> str:
    """The public base URL: configured behind a proxy, else the one the client used."""
    if settings.public_base_url:
        return settings.public_base()
    return str(request.base_url).rstrip("/") + settings.normalized_base_path()


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
