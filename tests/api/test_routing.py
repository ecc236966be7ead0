"""FhirRoute: handlers that need no dependency solving are called directly; any other keeps FastAPI's handler."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api import rest
from fhir_server.api.deps import get_context
from fhir_server.api.errors import install_error_handlers
from fhir_server.api.routing import FhirRoute
from fhir_server.app import create_app
from fhir_server.services.context import RequestContext
from fhir_server.settings import Settings


def test_every_rest_and_operation_route_is_served_directly() -> None:
    app = create_app(Settings(store="sqlite:///:memory:"))
    routes = [route for route in app.routes if isinstance(route, FhirRoute)]
    assert len(routes) >= len(rest.ROUTES)
    assert all(route.direct for route in routes), [route.path for route in routes if not route.direct]


def _app() -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings(store="sqlite:///:memory:", allowed_hosts=["h"])
    install_error_handlers(app)

    async def direct(kind: str, request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
        return Response(f"{kind} {ctx.base_url} {ctx.prefer_return} {request.method}".encode())

    async def with_query(kind: str, request: Request, count: int = 3) -> Response:
        return Response(f"{kind} {count + 1}".encode())

    app.router.add_api_route("/direct/{kind}", direct, methods=["GET"], route_class_override=FhirRoute)
    app.router.add_api_route("/query/{kind}", with_query, methods=["GET"], route_class_override=FhirRoute)
    return app


async def test_a_direct_route_gets_its_path_strings_the_request_and_the_context() -> None:
    app = _app()
    assert {route.path: route.direct for route in app.routes if isinstance(route, FhirRoute)} == {
        "/direct/{kind}": True, "/query/{kind}": False}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client:
        response = await client.get("/direct/Patient", headers={"Prefer": "return=minimal"})
        assert response.text == "Patient http://h/fhir minimal GET"
        # the context's checks still run: a client that accepts no JSON gets 406
        assert (await client.get("/direct/Patient", headers={"Accept": "text/html"})).status_code == 406


async def test_a_route_with_a_query_parameter_keeps_fastapis_validation() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://h") as client:
        assert (await client.get("/query/x?count=41")).text == "x 42"
        # validated by FastAPI: the request validation error, as the app answers it (400 OperationOutcome)
        refused = await client.get("/query/x?count=many")
        assert refused.status_code == 400 and refused.json()["resourceType"] == "OperationOutcome"
    assert "/fhir/{resource_type}/{resource_id}" in create_app(Settings(store="sqlite:///:memory:")).openapi()["paths"]


def _scope(path: str, method: str = "GET", root_path: str = "") -> dict:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path}


def test_a_path_of_another_shape_is_refused_from_its_segments_before_the_pattern() -> None:
    import re

    from starlette.routing import Match

    async def history(resource_type: str, request: Request) -> Response:
        return Response(b"")

    route = FhirRoute("/fhir/{resource_type}/_history", history, methods=["GET"], response_class=Response)
    assert route.matches(_scope("/fhir/Patient/_history"))[0] is Match.FULL
    assert route.matches(_scope("/fhir/Patient/_history", root_path="/proxy"))[0] is Match.FULL
    assert route.matches(_scope("/fhir/Patient/_history", method="POST"))[0] is Match.PARTIAL  # 405, as before
    # a pattern that would take anything: the segments alone turn these down
    route.path_regex = re.compile(".*")
    for other in ("/fhir/Patient/123", "/fhir/Patient/_history/1", "/fhir/Patient", "/r4/Patient/_history"):
        assert route.matches(_scope(other))[0] is Match.NONE, other


async def test_the_base_url_follows_each_requests_host_and_scheme(tmp_path) -> None:
    """Base URLs are remembered by what they are made of: another Host or scheme gets its own, and a Host this
    server does not answer to still gets the configured base."""
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'hosts.db'}", allowed_hosts=["one.example", "two.example"]))
    async with app.router.lifespan_context(app):
        for base in ("http://one.example", "http://two.example:8080", "https://one.example", "http://one.example"):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
                created = await client.post("/fhir/Patient", json={"resourceType": "Patient"},
                                            headers={"Content-Type": "application/fhir+json"})
                assert created.headers["location"].startswith(f"{base}/fhir/Patient/"), base
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://evil.example") as client:
            created = await client.post("/fhir/Patient", json={"resourceType": "Patient"},
                                        headers={"Content-Type": "application/fhir+json"})
            assert created.headers["location"].startswith("http://127.0.0.1:8000/fhir/Patient/")


def test_a_server_address_given_as_a_list_makes_a_base_url_too(tmp_path) -> None:
    """Starlette's TestClient puts ``server`` in the scope as a list."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'list.db'}"))) as client:
        created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                              headers={"Content-Type": "application/fhir+json"})
        assert created.status_code == 201 and created.headers["location"].startswith("http://testserver/fhir/")
