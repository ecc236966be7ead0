"""The server authenticates to a plan's server as a SMART backend client with its own key: a delegated group's
server sends its plan copy with a bearer token it got by signing an assertion with the key its JWKS publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from fhir_server.app import create_app
from fhir_server.outbox import OutboxWorker
from fhir_server.security.clients import register_client
from fhir_server.settings import Settings
from tests.case_management.helpers import BSP, parameters
from tests.outbox.plan_servers import mappings_with_endpoint
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json
from tests.second_opinion.helpers import submission
from tests.security.conftest import ALL, ASSERTION_TYPE, EHR_SCOPES, NOW, KeyPair

PLAN_BASE = "http://plan.test/fhir"


class Http:
    """An in-process client of one app with its own key and registered clients."""

    def __init__(self, app: Any, base: str) -> None:
        self.app = app
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)

    async def party(self, organization: str, role: str, scopes: str, practitioner: str | None = None) -> dict[str, str]:
        key = KeyPair()
        client = await register_client(self.app.state.tokens.store, name=role, organization=organization, role=role,
                                       scopes=scopes.split(), jwks=key.jwks, practitioner=practitioner)
        now = int(self.app.state.clock().timestamp())
        token_url = f"{self.http.base_url}/fhir/auth/token".replace("//fhir", "/fhir")
        assertion = jwt.encode({"iss": client.client_id, "sub": client.client_id, "aud": token_url, "exp": now + 60,
                                "jti": client.client_id}, key.private, algorithm="ES384", headers={"kid": key.kid})
        answer = await self.http.post("/fhir/auth/token", data={"grant_type": "client_credentials", "scope": scopes,
                                      "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
        assert answer.status_code == 200, answer.text
        return {**FHIR_JSON, "Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
async def two_servers(tmp_path: Path) -> AsyncIterator[tuple[Http, Http]]:
    group_app = create_app(Settings(store=f"sqlite:///{tmp_path / 'group.db'}", auth="on", outbox_enabled=False,
                                    allowed_hosts=["group.test"],
                                    mappings_dir=mappings_with_endpoint(tmp_path / "group-mappings", PLAN_BASE)))
    plan_app = create_app(Settings(store=f"sqlite:///{tmp_path / 'plan.db'}", auth="on", outbox_enabled=False,
                                   allowed_hosts=["plan.test"],
                                   mappings_dir=mappings_with_endpoint(tmp_path / "plan-mappings", None)))
    for app in (group_app, plan_app):
        app.state.clock.freeze(NOW)
    async with group_app.router.lifespan_context(group_app), plan_app.router.lifespan_context(plan_app):
        group, plan = Http(group_app, "http://group.test"), Http(plan_app, "http://plan.test")
        yield group, plan
        await group.http.aclose()
        await plan.http.aclose()


async def test_a_plan_copy_carries_the_servers_own_bearer_token(two_servers):
    group, plan = two_servers
    admin = await group.party("Organization/org-blue-shield-promise", "plan", ALL)
    assert (await group.http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=admin)).status_code == 200
    ehr = await group.party("Organization/ehr-a", "ehr", EHR_SCOPES)
    reviewer = await group.party("Organization/ipa-harbor", "reviewer", "system/Task.rus", "Practitioner/pract-13")
    submitted = await group.http.post("/fhir/ServiceRequest/$submit", headers=ehr,
                                      json=submission(plan=BSP, group="Organization/ipa-harbor", treating=[], identifier="copied"))
    task = next(e["resource"] for e in submitted.json()["entry"] if e["resource"]["resourceType"] == "Task")
    decided = await group.http.post(f"/fhir/Task/{task['id']}/$decide", json=parameters("approve"), headers=reviewer)
    assert decided.status_code == 200, decided.text

    worker = OutboxWorker(group.app.state.store, client=plan.http, clock=group.app.state.clock,
                          authorizer=group.app.state.outbound_auth.headers_for, jitter=lambda: 0.0)
    # not yet registered at the plan: sent without a token, refused, kept for a retry
    assert await worker.run_once() == 0
    [waiting] = await group.app.state.store.outbox_messages("plan-copy")
    assert waiting.last_error and waiting.last_error.startswith("HTTP 401")

    # the plan registers the group's server with the public key it publishes; the group's server is told its id
    server_jwks = (await group.http.get("/fhir/.well-known/jwks.json")).json()
    assert all("d" not in key for key in server_jwks["keys"])
    registered = await register_client(plan.app.state.tokens.store, name="Harbor IPA server", role="group",
                                       organization="Organization/ipa-harbor", scopes=["system/*.crus"], jwks=server_jwks)
    group.app.state.settings.outbound_clients = {PLAN_BASE: registered.client_id}
    group.app.state.clock.advance(3600)
    plan.app.state.clock.advance(3600)
    assert await worker.run_once() == 1
    [sent] = await group.app.state.store.outbox_messages("plan-copy")
    assert sent.delivered_at is not None

    plan_admin = await plan.party("Organization/org-blue-shield-promise", "plan", ALL)
    found = await plan.http.get("/fhir/ServiceRequest?identifier=copied&_total=accurate", headers=plan_admin)
    assert found.json()["total"] == 1
