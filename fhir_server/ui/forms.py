"""Forms the pages post (``application/x-www-form-urlencoded``): read within the body limit, checked against the
session's CSRF token before anything else happens."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from fhir_server.errors import FhirError, bad_request, error
from fhir_server.security.sessions import csrf_matches, session_of

FORM = "application/x-www-form-urlencoded"
CSRF_FIELD = "csrf"


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a posted form (a field given twice keeps its first value)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise FhirError.single(415, "not-supported", f"the pages post {FORM}")
    body = await request.body()
    if len(body) > request.app.state.settings.max_body_bytes:
        raise FhirError.single(413, "too-costly", "the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise bad_request("the form is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, when it carries the CSRF token of the browser's session (403 otherwise: a page of another
    site cannot post in the person's name)."""
    form = await read_form(request)
    if not csrf_matches(session_of(request), form.get(CSRF_FIELD)):
        raise FhirError([error("forbidden", "the form is out of date or not from this server: reload the page and try again")], 403)
    return form
