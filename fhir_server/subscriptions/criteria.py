"""A Subscription as this server reads it: the topic, the filters, the channel, and whose cases it may see.

Every problem of a Subscription is reported at once (422, with the FHIRPath of each), so a client fixes its
request in one go. What is accepted (R4 Subscriptions Backport, ``backport-subscription`` profile):

- ``criteria`` is a topic canonical (:data:`topic.TOPICS`: the project's, or Da Vinci PAS's); anything else is
  an unknown topic;
- filters in ``Subscription._criteria.extension`` (``backport-filter-criteria``), ``Task?name=value``, with the
  names the topic allows (:data:`matching.FILTERS`), no modifiers;
- ``channel.type`` ``rest-hook`` to an absolute http(s) ``channel.endpoint``, ``channel.header`` lines
  ``Name: value`` (sent with every notification, e.g. an Authorization the receiver expects);
- ``channel.payload`` ``application/fhir+json`` with ``backport-payload-content`` ``full-resource``, ``id-only``
  or ``empty``.

Whose cases: until requests carry an authenticated identity, a Subscription names its own organization in a
filter, ``organization=Organization/{id}`` (or ``owner=Organization/{id}``); it then receives only cases of that
organization (see :mod:`matching`). When authorization lands, the signed-in organization is passed as
``authorized_organization`` and a Subscription naming another one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_server.errors import Issue, error, unprocessable
from fhir_server.subscriptions.matching import FILTERS, SCOPE_FILTERS, FilterCriterion, normalise
from fhir_server.subscriptions.topic import (
    EVENT_COUNT_EXT,
    FILTER_CRITERIA_EXT,
    PAYLOAD_CONTENT_EXT,
    TIMEOUT_EXT,
    TOPIC_RESOURCE_TYPE,
    TOPICS,
)

SUPPORTED_CHANNEL_TYPES = frozenset({"rest-hook"})
SUPPORTED_PAYLOAD_TYPES = frozenset({"application/fhir+json", "application/json"})
PAYLOAD_CONTENTS = frozenset({"full-resource", "id-only", "empty"})
CREATION_STATUSES = frozenset({"requested", "off"})  # the server activates a Subscription after its handshake
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SubscriptionSpec:
    """A checked Subscription, ready for matching and delivery."""

    id: str | None
    status: str
    endpoint: str
    content: str  # full-resource | id-only | empty
    headers: dict[str, str]
    filters: tuple[FilterCriterion, ...]
    organization: str  # "Organization/id": the only organization whose cases it receives
    timeout_seconds: float
    event_count: int  # events generated for it so far
    topic: str = TOPICS[0]  # the topic canonical it subscribes to

    @property
    def reference(self) -> str:
        return f"Subscription/{self.id}"


def extension_value(element: dict[str, Any] | None, url: str, key: str) -> Any:
    return next((e.get(key) for e in (element or {}).get("extension", ()) if e.get("url") == url), None)


def event_count(resource: dict[str, Any]) -> int:
    return int(extension_value(resource, EVENT_COUNT_EXT, "valueUnsignedInt") or 0)


def with_event_count(resource: dict[str, Any], count: int) -> dict[str, Any]:
    """A copy of the Subscription whose event counter says ``count``."""
    others = [e for e in resource.get("extension", ()) if e.get("url") != EVENT_COUNT_EXT]
    return {**resource, "extension": [*others, {"url": EVENT_COUNT_EXT, "valueUnsignedInt": count}]}


class _Reader:
    """Collects the issues of one Subscription while reading its parts."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def fail(self, code: str, message: str, expression: str) -> None:
        self.issues.append(error(code, message, expression))

    def filters(self, resource: dict[str, Any]) -> list[FilterCriterion]:
        texts = [e.get("valueString") for e in resource.get("_criteria", {}).get("extension", ())
                 if e.get("url") == FILTER_CRITERIA_EXT]
        criteria: list[FilterCriterion] = []
        for index, text in enumerate(texts):
            expression = f"Subscription.criteria.extension('{FILTER_CRITERIA_EXT}')[{index}].value"
            criteria.extend(self._filter(text, expression))
        return criteria

    def _filter(self, text: Any, expression: str) -> list[FilterCriterion]:
        resource_type, mark, query = str(text or "").partition("?")
        if not mark or resource_type != TOPIC_RESOURCE_TYPE or not query:
            self.fail("value", f"filter {text!r} is not {TOPIC_RESOURCE_TYPE}?name=value", expression)
            return []
        criteria = []
        for name, raw in parse_qsl(query, keep_blank_values=True):
            definition = FILTERS.get(name)
            if definition is None:
                allowed = ", ".join(sorted(FILTERS))
                self.fail("not-supported", f"the topic cannot filter by {name!r} (it can by: {allowed})", expression)
            elif not raw:
                self.fail("required", f"filter {name!r} has no value", expression)
            else:
                values = frozenset(normalise(definition.kind, v) for v in raw.split(",") if v)
                criteria.append(FilterCriterion(name, values))
        return criteria

    def organization(self, filters: list[FilterCriterion], authorized: str | None) -> str:
        named = {v for f in filters if f.name in SCOPE_FILTERS for v in f.values if v.startswith("Organization/")}
        expression = "Subscription.criteria.extension"
        if authorized is not None and named - {authorized}:
            self.fail("forbidden", f"a subscriber of {authorized} may only subscribe to its own cases", expression)
        if authorized is not None:
            return authorized
        if len(named) != 1:
            self.fail(
                "required" if not named else "value",
                "a Subscription names exactly one organization, its own, in a filter "
                "(Task?organization=Organization/{id} or Task?owner=Organization/{id}); it receives only that "
                f"organization's cases (named: {sorted(named) or 'none'})",
                expression,
            )
            return ""
        return next(iter(named))

    def channel(self, channel: dict[str, Any]) -> tuple[str, str, dict[str, str], float]:
        if channel.get("type") not in SUPPORTED_CHANNEL_TYPES:
            self.fail("not-supported", f"channel type {channel.get('type')!r} is not supported (rest-hook is)",
                      "Subscription.channel.type")
        endpoint = channel.get("endpoint") or ""
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.fail("value", f"channel.endpoint {endpoint!r} is not an absolute http(s) URL",
                      "Subscription.channel.endpoint")
        if channel.get("payload") not in SUPPORTED_PAYLOAD_TYPES:
            self.fail("not-supported", f"channel.payload {channel.get('payload')!r} is not supported "
                      "(application/fhir+json is)", "Subscription.channel.payload")
        content = extension_value(channel.get("_payload"), PAYLOAD_CONTENT_EXT, "valueCode")
        if content not in PAYLOAD_CONTENTS:
            self.fail("required" if content is None else "code-invalid",
                      f"channel.payload needs the backport-payload-content extension with one of "
                      f"{sorted(PAYLOAD_CONTENTS)} (got {content!r})", "Subscription.channel.payload.extension")
        headers: dict[str, str] = {}
        for index, line in enumerate(channel.get("header", ())):
            name, colon, value = str(line).partition(":")
            if not colon or not name.strip():
                self.fail("value", f"channel.header {line!r} is not 'Name: value'",
                          f"Subscription.channel.header[{index}]")
            else:
                headers[name.strip()] = value.strip()
        timeout = extension_value(channel, TIMEOUT_EXT, "valueUnsignedInt")
        return endpoint, str(content), headers, float(timeout or DEFAULT_TIMEOUT_SECONDS)


