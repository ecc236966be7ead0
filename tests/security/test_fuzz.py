"""Bounded property-based fuzzing with security on: schemathesis generates requests from the server's own OpenAPI
document (every route, path and query parameters, bodies), sent without a token and with an EHR's token; Hypothesis
feeds the scope and search parsers. No request may answer 500 or leak a stack trace or an internal path; limits on
body size, JSON depth, Bundle entries and search parameters answer 4xx.

Bounded (a few hundred requests in all) so the whole run stays well under a minute on a small machine."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from fhir_server.errors import FhirError
from fhir_server.search.query import parse_search
from fhir_server.security.scopes import grant, parse_scopes
from tests.conftest import BACKENDS
from tests.security.conftest import EHR_SCOPES, register, secure_client

LEAKS = re.compile(r"Traceback|File \"|/work/|site-packages|\.py\b|sqlite3\.|pymongo\.", re.IGNORECASE)
SEARCH_NAMES = ["family", "_id", "birthdate", "_count", "_sort", "general-practitioner", "_include", "_revinclude",
                "_lastUpdated", "name:exact", "_total", "identifier", "_elements", "_summary", "gender:not", "name:missing"]
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(request, tmp_path_factory) -> Iterator[TestClient]:
    """One app per store for the whole module (SQLite, then MongoDB)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fhir.db'}"
    else:
        url = f"{request.getfixturevalue('mongo_server_url')}/fhir_fuzz_{uuid.uuid4().hex[:12]}?directConnection=true"
    yield from secure_client(url)


@pytest.fixture(scope="module")
def ehr_token(fuzzed) -> str:
    party = register(fuzzed, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    assert party.token
    return party.token


@pytest.fixture(scope="module")
def schema(fuzzed):
    document = fuzzed.get("/fhir/openapi.json").json()
    schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1
    return schemathesis.from_dict(document)


def _send(client: TestClient, case, token: str | None):
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    headers = {key: value for key, value in (kwargs.pop("headers", None) or {}).items() if key.lower() != "authorization"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.request(kwargs.pop("method"), kwargs.pop("url"), headers=headers,
                          params=kwargs.get("params"), json=kwargs.get("json"),
                          content=kwargs.get("data") if isinstance(kwargs.get("data"), (bytes, str)) else None)


def _check(response) -> None:
    assert response.status_code < 500, response.text[:500]
    assert not LEAKS.search(response.text), response.text[:500]


def test_generated_requests_never_fail_or_leak(fuzzed, schema, ehr_token):
    strategy = schema.as_strategy()

    @FUZZ
    @given(case=strategy, authenticated=st.booleans())
    def run(case, authenticated):
        _check(_send(fuzzed, case, ehr_token if authenticated else None))

    run()


def test_limits_hold_with_security_on(fuzzed, ehr_token):
    headers = {"Authorization": f"Bearer {ehr_token}", "Content-Type": "application/fhir+json"}
    huge = fuzzed.post("/fhir/Patient", content=b"{" + b" " * (11 * 1024 * 1024) + b"}", headers=headers)
    assert huge.status_code == 413
    deep: object = "x"
    for _ in range(200):
        deep = {"a": deep}
    assert fuzzed.post("/fhir/Patient", content=json.dumps({"resourceType": "Patient", "extension": deep}),
                       headers=headers).status_code == 400
    many = fuzzed.get("/fhir/Patient?" + "&".join(f"family=x{i}" for i in range(5000)), headers=headers)
    assert many.status_code == 400
    ored = fuzzed.get("/fhir/Patient?family=" + ",".join(f"x{i}" for i in range(5000)), headers=headers)
    assert ored.status_code == 400
    assert fuzzed.get("/fhir/Patient?" + "&".join(f"family=x{i}" for i in range(50)), headers=headers).status_code == 200
    entries = [{"request": {"method": "GET", "url": "Patient?family=x"}}] * 5000
    bundle = fuzzed.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries}, headers=headers)
    assert bundle.status_code == 413
    unauthenticated_huge = fuzzed.post("/fhir/Patient", content=b"{" + b" " * (11 * 1024 * 1024) + b"}",
                                       headers={"Content-Type": "application/fhir+json"})
    assert unauthenticated_huge.status_code == 401  # refused before its body is read


@FUZZ
@given(st.text(max_size=200))
def test_scope_parsing_never_fails(text):
    scopes = parse_scopes(text)
    assert all(scope.text in text for scope in scopes)
    assert set(grant(text, ["system/*.rs"])) <= {scope.text for scope in scopes}


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(SEARCH_NAMES), st.text(max_size=10)), st.text(max_size=30)),
                max_size=6))
def test_search_parsing_answers_a_query_or_a_fhir_error(params):
    try:
        parse_search("Patient", params, default_count=20, max_count=100, strict=False)
    except FhirError as error:
        assert 400 <= error.status < 500
