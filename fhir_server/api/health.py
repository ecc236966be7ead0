"""Operations endpoints at the server's root, outside the FHIR base: ``/healthz``, ``/readyz`` and ``/metrics``.

Why the root: load balancers, orchestrators and Prometheus probe fixed paths whatever ``FHIR_BASE_PATH`` is, and
none of these answers is a FHIR resource (plain JSON, Prometheus text). They are kept cheap: ``/healthz`` touches
nothing; ``/readyz`` pings the store (bounded by :data:`READY_TIMEOUT_SECONDS`) and looks at the outbox worker;
``/metrics`` reads the outbox summary and a handful of ``_summary=count`` searches from the store.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fhir_server.metrics import Metrics
from fhir_server.search.query import parse_search
from fhir_server.second_opinion.codes import PLAN_KEY_SYSTEM, X12_REVIEW_ACTION_SYSTEM
from fhir_server.second_opinion.plans import load_catalog
from fhir_server.storage.base import ResourceStore

READY_TIMEOUT_SECONDS = 2.0
REPORTED_DECISIONS = ("A1", "A3", "A4")
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def healthz() -> JSONResponse:
    """Liveness: the process answers (nothing else is checked: a store outage must not get it restarted)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers within the time limit and the outbox worker runs (when enabled)."""
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.store.ping(), READY_TIMEOUT_SECONDS)
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure to answer means "not ready"
        checks["store"] = f"unreachable: {type(exc).__name__}"
    if state.settings.outbox_enabled:
        worker = getattr(state, "outbox_worker", None)
        checks["outbox_worker"] = "ok" if worker is not None and worker.alive else "not running"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


async def decision_counts(store: ResourceStore, plans: list[str]) -> dict[tuple[str, str], int]:
    """Current ClaimResponses per (decision, plan), from the report tags every decision carries."""
    counts = {}
    for decision in REPORTED_DECISIONS:
        for plan in plans:
            params = [("_tag", f"{X12_REVIEW_ACTION_SYSTEM}|{decision}"), ("_tag", f"{PLAN_KEY_SYSTEM}|{plan}"),
                      ("_summary", "count")]
            query = parse_search("ClaimResponse", params, default_count=1, max_count=1, strict=True)
            counts[(decision, plan)] = (await store.search(query)).total or 0
    return counts


async def metrics(request: Request) -> Response:
    """Prometheus text: this instance's counters plus the store's figures, read now."""
    state = request.app.state
    registry: Metrics = state.metrics
    registry.set_outbox(await state.store.outbox_summary(), state.clock())
    plans = sorted(load_catalog(state.settings.mappings_dir).plans)
    registry.set_decisions(await decision_counts(state.store, plans))
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


def register(app: FastAPI) -> None:
    """Mount the three endpoints (before the FHIR routes, which a root base path would otherwise match)."""
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["operations"])
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["operations"])
    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["operations"], response_class=Response)
