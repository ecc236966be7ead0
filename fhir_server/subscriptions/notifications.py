"""Every change of a second-opinion Task becomes a notification for each active Subscription it concerns.

Runs as a change observer INSIDE the transaction that writes the Task: for each matching Subscription it builds
the notification Bundle (``history``, led by the subscription-status Parameters, then the Task and its
ClaimResponse) and queues it in the store's outbox with ``tx.enqueue``, and counts the event on the Subscription
in the same transaction. So a decision and the notifications announcing it are stored together or not at all;
the outbox worker delivers them with retries and back-off, across restarts. The message id names the
Subscription and the Task version, so one change is never queued twice for one subscriber.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.search.query import Criterion, SearchQuery, TokenValue
from fhir_server.second_opinion.references import search_every
from fhir_server.storage.base import OutboxMessage, ResourceOperations, StoredResource
from fhir_server.subscriptions.criteria import SubscriptionSpec, read_subscription, with_event_count
from fhir_server.subscriptions.matching import CaseFacts, case_facts, concerns
from fhir_server.subscriptions.status import NotificationEvent, instant, status_parameters
from fhir_server.subscriptions.topic import (
    NOTIFICATION_CHANNEL,
    NOTIFICATION_PROFILE,
    PAS_TOPIC_URL,
    TOPICS,
    is_topic_event,
)

log = logging.getLogger(__name__)


def _entry(base_url: str, resource: dict[str, Any], content: str, method: str, status: str) -> dict[str, Any]:
    """A history entry: the resource itself for ``full-resource``, its URL alone for ``id-only``."""
    reference = f"{resource['resourceType']}/{resource['id']}"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{reference}"}
    if content == "full-resource":
        entry["resource"] = resource
    entry["request"] = {"method": method, "url": resource["resourceType"] if method == "POST" else reference}
    entry["response"] = {"status": status}
    return entry


def notification_bundle(
    spec: SubscriptionSpec,
    base_url: str,
    *,
    notification_type: str,
    status: str,
    events_since_start: int,
    timestamp: datetime,
    event: NotificationEvent | None = None,
    entries: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A Backport notification Bundle (R4): the status Parameters first, then ``entries``."""
    subscription_url = f"{base_url}/{spec.reference}"
    parameters = status_parameters(
        subscription_url,
        status=status,
        notification_type=notification_type,
        events_since_start=events_since_start,
        events=(event,) if event else (),
        with_topic=spec.content != "empty",
        topic=spec.topic,
    )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": instant(timestamp),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{parameters['id']}",
                "resource": parameters,
                "request": {"method": "GET", "url": f"{subscription_url}/$status"},
                "response": {"status": "200"},
            },
            *entries,
        ],
    }


def event_notification(spec: SubscriptionSpec, base_url: str, stored_task: StoredResource, case: CaseFacts,
                       number: int) -> dict[str, Any]:
    """The notification of one Task change: the Task (focus) and its ClaimResponse (additional context); for
    the PAS topic, which triggers on ClaimResponses, the ClaimResponse is the focus and the Task the context."""
    content = spec.content
    created = stored_task.version_id == 1
    task_entry = _entry(base_url, case.task, content, "POST" if created else "PUT", "201" if created else "200")
    response_entries = [_entry(base_url, case.claim_response, content, "GET", "200")] if case.claim_response else []
    ordered = [*response_entries, task_entry] if spec.topic == PAS_TOPIC_URL else [task_entry, *response_entries]
    entries = [] if content == "empty" else ordered
    event = NotificationEvent(
        number=number,
        timestamp=stored_task.last_updated,
        focus=entries[0]["fullUrl"] if entries else None,
        additional_context=tuple(e["fullUrl"] for e in entries[1:]),
    )
    return notification_bundle(spec, base_url, notification_type="event-notification", status="active",
                               events_since_start=number, timestamp=stored_task.last_updated, event=event,
                               entries=tuple(entries))


def outbox_message(spec: SubscriptionSpec, message_id: str, payload: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(id=message_id, channel=NOTIFICATION_CHANNEL, destination=spec.endpoint, payload=payload,
                         headers=dict(spec.headers))


async def active_subscriptions(ops: ResourceOperations) -> list[tuple[dict[str, Any], SubscriptionSpec]]:
    """Every active Subscription to the topic, checked (one that no longer reads is skipped, and logged)."""
    query = SearchQuery(resource_type="Subscription", criteria=[Criterion("status", "token", (TokenValue(None, "active"),))])
    found: list[tuple[dict[str, Any], SubscriptionSpec]] = []
    for resource in await search_every(ops, query):
        if resource.get("criteria") not in TOPICS:
            continue
        try:
            found.append((resource, read_subscription(resource)))
        except FhirError as problem:
            log.warning("Subscription/%s is skipped: %s", resource.get("id"), problem)
    return found


async def notify_subscribers(tx: ResourceOperations, stored: StoredResource, base_url: str) -> int:
    """Queue a notification of this Task version for every active Subscription it concerns; how many were queued.

    Call inside the transaction that wrote ``stored``: the counter update and the queued message commit with it."""
    if not is_topic_event(stored.resource):
        return 0
    assert stored.resource is not None
    subscriptions = await active_subscriptions(tx)
    if not subscriptions:
        return 0
    case = await case_facts(tx, stored.resource)
    queued = 0
    for resource, spec in subscriptions:
        if not concerns(spec.filters, spec.organization, case):
            continue
        number = spec.event_count + 1
        message_id = f"{NOTIFICATION_CHANNEL}:{spec.reference}:{stored.reference}/_history/{stored.version_id}"
        payload = event_notification(spec, base_url, stored, case, number)
        if await tx.enqueue(outbox_message(spec, message_id, payload)):
            await tx.update(with_event_count(resource, number))
            queued += 1
    return queued
