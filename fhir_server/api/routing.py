"""FHIR routes: documented by FastAPI, served without its per-request dependency solving when they can be.

FastAPI's request handler validates every declared parameter through pydantic, resolves ``Depends`` and manages
two exit stacks on every request: about 70 µs of CPU before the handler runs (measured: a route taking
``(resource_type: str, resource_id: str, request, ctx=Depends(get_context))`` costs 140 µs where the same handler
served as a plain Starlette endpoint costs 40 µs). The FHIR handlers need nothing of it: their path parameters
are strings (nothing to validate), and their only dependency is the request context.

:class:`FhirRoute` keeps everything FastAPI derives from the handler at start-up (the OpenAPI entry, the
parameter list of ``/docs``), and at request time, when the handler asks for no more than path strings, the
``Request`` and :func:`~fhir_server.api.deps.get_context` (after the app-wide authorization dependency, which it
runs first), calls it directly with those. A handler that declares
anything else (a query model, a body model, another dependency) is served by FastAPI's own handler, unchanged.
Errors raised by a handler reach the application's exception handlers either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette._utils import get_route_path
from starlette.routing import Match, request_response
from starlette.types import Scope

from fhir_server.api.deps import get_context
from fhir_server.security.authorize import authorize

Handler = Callable[..., Awaitable[Response]]


def _asks_for_parameters(dependant: Any) -> bool:
    return bool(dependant.query_params or dependant.header_params or dependant.cookie_params
                or dependant.body_params)


def direct_call(route: APIRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """The handler as ``request -> response`` when it needs no dependency solving; None otherwise."""
    dependant = route.dependant
    if _asks_for_parameters(dependant):
        return None
    if any(field.field_info.annotation is not str for field in dependant.path_params):
        return None
    if dependant.request_param_name is None:
        return None
    context_names = []
    guarded = False
    for dependency in dependant.dependencies:
        if dependency.call is authorize and not dependency.dependencies:  # the app-wide authorization decision
            guarded = True
            continue
        # get_context as it is: taking the request alone (should it ever need more, FastAPI serves the route)
        if (dependency.call is not get_context or dependency.name is None or dependency.dependencies
                or dependency.path_params or _asks_for_parameters(dependency)):
            return None
        context_names.append(dependency.name)
    endpoint: Handler = route.endpoint
    request_name = dependant.request_param_name

    async def call(request: Request) -> Response:
        if guarded:  # first, as FastAPI would run it
            await authorize(request)
        arguments: dict[str, Any] = dict(request.path_params)
        arguments[request_name] = request
        if context_names:  # the dependency itself, so that whatever it checks is checked here too
            context = await get_context(request)
            for name in context_names:
                arguments[name] = context
        return await endpoint(**arguments)

    return call


# Where the request's path segments are kept in the scope, split once for all the routes that look at them.
_SEGMENTS = "fhir_server.path_segments"


def path_segments(scope: Scope) -> list[str]:
    segments = scope.get(_SEGMENTS)
    if segments is None:
        segments = scope[_SEGMENTS] = get_route_path(scope).split("/")
    return segments


class FhirRoute(APIRoute):
    """An ``APIRoute`` served by :func:`direct_call` when its handler allows it, and quick to turn a request down.

    The router asks every route in turn until one matches: a read, behind the operations and the literal REST
    routes, was asked of some twenty routes, each a regular expression and FastAPI's bookkeeping (a third of the
    CPU time of a read). A FHIR route's path has a fixed number of segments (``{name}`` stops at ``/``) and some
    literal ones (``$submit``, ``_history``): a path that differs in either cannot match, and is refused from
    its segments alone before anything else is tried."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        call = direct_call(self)
        self.direct = call is not None
        if call is not None:
            self.app = request_response(call)
        segments = self.path.split("/")
        # A ``{name:path}`` parameter spans segments: such a route is left to the regular expression alone.
        self._shape: tuple[int, tuple[tuple[int, str], ...]] | None = None if ":path}" in self.path else (
            len(segments), tuple((position, text) for position, text in enumerate(segments) if "{" not in text))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._shape is not None and scope["type"] == "http":
            count, literals = self._shape
            segments = path_segments(scope)
            if len(segments) != count or any(segments[position] != text for position, text in literals):
                return Match.NONE, {}
        return super().matches(scope)
