"""The Backport's subscription-status Parameters (``backport-subscription-status-r4``), built in one place.

It leads every notification Bundle (handshake, event-notification) and is what ``$status`` answers
(query-status), so all three speak of a Subscription the same way: its reference, the topic, its status and
``events-since-subscription-start``, plus one ``notification-event`` per event a notification carries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.subscriptions.topic import STATUS_PROFILE, TOPIC_URL


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NotificationEvent:
    number: int
    timestamp: datetime
    focus: str | None = None  # absolute URL of the changed resource (absent for ``empty`` payloads)
    additional_context: tuple[str, ...] = ()  # absolute URLs of the resources sent with it


def _event_parameter(event: NotificationEvent) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event.number)},
        {"name": "timestamp", "valueInstant": instant(event.timestamp)},
    ]
    if event.focus:
        parts.append({"name": "focus", "valueReference": {"reference": event.focus}})
    parts.extend(
        {"name": "additional-context", "valueReference": {"reference": url}} for url in event.additional_context
    )
    return {"name": "notification-event", "part": parts}


def status_parameters(
    subscription_url: str,
    *,
    status: str,
    notification_type: str,
    events_since_start: int,
    events: tuple[NotificationEvent, ...] = (),
    errors: tuple[str, ...] = (),
    with_topic: bool = True,
    topic: str = TOPIC_URL,
) -> dict[str, Any]:
    """The status Parameters; ``errors`` are the delivery problems not yet overcome (``$status`` reports them);
    ``with_topic`` False for ``empty`` payloads (the Backport: SHOULD NOT carry it)."""
    parameters: list[dict[str, Any]] = [{"name": "subscription", "valueReference": {"reference": subscription_url}}]
    if with_topic:
        parameters.append({"name": "topic", "valueCanonical": topic})
    parameters += [
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": notification_type},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
        *(_event_parameter(event) for event in events),
        *({"name": "error", "valueCodeableConcept": {"text": text}} for text in errors),
    ]
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }
