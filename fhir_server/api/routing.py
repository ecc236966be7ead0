"""FHIR routes: documented by FastAPI, served without its per-request dependency solving when they can be.

FastAPI's request handler validates every declared parameter through pydantic, resolves ``Depends`` and manages
two exit stacks on every request: about 70 µs of CPU before the handler runs (measured: a route taking
``(resource_type: str, resource_id: str, request, ctx=Depends(get_context))`` costs 140 µs where the same handler
served as a plain Starlette endpoint costs 40 µs). The FHIR handlers need nothing of it: their path parameters
are strings (nothing to validate), and their only dependency is the request context.

:class:`FhirRoute` keeps everything FastAPI derives from the handler at start-up (the OpenAPI entry, the
parameter list of ``/docs``), and at request time, when the handler asks for no more than path strings, the
``Request`` and :func:`~fhir_server.api.deps.get_context`, calls it directly with those. A handler that declares
anything else (a query model, a body model, another dependency) is served by FastAPI's own handler, unchanged.
Errors raised by a handler reach the application's exception handlers either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import request_response

from fhir_server.api.deps import context_from_request, get_context

Handler = Callable[..., Awaitable[Response]]


def direct_call(route: APIRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """The handler as ``request -> response`` when it needs no dependency solving; None otherwise."""
    dependant = route.dependant
    if dependant.query_params or dependant.header_params or dependant.cookie_params or dependant.body_params:
        return None
    if any(field.field_info.annotation is not str for field in dependant.path_params):
        return None
    if dependant.request_param_name is None:
        return None
    context_names = []
    for dependency in dependant.dependencies:
        if dependency.call is not get_context or dependency.name is None:
            return None
        context_names.append(dependency.name)
    endpoint: Handler = route.endpoint
    request_name = dependant.request_param_name

    async def call(request: Request) -> Response:
        arguments: dict[str, Any] = dict(request.path_params)
        arguments[request_name] = request
        if context_names:
            context = context_from_request(request)
            for name in context_names:
                arguments[name] = context
        return await endpoint(**arguments)

    return call


class FhirRoute(APIRoute):
    """An ``APIRoute`` served by :func:`direct_call` when its handler allows it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        call = direct_call(self)
        self.direct = call is not None
        if call is not None:
            self.app = request_response(call)
