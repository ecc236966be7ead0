"""HTTP routes of topic-based subscriptions (R4 Subscriptions Backport) and their wiring into the app.

- ``POST [base]/Subscription`` and ``PUT [base]/Subscription/{id}``: the generic create/update, checked first
  (422 for an unknown topic, an unsupported channel, a missing organization...), then the handshake of a
  ``requested`` Subscription after the write commits; the answer is the version the handshake left (``active``
  or ``error``). An update keeps the server's event counter whatever the client sends.
- ``GET [base]/Subscription/{id}/$status``: a searchset Bundle with the subscription-status Parameters.

``register(app)`` mounts the routes (before the generic REST ones, so they win), registers the change observers
(every Task change notifies the subscribers it concerns; every Subscription write, by any path, is checked),
and advertises the topics (the project's and Da Vinci PAS's), the Backport profile and ``$status`` in the
CapabilityStatement.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response, read_resource
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation, add_route, write_response
from fhir_server.second_opinion.references import read_or_none
from fhir_server.services.context import RequestContext
from fhir_server.services.resources import ResourceService, WriteResult, parse_version_tag
from fhir_server.services.validation import check_writable
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource
from fhir_server.subscriptions.criteria import event_count, read_subscription, with_event_count
from fhir_server.subscriptions.handshake import activate
from fhir_server.subscriptions.notifications import notify_subscribers
from fhir_server.subscriptions.status import status_parameters
from fhir_server.subscriptions.topic import (
    BACKPORT_SUBSCRIPTION_PROFILE,
    NOTIFICATION_CHANNEL,
    STATUS_OPERATION,
    TOPIC_CANONICAL_CAPABILITY_EXT,
    TOPIC_URL,
    TOPICS,
)


async def _activated(app: Any, result: WriteResult) -> WriteResult:
    """The write's result after the handshake (a conditional create that found one is left alone)."""
    if result.existing:
        return result
    stored = await activate(app.state.store, result.stored, app.state.settings.public_base(), app.state.clock())
    return replace(result, stored=stored)


def check_subscription(
    service: ResourceService, resource: dict[str, Any], *, creating: bool, ctx: RequestContext
) -> None:
    """The base rules first (400: a ``channel`` that is not an object is not FHIR at all), then the
    Subscription's own (422), so the subscription reader only ever sees structurally valid resources."""
    check_writable(service.validator, resource)
    read_subscription(resource, creating=creating, authorized_organization=ctx.organization)


async def create_subscription(request: Request, ctx: RequestContext = Depends(get_context)) -> Response:
    service: ResourceService = request.app.state.services
    resource = await read_resource(request, service.settings, "Subscription")
    check_subscription(service, resource, creating=True, ctx=ctx)
    result = await service.create(resource, if_none_exist=request.headers.get("if-none-exist"))
    return write_response(ctx, await _activated(request.app, result))


async def update_subscription(
    resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    service: ResourceService = request.app.state.services
    resource = await read_resource(request, service.settings, "Subscription")
    current = await read_or_none(service.store, f"Subscription/{resource_id}")  # None: the update creates it
    if current is not None:
        resource = with_event_count(resource, event_count(current))
    check_subscription(service, resource, creating=current is None, ctx=ctx)
    if_match = parse_version_tag(request.headers.get("if-match"))
    result = await service.update("Subscription", resource_id, resource, if_match=if_match)
    return write_response(ctx, await _activated(request.app, result))


async def delivery_errors(store: ResourceStore, subscription_reference: str) -> tuple[str, ...]:
    """The last error of each notification to this Subscription still waiting to be delivered."""
    prefix = f"{NOTIFICATION_CHANNEL}:{subscription_reference}:"
    messages = await store.outbox_messages(NOTIFICATION_CHANNEL)
    return tuple(
        m.last_error for m in messages if m.id.startswith(prefix) and m.delivered_at is None and m.last_error
    )


async def subscription_status(
    resource_id: str, request: Request, ctx: RequestContext = Depends(get_context)
) -> Response:
    """``GET [base]/Subscription/{id}/$status``: the Backport's status, as a searchset of one Parameters."""
    store: ResourceStore = request.app.state.store
    stored = await store.read("Subscription", resource_id)
    assert stored.resource is not None
    parameters = status_parameters(
        f"{request.app.state.settings.public_base()}/{stored.reference}",
        status=stored.resource.get("status", ""),
        notification_type="query-status",
        events_since_start=event_count(stored.resource),
        errors=await delivery_errors(store, stored.reference),
        topic=stored.resource.get("criteria") if stored.resource.get("criteria") in TOPICS else TOPIC_URL,
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": ctx.url_of(f"{stored.reference}/$status")}],
        "entry": [{"fullUrl": f"urn:uuid:{parameters['id']}", "resource": parameters, "search": {"mode": "match"}}],
    }
    return fhir_response(bundle)


# ------------------------------------------------------------------------------------------------ observers


def task_change_notifier(app: Any):
    """The Task observer: queue notifications of this change for the subscribers it concerns."""

    async def notify(tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        await notify_subscribers(tx, stored, app.state.settings.public_base())

    return notify


async def check_subscription_write(
    tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None
) -> None:
    """The Subscription observer: whatever path wrote it (a Bundle, say), a Subscription must read (else 422)."""
    if stored.resource is not None:
        read_subscription(stored.resource, creating=previous is None or previous.deleted)


def register(app: FastAPI) -> None:
    """Mount the routes, register the change observers, advertise the topic and ``$status``."""
    base_path = app.state.settings.normalized_base_path()
    for path, method, handler in (
        ("/Subscription", "POST", create_subscription),
        ("/Subscription/{resource_id}", "PUT", update_subscription),
    ):
        add_route(app, base_path, path, method, handler, ("Subscriptions",))
    add_operation(
        app,
        "/Subscription/{resource_id}/$status",
        {"GET": subscription_status},
        OperationRegistration(
            name="status",
            definition=STATUS_OPERATION,
            resource_types=("Subscription",),
            instance=True,
            documentation="Status of a topic-based Subscription (R4 Subscriptions Backport): its status and the "
            "events since it started",
        ),
        tags=("Subscriptions",),
    )
    app.state.change_observers.add("Task", task_change_notifier(app))
    app.state.change_observers.add("Subscription", check_subscription_write)
    registry = app.state.registry
    registry.add_supported_profile("Subscription", BACKPORT_SUBSCRIPTION_PROFILE)
    for topic in TOPICS:
        registry.add_resource_extension(
            "Subscription", {"url": TOPIC_CANONICAL_CAPABILITY_EXT, "valueCanonical": topic}
        )
