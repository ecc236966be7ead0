"""HTTP middleware: request ids, the access log and request metrics, ``OPTIONS``, CORS and gzip.

Order, outermost first: the request id (so every later log line, error answers included, carries it), the access
log and metrics (they time the whole answer), CORS (only when ``FHIR_CORS_ORIGINS`` names origins: off by
default; it answers preflights), ``OPTIONS`` (answered from the routing table, before any handler), gzip (answers
of at least ``FHIR_GZIP_MIN_BYTES`` to clients that accept it: ``/metadata`` shrinks from about 195 KB to 5 KB).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.api.media import fhir_response
from fhir_server.errors import error, operation_outcome
from fhir_server.metrics import Metrics
from fhir_server.settings import Settings

access_log = logging.getLogger("fhir_server.access")

REQUEST_ID_HEADER = "X-Request-Id"
# An incoming request id is kept when it looks like one (a proxy's or a client's), else replaced by a new one.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Headers a browser app may read from an answer (versioning and paging need them).
EXPOSED_HEADERS = ("ETag", "Location", "Last-Modified", "Content-Location", REQUEST_ID_HEADER)
# Route (handler) names -> FHIR interaction codes, for the metrics; other routes are labelled by their name.
INTERACTIONS = {
    "read": "read", "vread": "vread", "update": "update", "conditional_update": "update", "delete": "delete",
    "conditional_delete": "delete", "create": "create", "patch": "patch", "search_get": "search-type",
    "search_post": "search-type", "search_system": "search-system", "history_instance": "history-instance",
    "history_type": "history-type", "history_system": "history-system",
}


def valid_request_id(value: str) -> bool:
    return bool(REQUEST_ID_PATTERN.fullmatch(value))


class RequestObserver:
    """Times each request; counts it in the metrics and writes one access-log line (method, path, status)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, resource_types: Callable[[str], bool]) -> None:
        self.app = app
        self.metrics = metrics
        self.is_resource_type = resource_types  # name -> bool, keeps the type label's values bounded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - started
            interaction, resource_type = self.labels(scope)
            self.metrics.observe_request(interaction, resource_type, status, seconds)
            access_log.info("request", extra={
                "method": scope["method"], "path": scope["path"], "status": status,
                "duration_ms": round(seconds * 1000, 2), "interaction": interaction, "type": resource_type,
            })

    def labels(self, scope: Scope) -> tuple[str, str]:
        route = scope.get("route")
        if route is None:
            return ("options" if scope["method"] == "OPTIONS" else "unknown"), ""
        name = getattr(route, "name", "") or ""
        resource_type = (scope.get("path_params") or {}).get("resource_type", "")
        if not resource_type:
            resource_type = _literal_type(getattr(route, "path", ""), self.is_resource_type)
        if resource_type and not self.is_resource_type(resource_type):
            resource_type = "unknown"
        return INTERACTIONS.get(name, name), resource_type


def _literal_type(path: str, is_resource_type: Callable[[str], bool]) -> str:
    """The resource type an operation's route names literally (``/fhir/ServiceRequest/$submit``), if any."""
    return next((segment for segment in path.split("/") if segment and is_resource_type(segment)), "")


class AllowedMethods:
    """``OPTIONS`` on any URL: 200 with the ``Allow`` list of the routes of the path template that serves it (404
    when none does).
    A CORS preflight (``Access-Control-Request-Method``) is left to the CORS middleware outside this one."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        matching = [route for route in self.router.routes if route.matches(scope)[0] != Match.NONE]
        # The path template that wins for this URL (``/fhir/metadata`` before ``/fhir/{resource_type}``): the
        # methods of its routes, not those of a more general template the URL would never reach.
        winner = getattr(matching[0], "path", None) if matching else None
        allowed = {method for route in matching if getattr(route, "path", None) == winner
                   for method in (getattr(route, "methods", None) or ())}
        if allowed:
            answer = Response(status_code=200, headers={"Allow": ", ".join(sorted(allowed | {"OPTIONS"}))})
        else:
            answer = fhir_response(operation_outcome([error("not-found", f"No resource at {scope['path']}")]), 404)
        await answer(scope, receive, send)


def install_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """Add the middleware above to ``app`` (Starlette runs the last added outermost)."""
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes)
    app.add_middleware(AllowedMethods, router=app.router)  # inside CORS, which answers preflights itself
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED_HEADERS),
        )
    app.add_middleware(RequestObserver, metrics=metrics, resource_types=app.state.definitions.is_resource_type)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        generator=lambda: uuid.uuid4().hex,
        validator=valid_request_id,
    )
