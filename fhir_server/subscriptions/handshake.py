"""The handshake that turns a ``requested`` Subscription ``active`` (or ``error``).

The Backport: before sending events the server proves the endpoint is there and willing by POSTing a
``handshake`` notification (status Parameters only); a 2xx answer activates the Subscription, anything else
(an error status, a refused connection, a timeout) marks it ``error`` with the reason in ``Subscription.error``.
It is done after the Subscription's write commits, never inside a store transaction, so a slow endpoint holds
no lock; the new status is written as a new version of the Subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from fhir_server.storage.base import ResourceOperations, StoredResource
from fhir_server.subscriptions.criteria import SubscriptionSpec, read_subscription
from fhir_server.subscriptions.notifications import notification_bundle

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class HandshakeResult:
    accepted: bool
    problem: str | None = None  # why not, for Subscription.error


def handshake_bundle(spec: SubscriptionSpec, base_url: str, now: datetime) -> dict[str, Any]:
    return notification_bundle(spec, base_url, notification_type="handshake", status="requested",
                               events_since_start=spec.event_count, timestamp=now)


async def send_handshake(spec: SubscriptionSpec, base_url: str, now: datetime) -> HandshakeResult:
    """POST the handshake to the endpoint, with the Subscription's headers and timeout."""
    body = orjson.dumps(handshake_bundle(spec, base_url, now))
    headers = {**spec.headers, "Content-Type": FHIR_JSON}
    try:
        async with httpx.AsyncClient(timeout=spec.timeout_seconds) as http:
            response = await http.post(spec.endpoint, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return HandshakeResult(False, f"handshake to {spec.endpoint} failed: {type(exc).__name__}: {exc}")
    if response.is_success:
        return HandshakeResult(True)
    return HandshakeResult(False, f"handshake to {spec.endpoint} answered HTTP {response.status_code}")


def after_handshake(resource: dict[str, Any], result: HandshakeResult) -> dict[str, Any]:
    """The Subscription's next version: ``active``, or ``error`` saying why."""
    updated = {key: value for key, value in resource.items() if key != "error"}
    updated["status"] = "active" if result.accepted else "error"
    if result.problem:
        updated["error"] = result.problem
    return updated


async def activate(ops: ResourceOperations, stored: StoredResource, base_url: str, now: datetime) -> StoredResource:
    """Handshake a ``requested`` Subscription and store the outcome; any other one is returned as it is."""
    if stored.resource is None or stored.resource.get("status") != "requested":
        return stored
    spec = read_subscription(stored.resource)
    result = await send_handshake(spec, base_url, now)
    updated, _ = await ops.update(after_handshake(stored.resource, result))
    return updated
