"""Signing in to the pages through the external OpenID Connect provider (``FHIR_OIDC_ISSUER``): HTTP side.

``GET /ui/sign-in/oidc`` sends the browser to the provider (code flow with PKCE; the values the callback must
match wait in a signed cookie, :mod:`fhir_server.security.oidc_state`). ``GET /ui/sign-in/oidc/callback`` takes the
provider's answer, exchanges the code, checks the ID token (:mod:`fhir_server.security.oidc`) and starts the same
session a local sign-in starts, for the account linked to that identity: the worklist, the review form and
``$decide`` then work as for anyone else. Every refusal is the sign-in page with its reason and no session.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from fhir_server.api.deps import base_url_for
from fhir_server.errors import FhirError
from fhir_server.security.oidc import OidcClient, SignInRefused, link_subject, plain
from fhir_server.security.oidc_state import PENDING_COOKIE, PENDING_SALT, PendingSignIn, PendingSignInCodec
from fhir_server.security.sessions import new_session
from fhir_server.security.tokens import OAuthError
from fhir_server.ui.pages import UI, render_page, safe_next, set_session

log = logging.getLogger(__name__)

START = f"{UI}/sign-in/oidc"
CALLBACK = f"{START}/callback"


def _provider(request: Request) -> OidcClient:
    oidc: OidcClient | None = request.app.state.oidc
    if oidc is None:
        raise FhirError.single(404, "not-found", "no external sign-in is configured on this server")
    return oidc


def _redirect_uri(request: Request) -> str:
    """The callback's absolute URL: configured, or the server's root (the FHIR base without its path) + CALLBACK."""
    settings = request.app.state.settings
    if settings.oidc_redirect_uri:
        return settings.oidc_redirect_uri
    base, path = base_url_for(request, settings), settings.normalized_base_path()
    return (base[: -len(path)] if path and base.endswith(path) else base) + CALLBACK


def _refusal(request: Request, refused: SignInRefused, next_page: str) -> Response:
    # Operators see why people cannot sign in (the reason only: never a code, token or claim).
    log.warning("external sign-in refused", extra={"reason": refused.words, "status": refused.status})
    return render_page(request, "sign_in.html", {"next": next_page, "error": refused.words}, refused.status)


async def ui_oidc_start(request: Request) -> Response:
    """Off to the provider, with a fresh state, nonce and PKCE verifier kept in the pending sign-in cookie."""
    oidc = _provider(request)
    settings = request.app.state.settings
    pending = PendingSignIn.start(_redirect_uri(request), safe_next(request.query_params.get("next")),
                                  request.app.state.clock(), settings.oidc_sign_in_seconds)
    try:
        url = await oidc.authorization_url(pending)
    except SignInRefused as refused:
        return _refusal(request, refused, pending.next)
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(PENDING_COOKIE, request.app.state.pending_sign_ins.dump(pending),
                        max_age=settings.oidc_sign_in_seconds, path=START, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


async def ui_oidc_callback(request: Request) -> Response:
    """The provider's answer: a session for the linked account, or the sign-in page saying why not."""
    oidc = _provider(request)
    codec: PendingSignInCodec = request.app.state.pending_sign_ins
    pending = codec.load(request.cookies.get(PENDING_COOKIE), request.app.state.clock())
    next_page = pending.next if pending else safe_next(None)
    try:
        answer = await _signed_in(request, oidc, pending)
    except SignInRefused as refused:
        response = _refusal(request, refused, next_page)
    else:
        response = RedirectResponse(next_page, status_code=303)
        set_session(request, response, new_session(answer["access_token"]))
    response.delete_cookie(PENDING_COOKIE, path=START)  # a pending sign-in serves once, whatever came of it
    return response


async def _signed_in(request: Request, oidc: OidcClient, pending: PendingSignIn | None) -> dict[str, str]:
    params = request.query_params
    state = params.get("state") or ""
    if pending is None or not hmac.compare_digest(pending.state.encode(), state.encode()):
        raise SignInRefused("This sign-in was not started here, or took too long: start again.", 400)
    if params.get("error"):
        raise SignInRefused(f"{oidc.display_name} did not sign you in ({plain(params.get('error')) or 'refused'}).")
    code = params.get("code")
    if not code:
        raise SignInRefused(f"{oidc.display_name} answered without a sign-in code: start again.", 400)
    claims = await oidc.redeem(code, pending)
    claim = request.app.state.settings.oidc_link_claim
    subject = link_subject(claims, claim)
    if subject is None:
        raise SignInRefused(f"{oidc.display_name} did not say who you are ({claim}): no account can be found.", 403)
    try:
        return await request.app.state.tokens.linked_sign_in(oidc.issuer, subject,
                                                             base_url_for(request, request.app.state.settings))
    except OAuthError as exc:
        raise SignInRefused(f"Not signed in: {exc.description}. Ask your administrator to link your "
                            f"{oidc.display_name} identity to an account.", exc.status) from None


def register(app: FastAPI) -> None:
    """The external sign-in's two routes (after :func:`fhir_server.ui.pages.register`, whose session secret the
    pending sign-in cookie is signed with)."""
    app.state.pending_sign_ins = PendingSignInCodec(app.state.sessions.signer(PENDING_SALT))
    for path, handler in ((START, ui_oidc_start), (CALLBACK, ui_oidc_callback)):
        app.add_api_route(path, handler, methods=["GET"], name=handler.__name__, include_in_schema=False)
