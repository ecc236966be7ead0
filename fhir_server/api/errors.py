"""Every error leaves the server as an OperationOutcome with a matching status.

Handlers cover our :class:`FhirError`, Starlette's HTTP errors (unknown routes 404, wrong method 405),
FastAPI's request validation, and — as a pure ASGI middleware, so it also catches what escapes the
exception middleware — any other exception, answered 500 without leaking internals.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.api.media import FHIR_JSON_UTF8, fhir_response
from fhir_server.errors import FhirError, error, operation_outcome

log = logging.getLogger(__name__)

# HTTP status -> OperationOutcome issue code for errors raised by the framework, not by us.
FRAMEWORK_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
}


def outcome_response(exc: FhirError) -> Response:
    return fhir_response(operation_outcome(exc.issues), exc.status, exc.headers or None)


async def handle_fhir_error(request: Request, exc: FhirError) -> Response:
    return outcome_response(exc)


async def handle_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = FRAMEWORK_ISSUE_CODES.get(exc.status_code, "processing")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404:
        detail = f"no FHIR interaction at {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not supported at {request.url.path}"
    return outcome_response(FhirError([error(code, detail)], exc.status_code, dict(exc.headers or {})))


async def handle_validation_error(request: Request, exc: RequestValidationError) -> Response:
    issues = [
        error("invalid", str(problem.get("msg", "invalid request")), ".".join(str(p) for p in problem.get("loc", ())))
        for problem in exc.errors()
    ]
    return outcome_response(FhirError(issues or [error("invalid", "invalid request")], 400))


class InternalErrorMiddleware:
    """Last resort: an unexpected exception becomes a 500 OperationOutcome (details only in the log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 - the point of a last-resort handler
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = orjson.dumps(
                operation_outcome([error("exception", "internal server error: the request could not be processed")])
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", FHIR_JSON_UTF8.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the last-resort middleware on ``app``."""
    handlers: dict[Any, Any] = {
        FhirError: handle_fhir_error,
        StarletteHTTPException: handle_http_error,
        RequestValidationError: handle_validation_error,
    }
    for exception_type, handler in handlers.items():
        app.add_exception_handler(exception_type, handler)
    app.add_middleware(InternalErrorMiddleware)
