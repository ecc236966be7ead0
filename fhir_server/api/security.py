"""HTTP side of security: SMART discovery, the token endpoint and the server's public keys.

The token endpoint speaks OAuth 2.0, not FHIR: form-encoded in, JSON out, errors as ``{"error": ...}``
(RFC 6749 5.2), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import base_url_for, remote_address
from fhir_server.api.rest import add_route
from fhir_server.security.discovery import (
    JWKS_PATH,
    SIGN_IN_PATH,
    SMART_CONFIGURATION_PATH,
    TOKEN_PATH,
    smart_configuration,
)
from fhir_server.security.tokens import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type="application/json")


def oauth_error(exc: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if exc.code == "invalid_client":
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return json_response({"error": exc.code, "error_description": exc.description}, exc.status, headers)


async def read_form(request: Request) -> dict[str, str]:
    """The form fields of a token request (each once; the body is bounded like every other body)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise OAuthError("invalid_request", f"the token request is {FORM}")
    body = await request.body()
    if len(body) > request.app.state.settings.max_body_bytes:
        raise OAuthError("invalid_request", "the token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the token request is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"{name} is given more than once")
        form[name] = value
    return form


async def smart_configuration_document(request: Request) -> Response:
    """``GET [base]/.well-known/smart-configuration``."""
    return json_response(smart_configuration(base_url_for(request, request.app.state.settings)))


async def token(request: Request) -> Response:
    """``POST [base]/auth/token``: client_credentials with a private_key_jwt client assertion."""
    base_url = base_url_for(request, request.app.state.settings)
    try:
        form = await read_form(request)
        answer = await request.app.state.tokens.exchange(form, base_url + TOKEN_PATH, base_url, remote_address(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(answer, headers=NO_STORE)


async def sign_in(request: Request) -> Response:
    """``POST [base]/auth/sign-in``: a person's local account (username, password) -> an access token."""
    base_url = base_url_for(request, request.app.state.settings)
    try:
        answer = await request.app.state.tokens.sign_in(await read_form(request), base_url, remote_address(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(answer, headers=NO_STORE)


async def server_jwks(request: Request) -> Response:
    """``GET [base]/.well-known/jwks.json``: the public key the server signs its tokens (and outgoing requests) with."""
    return json_response(await request.app.state.tokens.keys.jwks())


def register(app: FastAPI, base_path: str) -> None:
    for path, method, handler in (
        (SMART_CONFIGURATION_PATH, "GET", smart_configuration_document),
        (TOKEN_PATH, "POST", token),
        (SIGN_IN_PATH, "POST", sign_in),
        (JWKS_PATH, "GET", server_jwks),
    ):
        add_route(app, base_path, path, method, handler, tags=("Security",))