def read_subscription(
    resource: dict[str, Any], *, creating: bool = False, authorized_organization: str | None = None
) -> SubscriptionSpec:
    """The checked Subscription; raises 422 naming every problem. ``creating``: also check the first status."""
    reader = _Reader()
    if resource.get("criteria") not in TOPICS:
        reader.fail("not-supported", f"unknown topic {resource.get('criteria')!r}: this server publishes "
                    f"{' and '.join(TOPICS)}", "Subscription.criteria")
    if creating and resource.get("status") not in CREATION_STATUSES:
        reader.fail("value", f"a new Subscription is 'requested' (the server activates it after a handshake), "
                    f"not {resource.get('status')!r}", "Subscription.status")
    filters = reader.filters(resource)
    organization = reader.organization(filters, authorized_organization)
    endpoint, content, headers, timeout = reader.channel(resource.get("channel") or {})
    if reader.issues:
        raise unprocessable(reader.issues)
    return SubscriptionSpec(
        id=resource.get("id"),
        status=resource.get("status", ""),
        endpoint=endpoint,
        content=content,
        headers=headers,
        filters=tuple(filters),
        organization=organization,
        timeout_seconds=timeout,
        event_count=event_count(resource),
        topic=resource.get("criteria") or TOPICS[0],
    )
