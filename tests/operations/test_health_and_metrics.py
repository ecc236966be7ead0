"""/healthz, /readyz and /metrics at the root, on both stores."""

from __future__ import annotations

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.outbox import stop_worker
from fhir_server.second_opinion.categories import decision_tags
from fhir_server.storage.base import OutboxMessage
from tests.api.conftest import FHIR_JSON, api_settings, patient

ROOT = "http://testserver"


async def test_liveness_answers_without_touching_anything(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ROOT}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_ready_when_the_store_answers_and_the_worker_runs(client: httpx.AsyncClient, app) -> None:
    response = await client.get(f"{ROOT}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"store": "ok", "outbox_worker": "ok"}}
    await stop_worker(app)
    response = await client.get(f"{ROOT}/readyz")
    assert response.status_code == 503 and response.json()["checks"]["outbox_worker"] == "not running"


async def test_not_ready_when_the_store_is_gone(store_url: str) -> None:
    application = create_app(api_settings(store_url, outbox_enabled=False))
    transport = httpx.ASGITransport(app=application)
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=transport, base_url=ROOT) as http:
            assert (await http.get("/readyz")).json()["checks"] == {"store": "ok"}  # no worker: not checked
            await application.state.store.clear()
            await application.state.store.close()
            response = await http.get("/readyz")
            assert response.status_code == 503 and response.json()["checks"]["store"].startswith("unreachable")
            await application.state.store.open()


async def test_the_endpoints_live_at_the_root_not_under_the_base(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 404  # /fhir/healthz is a (made-up) resource type


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), None)


async def metrics_text(client: httpx.AsyncClient) -> str:
    response = await client.get(f"{ROOT}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_requests_are_counted_by_interaction_type_and_status(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", json=patient(), headers=FHIR_JSON)
    await client.get(f"/Patient/{created.json()['id']}")
    await client.get("/Patient/missing")
    await client.get("/Patient", params={"family": "Doe"})
    await client.get("/NotAType/1")
    text = await metrics_text(client)
    assert sample(text, "fhir_requests_total", interaction="create", type="Patient", status="201") == 1
    assert sample(text, "fhir_requests_total", interaction="read", type="Patient", status="200") == 1
    assert sample(text, "fhir_requests_total", interaction="read", type="Patient", status="404") == 1
    assert sample(text, "fhir_requests_total", interaction="search-type", type="Patient", status="200") == 1
    assert sample(text, "fhir_requests_total", interaction="read", type="unknown", status="404") == 1
    assert sample(text, "fhir_request_duration_seconds_count", interaction="read", type="Patient") == 2
    assert "NotAType" not in text  # a made-up type never becomes a label value


async def test_outbox_depth_age_and_dead_messages_come_from_the_store(client: httpx.AsyncClient, app) -> None:
    clock = app.state.clock
    clock.freeze(clock())
    await app.state.store.enqueue(OutboxMessage(id="m1", channel="plan-copy", destination="http://x.test/",
                                                payload={"a": 1}))
    clock.advance(90)
    text = await metrics_text(client)
    assert sample(text, "fhir_outbox_messages", state="pending") == 1
    # Creation times strictly increase (a few milliseconds past a clock standing still), so the age is 90 s less
    # those milliseconds.
    assert sample(text, "fhir_outbox_oldest_pending_age_seconds") == pytest.approx(90, abs=1)
    await app.state.store.outbox_dead("m1", "HTTP 503", clock())
    text = await metrics_text(client)
    assert sample(text, "fhir_outbox_messages", state="dead") == 1
    assert sample(text, "fhir_outbox_messages", state="pending") == 0
    assert sample(text, "fhir_outbox_oldest_pending_age_seconds") == 0


async def test_decisions_by_outcome_and_plan(client: httpx.AsyncClient, app) -> None:
    for decision, plan in (("A1", "health-net-commercial"), ("A1", "health-net-commercial"),
                           ("A4", "blue-shield-promise-cmc")):
        tags = decision_tags(reason="questions-surgery", decision=decision, tier="network", plan=plan, group=None)
        await app.state.store.create({"resourceType": "ClaimResponse", "meta": {"tag": tags}, "status": "active"})
    text = await metrics_text(client)
    assert sample(text, "fhir_second_opinion_decisions", decision="A1", plan="health-net-commercial") == 2
    assert sample(text, "fhir_second_opinion_decisions", decision="A4", plan="blue-shield-promise-cmc") == 1
    assert sample(text, "fhir_second_opinion_decisions", decision="A3", plan="health-net-commercial") == 0
