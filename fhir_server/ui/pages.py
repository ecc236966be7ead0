"""HTTP side of the pages under ``/ui``: sign-in and sign-out, the worklist (and its rows, which an open page asks
for again every ``FHIR_UI_POLL_SECONDS``), a case, its review, and the quarterly report with its CSV.

HTTP only: who may see a page is decided by the app-wide authorization dependency (the route names are rules in
``mappings/security/access.yaml``; the session cookie stands for the bearer token), and what a page shows comes
from the modules beside this one, reading through the same guarded store as the API.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from fhir_server.api.case_management import decide_task
from fhir_server.api.deps import base_url_for, remote_address, with_caller
from fhir_server.api.second_opinion import catalog_of
from fhir_server.errors import FhirError
from fhir_server.api.reports import report_for
from fhir_server.second_opinion.reports import report_csv, report_rows
from fhir_server.security.access import load_access_rules
from fhir_server.security.principal import Principal, current_principal
from fhir_server.security.sessions import SESSION_COOKIE, BrowserSession, SessionCodec, SignInRequired, new_session, session_of
from fhir_server.security.tokens import OAuthError
from fhir_server.services.context import RequestContext
from fhir_server.ui.case_file import case_file
from fhir_server.ui.forms import checked_form
from fhir_server.ui.report_view import charts, parse_quarter, quarters_offered
from fhir_server.ui.review_form import decide_parameters, review_form, review_questionnaire
from fhir_server.ui.words import TIER_WORDS, situation_words, status_label, when
from fhir_server.ui.worklist import FILTERS, open_cases, worklist

UI = "/ui"
HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.globals.update(ui=UI, status_label=status_label, when=when, situation_words=situation_words,
                             tier_words=TIER_WORDS)


# -- sessions ------------------------------------------------------------------------------------------------------
def set_session(request: Request, response: Response, session: BrowserSession) -> None:
    codec: SessionCodec = request.app.state.sessions
    response.set_cookie(SESSION_COOKIE, codec.dump(session), max_age=request.app.state.settings.session_seconds,
                        path=UI, httponly=True, samesite="lax", secure=request.url.scheme == "https")


def render_page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page, with the session (a new anonymous one when the browser has none: its forms need a CSRF token)."""
    session = session_of(request)
    fresh = session is None
    session = session or new_session()
    principal = current_principal()
    rules = load_access_rules(request.app.state.settings.mappings_dir)
    person = principal if principal is not None and principal.person else None
    response = TEMPLATES.TemplateResponse(request, template, {
        "csrf": session.csrf, "person": person, "sees_report": _allowed(person, rules.routes["ui_report"].roles),
        "external_sign_in": request.app.state.oidc, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if fresh:
        set_session(request, response, session)
    return response


def _allowed(person: Principal | None, roles: frozenset[str] | None) -> bool:
    return person is not None and (roles is None or person.role in roles)


def _may_decide(request: Request, person: Principal | None) -> bool:
    """Whether the person's role may use the review form (the rule of its route, so page and POST agree)."""
    rule = load_access_rules(request.app.state.settings.mappings_dir).routes["ui_decide"]
    return _allowed(person, rule.roles) and bool(person and person.practitioner)


SIGN_IN_REFUSALS = {
    "invalid_grant": "The user name or the password is wrong.",
    "slow_down": "Too many sign-in attempts: try again in {seconds} seconds.",
}


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of this server only (never another site)."""
    if target and target.startswith(UI + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{UI}/worklist"


# -- sign-in -------------------------------------------------------------------------------------------------------
async def ui_home() -> RedirectResponse:
    return RedirectResponse(f"{UI}/worklist", status_code=303)


async def ui_sign_in_page(request: Request) -> HTMLResponse:
    return render_page(request, "sign_in.html", {"next": safe_next(request.query_params.get("next")), "error": None})


async def ui_sign_in(request: Request) -> Response:
    form = await checked_form(request)
    target = safe_next(form.get("next"))
    try:
        answer = await request.app.state.tokens.sign_in(
            {"username": form.get("username", ""), "password": form.get("password", "")},
            base_url_for(request, request.app.state.settings), remote_address(request))
    except OAuthError as exc:
        words = SIGN_IN_REFUSALS.get(exc.code, exc.description).format(seconds=exc.retry_after)
        page = render_page(request, "sign_in.html", {"next": target, "error": words, "username": form.get("username", "")},
                     429 if exc.retry_after is not None else 401)
        if exc.retry_after is not None:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, new_session(answer["access_token"]))
    return response


async def ui_sign_out(request: Request) -> Response:
    await checked_form(request)
    response = RedirectResponse(f"{UI}/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=UI)
    return response


# -- worklist ------------------------------------------------------------------------------------------------------
async def _worklist(request: Request) -> Any:
    app = request.app
    chosen = {name: request.query_params.get(name, "") for name in FILTERS}
    plan_names = {key: rules.display for key, rules in catalog_of(app).plans.items()}
    return worklist(await open_cases(app.state.store, app.state.clock(), plan_names), chosen)


def _rows_url(listed: Any) -> str:
    return f"{UI}/worklist/rows?" + urlencode({**listed.chosen, "seen": listed.digest})


async def ui_worklist(request: Request) -> HTMLResponse:
    listed = await _worklist(request)
    return render_page(request, "worklist.html", {"worklist": listed, "rows_url": _rows_url(listed),
                                            "poll": request.app.state.settings.ui_poll_seconds})


async def ui_worklist_rows(request: Request) -> Response:
    """The worklist's table alone, for the page's periodic request; 204 (nothing to swap) when it is unchanged."""
    listed = await _worklist(request)
    if request.query_params.get("seen") == listed.digest:
        return Response(status_code=204)
    return render_page(request, "worklist_rows.html", {"worklist": listed, "rows_url": _rows_url(listed),
                                                 "poll": request.app.state.settings.ui_poll_seconds})


# -- a case and its review -----------------------------------------------------------------------------------------
async def _case_page(request: Request, task_id: str, *, answers: dict[str, str] | None = None,
                     errors: list[str] | None = None, status: int = 200) -> HTMLResponse:
    store = request.app.state.store
    case = await case_file(store, task_id, catalog_of(request.app))
    person = current_principal()
    form = None
    if _may_decide(request, person) and case.open:
        questionnaire = await review_questionnaire(store)
        form = review_form(questionnaire) if questionnaire else None
    return render_page(request, "case.html", {
        "case": case, "may_decide": _may_decide(request, person), "form": form, "answers": answers or {},
        "suggestions": case.suggestions(),
        "errors": errors or [], "decided": request.query_params.get("decided")}, status)


async def ui_case(request: Request, task_id: str) -> HTMLResponse:
    return await _case_page(request, task_id)


async def ui_decide(request: Request, task_id: str) -> Response:
    """The review form posted: ``$decide`` with its answers, by the signed-in physician; its refusals shown in
    words on the case page, with the answers kept."""
    answers = await checked_form(request)
    store = request.app.state.store
    questionnaire = await review_questionnaire(store)
    person = current_principal()
    if questionnaire is None or person is None or not person.practitioner:
        return await _case_page(request, task_id, answers=answers, status=409,
                                errors=["The review form is not on this server: nothing was decided."])
    parameters = decide_parameters(review_form(questionnaire), answers, person.practitioner)
    try:
        ctx = with_caller(RequestContext(base_url=base_url_for(request, request.app.state.settings)))
        await decide_task(request.app, task_id, parameters, ctx)
    except FhirError as exc:
        if exc.status == 404:
            raise
        return await _case_page(request, task_id, answers=answers, status=exc.status,
                                errors=[issue.diagnostics for issue in exc.issues])
    return RedirectResponse(f"{UI}/cases/{task_id}?" + urlencode({"decided": answers.get("decision", "")}), status_code=303)


# -- the quarterly report ------------------------------------------------------------------------------------------
async def _report(request: Request) -> tuple[Any, dict[str, Any]]:
    now = request.app.state.clock()
    quarter = parse_quarter(request.query_params.get("quarter"), now)
    return quarter, await report_for(request.app, quarter.period)


async def ui_report(request: Request) -> HTMLResponse:
    quarter, report = await _report(request)
    rows = report_rows(report)
    return render_page(request, "report.html", {"quarter": quarter, "quarters": quarters_offered(request.app.state.clock()),
                                          "rows": rows, "charts": charts(rows)})


async def ui_report_csv(request: Request) -> Response:
    quarter, report = await _report(request)
    return Response(report_csv(report), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="second-opinion-report_{quarter.code}.csv"'})


# -- errors --------------------------------------------------------------------------------------------------------
def install_page_errors(app: FastAPI) -> None:
    """A page's errors as pages: no session sends the browser to sign in (htmx requests via ``HX-Redirect``);
    refusals and unknown cases are an error page with the same status. Other paths keep their FHIR errors."""
    fhir_handler = app.exception_handlers[FhirError]

    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        target = f"{UI}/sign-in?" + urlencode({"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")})
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def page_error(request: Request, exc: FhirError) -> Response:
        if not request.url.path.startswith(UI + "/"):
            return await fhir_handler(request, exc)
        return render_page(request, "error.html", {"status": exc.status, "problems": [i.diagnostics for i in exc.issues]}, exc.status)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(FhirError, page_error)


def register(app: FastAPI) -> None:
    """Mount the pages, their assets and their error pages (register before the generic FHIR routes)."""
    settings = app.state.settings
    secret = settings.ui_session_secret.get_secret_value() if settings.ui_session_secret else secrets.token_urlsafe(32)
    app.state.sessions = SessionCodec(secret)
    app.mount(f"{UI}/static", StaticFiles(directory=HERE / "static"), name="ui_static")
    for path, method, handler in (
        (UI, "GET", ui_home),
        (f"{UI}/sign-in", "GET", ui_sign_in_page),
        (f"{UI}/sign-in", "POST", ui_sign_in),
        (f"{UI}/sign-out", "POST", ui_sign_out),
        (f"{UI}/worklist", "GET", ui_worklist),
        (f"{UI}/worklist/rows", "GET", ui_worklist_rows),
        (f"{UI}/cases/{{task_id}}", "GET", ui_case),
        (f"{UI}/cases/{{task_id}}/decide", "POST", ui_decide),
        (f"{UI}/report", "GET", ui_report),
        (f"{UI}/report.csv", "GET", ui_report_csv),
    ):
        app.add_api_route(path, handler, methods=[method], name=handler.__name__, include_in_schema=False)
    install_page_errors(app)
