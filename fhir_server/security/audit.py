"""The audit trail: one ``AuditEvent`` (IHE Basic Audit Log Patterns) per interaction, refused ones included.

:class:`AuditMiddleware` sees every HTTP request after the router has named its route and the authorization
dependency its principal: who (client, organization, person), what (the resource, the patient), when (the
server's clock), from where (the client's address) and the outcome (the status). It is appended to the
:class:`AuditTrail` after the answer is complete, which writes what has queued up in one transaction through the
raw store: a read does not wait for a write of its own.
AuditEvents are written only by the server (``server_only_types`` in the access data), so the API can neither
change nor delete one; the plan searches them by ``entity``, ``agent``, ``patient`` and ``date``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.clock import Now
from fhir_server.security.principal import RequestSecurity, current
from fhir_server.storage.base import ResourceStore

log = logging.getLogger(__name__)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
CLIENT_ID_SYSTEM = "http://example.org/fhir/second-opinion/sid/client-id"
ACCOUNT_SYSTEM = "http://example.org/fhir/second-opinion/sid/account"
# route name -> (restful-interaction code, AuditEvent.action)
INTERACTIONS: dict[str, tuple[str, str]] = {
    "read": ("read", "R"), "vread": ("vread", "R"), "history_instance": ("history-instance", "R"),
    "history_type": ("history-type", "R"), "history_system": ("history-system", "R"),
    "search_get": ("search-type", "E"), "search_post": ("search-type", "E"), "search_system": ("search-system", "E"),
    "create": ("create", "C"), "update": ("update", "U"), "conditional_update": ("update", "U"), "patch": ("patch", "U"),
    "delete": ("delete", "D"), "conditional_delete": ("delete", "D"), "process_bundle": ("transaction", "E"),
    "create_subscription": ("create", "C"), "update_subscription": ("update", "U"), "token": ("operation", "E"),
}
# Discovery, documentation and the operating probes are not interactions with anyone's data.
NOT_AUDITED = frozenset({"openapi", "static", "swagger_ui", "swagger_ui_redirect", "capability_statement",
                         "smart_configuration_document", "server_jwks", "healthz", "readyz", "metrics"})
PATIENT_PARAMS = ("patient", "subject", "beneficiary", "for")


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None and getattr(route, "name", None):
        return route.name
    return getattr(scope.get("endpoint"), "__name__", "") or "unknown"


def _entities(scope: Scope, query: bytes, location: str | None) -> list[dict[str, Any]]:
    params = scope.get("path_params") or {}
    resource_type = params.get("resource_type") or _type_from_path(scope)
    resource_id = params.get("resource_id") or params.get("task_id")
    if location and not resource_id:  # a create: the id the server gave is in Location (.../Type/id/_history/n)
        parts = location.split("/_history/")[0].rstrip("/").split("/")
        resource_type, resource_id = parts[-2], parts[-1]
    entities: list[dict[str, Any]] = []
    if resource_type and resource_id:
        reference = f"{resource_type}/{resource_id}"
        entity: dict[str, Any] = {"what": {"reference": reference},
                                  "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}}
        entities.append(_patient_entity(reference) if resource_type == "Patient" else entity)
    if query:
        entities.append({"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
                         "query": base64.b64encode(query).decode()})
        for name, value in parse_qsl(query.decode("latin-1")):
            if name.split(":")[0] in PATIENT_PARAMS and value.startswith("Patient/") and "," not in value:
                entities.append(_patient_entity(value))
    return entities


def _patient_entity(reference: str) -> dict[str, Any]:
    return {"what": {"reference": reference},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}


def _type_from_path(scope: Scope) -> str | None:
    for part in str(scope.get("path", "")).split("/"):
        if part[:1].isupper() and part.isalpha():
            return part
    return None


def _agents(state: RequestSecurity | None, scope: Scope) -> list[dict[str, Any]]:
    client = scope.get("client") or ("unknown", 0)
    network = {"address": str(client[0]), "type": "2"}
    principal = state.principal if state else None
    if principal is None:
        return [{"requestor": True, "who": {"display": "unauthenticated"}, "network": network}]
    agents: list[dict[str, Any]] = [{
        "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
        "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": principal.client_id}},
        "requestor": principal.person is None, "network": network,
    }]
    if principal.organization:
        agents.append({"who": {"reference": principal.organization}, "requestor": False})
    if principal.person or principal.practitioner:
        person: dict[str, Any] = {"requestor": principal.person is not None, "who": {}}
        if principal.practitioner:
            person["who"]["reference"] = principal.practitioner
        if principal.person:
            person["altId"] = principal.person
        agents.append(person)
    return agents


def audit_event(scope: Scope, status: int, state: RequestSecurity | None, now: Now,
                location: str | None = None) -> dict[str, Any]:
    name = _route_name(scope)
    code, action = INTERACTIONS.get(name, ("operation", "E"))
    outcome = "0" if status < 400 else ("4" if status < 500 else "8")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTION, "code": code}],
        "action": action,
        "recorded": now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome,
        "outcomeDesc": f"{scope.get('method')} {scope.get('path')} -> {status}",
        "agent": _agents(state, scope),
        "source": {"observer": {"display": "second-opinion FHIR server"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}]},
    }
    if code == "operation" and name != "unknown":
        event["subtype"].append({"system": "http://example.org/fhir/second-opinion/CodeSystem/operation", "code": name})
    entities = _entities(scope, scope.get("query_string", b""), location)
    named = {entity.get("what", {}).get("reference") for entity in entities}
    for patient in sorted((state.patients if state else set()) - named):
        entities.append(_patient_entity(patient))
    if entities:
        event["entity"] = entities
    return event


class AuditTrail:
    """The cheap append path: :meth:`record` queues an event at once; a writer task stores what has queued up in one
    transaction (one commit for many requests). A read of the trail first waits for everything queued before it
    (:meth:`flush`), and stopping the server writes the rest; what a crash can lose is the last unwritten batch
    (milliseconds of requests)."""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, event: dict[str, Any]) -> None:
        self._pending.append(event)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
        self._wake.set()

    async def flush(self) -> None:
        """Store everything recorded so far."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                async with self.store.transaction() as tx:
                    for event in batch:
                        await tx.create(event)
            except Exception:  # noqa: BLE001 - the trail must not take the server down; the log says what was lost
                log.exception("could not write %d AuditEvents", len(batch))

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        await self.flush()


class AuditMiddleware:
    """Pure ASGI middleware (inside :class:`~fhir_server.security.principal.RequestSecurityMiddleware`): after each
    HTTP request, append its AuditEvent to the trail; before a request that reads the trail, write what is queued."""

    def __init__(self, app: ASGIApp, trail: AuditTrail, now: Now, enabled: bool) -> None:
        self.app = app
        self.trail = trail
        self.now = now
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        if "AuditEvent" in scope.get("path", "") or "AuditEvent" in scope.get("query_string", b"").decode("latin-1"):
            await self.trail.flush()
        status = 500
        location: str | None = None

        async def recording_send(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                location = next((value.decode("latin-1") for name, value in message.get("headers", [])
                                 if name.lower() == b"location"), None)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if _route_name(scope) not in NOT_AUDITED:
                self.trail.record(audit_event(scope, status, current(), self.now, location))
