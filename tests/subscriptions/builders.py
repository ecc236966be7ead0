"""Subscriptions as an EHR writes them (R4 Subscriptions Backport), with the changes a test wants."""

from __future__ import annotations

from typing import Any

from fhir_server.subscriptions.topic import (
    BACKPORT_SUBSCRIPTION_PROFILE,
    FILTER_CRITERIA_EXT,
    PAYLOAD_CONTENT_EXT,
    TOPIC_URL,
)


def subscription(
    endpoint: str,
    *filters: str,
    organization: str | None = "Organization/ppg-valley",
    content: str = "full-resource",
    headers: tuple[str, ...] = ("Authorization: Bearer secret-token",),
    status: str = "requested",
    channel_type: str = "rest-hook",
    topic: str = TOPIC_URL,
) -> dict[str, Any]:
    every_filter = ([f"Task?organization={organization}"] if organization else []) + list(filters)
    filter_extensions = [{"url": FILTER_CRITERIA_EXT, "valueString": f} for f in every_filter]
    return {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT_SUBSCRIPTION_PROFILE]},
        "status": status,
        "reason": "Second-opinion decisions for our EHR",
        "criteria": topic,
        **({"_criteria": {"extension": filter_extensions}} if filter_extensions else {}),
        "channel": {
            "type": channel_type,
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT_EXT, "valueCode": content}]},
            "header": list(headers),
        },
    }
