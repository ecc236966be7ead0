"""The topics this server publishes, and the canonical URLs of the R4 Subscriptions Backport it follows.

R4 has no SubscriptionTopic resource: the project's topic is described by
``profiles/Basic-second-opinion-decision.json`` (the Backport's Basic representation) and named here by its
canonical, which a Subscription puts in ``criteria``. It fires on every change of a second-opinion Task (created
or updated by ``$submit``, ``$decide``, REST or a Bundle), so a subscriber learns of a decision, a pend and a
consultation report alike.

A Da Vinci PAS client subscribes to PAS's own topic (:data:`PAS_TOPIC_URL`, "results from pended authorization
requests") instead: the same events, the same filters and scoping, but its notifications lead with the
ClaimResponse (the resource PAS's topic triggers on) and name PAS's topic.
"""

from __future__ import annotations

from typing import Any

from fhir_server.second_opinion.codes import CANON, TASK_PROFILE

TOPIC_URL = f"{CANON}/SubscriptionTopic/second-opinion-decision"
PAS_TOPIC_URL = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
TOPICS = (TOPIC_URL, PAS_TOPIC_URL)
TOPIC_RESOURCE_TYPE = "Task"

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
BACKPORT_SUBSCRIPTION_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription"
FILTER_CRITERIA_EXT = f"{BACKPORT}/StructureDefinition/backport-filter-criteria"
PAYLOAD_CONTENT_EXT = f"{BACKPORT}/StructureDefinition/backport-payload-content"
STATUS_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription-status-r4"
NOTIFICATION_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription-notification-r4"
TIMEOUT_EXT = f"{BACKPORT}/StructureDefinition/backport-timeout"
TOPIC_CANONICAL_CAPABILITY_EXT = f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
STATUS_OPERATION = f"{BACKPORT}/OperationDefinition/backport-subscription-status"

# Kept by the server on each Subscription: the number of events generated for it since it started (the
# Backport's ``events-since-subscription-start``), written in the same transaction as the event itself.
EVENT_COUNT_EXT = f"{CANON}/StructureDefinition/subscription-event-count"

NOTIFICATION_CHANNEL = "subscription-notification"  # OutboxMessage.channel of queued notifications


def is_topic_event(resource: dict[str, Any] | None) -> bool:
    """Whether a stored resource version is an event of the topic: a Task claiming the second-opinion profile."""
    return (
        resource is not None
        and resource.get("resourceType") == TOPIC_RESOURCE_TYPE
        and TASK_PROFILE in resource.get("meta", {}).get("profile", ())
    )
