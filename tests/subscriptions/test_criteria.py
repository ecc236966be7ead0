"""Reading a Subscription: what is accepted, and every problem reported at once with its FHIRPath."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.subscriptions.criteria import read_subscription, with_event_count
from fhir_server.subscriptions.matching import FilterCriterion

from tests.subscriptions.builders import subscription

ENDPOINT = "http://127.0.0.1:9/notify"


def problems(resource, **options) -> dict[str, str]:
    """FHIRPath -> diagnostics of the 422 the Subscription earns."""
    with pytest.raises(FhirError) as raised:
        read_subscription(resource, **options)
    assert raised.value.status == 422
    return {issue.expression[0]: issue.diagnostics for issue in raised.value.issues}


def test_a_backport_subscription_reads_with_its_organization_filters_and_headers():
    spec = read_subscription(subscription(ENDPOINT, "Task?status=completed,on-hold&owner=Organization/ppg-valley"))
    assert spec.organization == "Organization/ppg-valley"
    assert spec.endpoint == ENDPOINT and spec.content == "full-resource"
    assert spec.headers == {"Authorization": "Bearer secret-token"}
    assert set(spec.filters) == {
        FilterCriterion("organization", frozenset({"Organization/ppg-valley"})),
        FilterCriterion("status", frozenset({"completed", "on-hold"})),
        FilterCriterion("owner", frozenset({"Organization/ppg-valley"})),
    }
    assert spec.event_count == 0


def test_the_owner_filter_names_the_organization_too():
    resource = subscription(ENDPOINT, "Task?owner=http://example.org/fhir/Organization/ppg-coastal", organization=None)
    assert read_subscription(resource).organization == "Organization/ppg-coastal"


def test_unknown_topic_unsupported_channel_and_payload_are_all_reported():
    resource = subscription("ftp://example.org/x", topic="http://example.org/SubscriptionTopic/other",
                            channel_type="websocket", content="everything")
    found = problems(resource)
    assert "unknown topic" in found["Subscription.criteria"]
    assert "websocket" in found["Subscription.channel.type"]
    assert "absolute http(s) URL" in found["Subscription.channel.endpoint"]
    assert "everything" in found["Subscription.channel.payload.extension"]


def test_a_subscription_must_name_exactly_one_organization():
    assert "names exactly one organization" in problems(subscription(ENDPOINT, organization=None))[
        "Subscription.criteria.extension"]
    two = subscription(ENDPOINT, "Task?owner=Organization/ppg-coastal")
    assert "ppg-coastal" in problems(two)["Subscription.criteria.extension"]


def test_filters_the_topic_does_not_offer_are_refused():
    found = problems(subscription(ENDPOINT, "Task?code=approve", "Patient?name=x", "Task?owner:missing=true"))
    messages = " ".join(found.values())
    assert "cannot filter by 'code'" in messages
    assert "'Patient?name=x' is not Task?name=value" in messages
    assert "'owner:missing'" in messages


def test_a_new_subscription_is_requested_not_active():
    assert "'requested'" in problems(subscription(ENDPOINT, status="active"), creating=True)["Subscription.status"]
    assert read_subscription(subscription(ENDPOINT, status="active")).status == "active"


def test_an_authorized_organization_is_the_scope_and_another_one_is_forbidden():
    resource = subscription(ENDPOINT, organization=None)
    assert read_subscription(resource, authorized_organization="Organization/ppg-coastal").organization == (
        "Organization/ppg-coastal")
    other = subscription(ENDPOINT, organization="Organization/ppg-valley")
    assert "may only subscribe to its own" in problems(other, authorized_organization="Organization/ppg-coastal")[
        "Subscription.criteria.extension"]


def test_the_event_counter_is_kept_in_one_extension():
    resource = with_event_count(with_event_count(subscription(ENDPOINT), 3), 4)
    assert read_subscription(resource).event_count == 4
    assert len(resource["extension"]) == 1
