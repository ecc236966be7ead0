"""The authorization decision, in one place: an app-wide FastAPI dependency every route goes through.

It authenticates the bearer token (401 without a valid one), then applies the route's rule from the access data
(403 for a role or scope the rule does not allow; a route without a rule is refused: new routes are closed until
they are given one). Bundles cannot be judged by their URL: their entries are checked by the store wrapper as
they are processed (:mod:`fhir_server.security.tenancy`). The pages under ``/ui`` (``session_routes`` in the access
data) take the person's principal from their signed session cookie instead of a bearer token
(:mod:`fhir_server.security.sessions`), and are judged by the same rules. In development mode (``FHIR_AUTH=off``) every request
acts with the development principal, which sees everything.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request

from fhir_server.errors import FhirError, error
from fhir_server.security.access import AccessRules, RouteRule, load_access_rules
from fhir_server.security.principal import DEVELOPMENT_PRINCIPAL, Principal, RequestSecurity, current
from fhir_server.security.refusals import insufficient_scope, server_only
from fhir_server.security.scopes import permits
from fhir_server.security.sessions import session_principal


def _bearer_challenge(request: Request, extra: str = "") -> str:
    realm = request.app.state.settings.normalized_base_path() or "/"
    return f'Bearer realm="{realm}"' + (f", {extra}" if extra else "")


def unauthorized(request: Request, diagnostics: str, invalid: bool) -> FhirError:
    challenge = _bearer_challenge(request, 'error="invalid_token"' if invalid else "")
    return FhirError([error("login", diagnostics)], 401, {"WWW-Authenticate": challenge})


def route_name(request: Request) -> str:
    route = request.scope.get("route")
    if route is not None and getattr(route, "name", None):
        return route.name
    endpoint = request.scope.get("endpoint")
    return getattr(endpoint, "__name__", "")


def _types_of(request: Request, rule: RouteRule) -> list[str]:
    if rule.resource_type == "{resource_type}":
        return [request.path_params.get("resource_type", "")]
    if rule.resource_type == "_type":
        return [name for value in request.query_params.getlist("_type") for name in value.split(",") if name]
    return [rule.resource_type]


def check_rule(principal: Principal, request: Request, rule: RouteRule, state: RequestSecurity,
               rules: AccessRules) -> None:
    if rule.roles is not None and principal.role not in rule.roles:
        raise insufficient_scope(
            f"role {' or '.join(sorted(rule.roles))}", f"this interaction is for the {', '.join(sorted(rule.roles))} role"
        )
    if principal.role in rule.physician_roles and not principal.practitioner:
        raise insufficient_scope(
            "a physician", f"a {principal.role} acts as a physician here: register the client with its Practitioner"
        )
    if rule.resource_type == "*" and rule.permission is None:
        state.check_scopes_in_store = True  # a Bundle: each entry is checked as it is processed
        return
    for resource_type in _types_of(request, rule):
        if resource_type != "*":
            request.app.state.services.require_type(resource_type)  # an unknown type is 404, as without security
        letter = rule.permission or "r"
        if letter in "cud" and resource_type in rules.server_only_types:
            raise server_only(resource_type)
        if resource_type == "*":
            if not any(scope.resource_type == "*" and letter in scope.permissions for scope in principal.scopes):
                raise insufficient_scope(f"system/*.{letter}")
        elif not permits(principal.scopes, resource_type, letter):
            raise insufficient_scope(f"system/{resource_type}.{letter}")


async def authorize(request: Request) -> None:
    """App-wide dependency: set the request's principal, or refuse the request (401/403)."""
    state = current()
    if state is None:  # not served through RequestSecurityMiddleware (cannot happen in create_app's app)
        raise FhirError([error("exception", "security state missing")], 500)
    settings = request.app.state.settings
    rules = load_access_rules(settings.mappings_dir)
    name = route_name(request)
    if name in rules.session_routes:
        # A page under /ui: the signed-in person's session stands for the bearer token (development mode too,
        # where the pages still need to know who decides, and act with full access like every other request).
        principal = await session_principal(request, tokens_audience(request))
        if settings.auth == "off":
            state.principal = replace(principal, development=True)
            return
    elif settings.auth == "off":
        state.principal = DEVELOPMENT_PRINCIPAL
        return
    else:
        principal = None
    state.rules = rules
    if name in rules.public_routes:
        return
    if principal is None:
        principal = await bearer_principal(request)
    state.principal = principal
    state.tenants = {principal.organization}
    rule = rules.routes.get(name)
    if rule is None:
        raise insufficient_scope("(none)", f"no client may call {request.method} {request.url.path}")
    check_rule(principal, request, rule, state, rules)


async def bearer_principal(request: Request) -> Principal:
    """The principal of the request's bearer token (401 without a valid one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(request, "an access token is needed (Authorization: Bearer ...)", invalid=False)
    principal = await request.app.state.tokens.principal_of(token.strip(), audience=tokens_audience(request))
    if principal is None:
        raise unauthorized(request, "the access token is invalid or expired", invalid=True)
    return principal


def tokens_audience(request: Request) -> str:
    """The FHIR base the server's tokens are issued for (and must name as ``aud``)."""
    from fhir_server.api.deps import base_url_for

    return base_url_for(request, request.app.state.settings)
