"""Searchset and history Bundles: paging links, entries, and the outcome entry for ignored parameters.

Shared by REST (``GET [base]/Type?...``, ``_history``) and by GET entries of batches and transactions. Links
are absolute, built from the request's base URL so clients can follow them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import bad_request, operation_outcome, warning
from fhir_server.services.context import RequestContext
from fhir_server.storage.base import Page, StoredResource
from fhir_server.storage.versioning import format_timestamp

# history entry response per stored method
HISTORY_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}
PAGING_PARAMETERS = frozenset({"_offset"})
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS_KEPT_ELEMENTS = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts and how long it is, plus the query parameters that produced it."""

    path: str  # relative to the base: ``Patient``, ``Patient/1/_history``, ``_history``; '' for the base
    params: list[tuple[str, str]]  # without ``_offset``
    count: int
    offset: int

    def url(self, ctx: RequestContext, offset: int) -> str:
        params = list(self.params) + ([("_offset", str(offset))] if offset else [])
        query = urlencode(params)
        location = ctx.url_of(self.path) if self.path else ctx.base_url
        return location + (f"?{query}" if query else "")

    def links(self, ctx: RequestContext, has_more: bool) -> list[dict[str, str]]:
        """self, and next/previous where there are such pages."""
        links = [{"relation": "self", "url": self.url(ctx, self.offset)}]
        if has_more and self.count > 0:
            links.append({"relation": "next", "url": self.url(ctx, self.offset + self.count)})
        if self.offset > 0:
            links.append({"relation": "previous", "url": self.url(ctx, max(0, self.offset - self.count))})
        return links


def page_params(params: list[tuple[str, str]], dropped: set[str] = frozenset()) -> list[tuple[str, str]]:
    """The parameters to repeat in paging links: all but ``_offset`` and those in ``dropped`` (by name)."""
    return [
        (name, value)
        for name, value in params
        if name not in PAGING_PARAMETERS and name not in dropped and name.split(":", 1)[0] not in dropped
    ]


def parse_int_param(
    params: list[tuple[str, str]], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer query parameter (last one wins); 400 when it is not a whole number within [``minimum``,
    ``maximum``] (a number past the stores' 64-bit integers would fail in the store, not here)."""
    values = [value for key, value in params if key == name]
    if not values:
        return default
    raw = values[-1].strip()
    if len(raw) > 30:  # longer than any 64-bit number; int() of thousands of digits is slow, then refused
        raise bad_request(f"{name} must be a whole number of at most 30 digits", name)
    try:
        number = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be a whole number, not {raw!r}", name) from None
    if number < minimum:
        raise bad_request(f"{name} must be at least {minimum}", name)
    if maximum is not None and number > maximum:
        raise bad_request(f"{name} must be at most {maximum}", name)
    return number


def parse_instant_param(params: list[tuple[str, str]], name: str) -> datetime | None:
    """An instant/date query parameter such as ``_since`` (UTC when no zone is given); 400 when unreadable."""
    values = [value for key, value in params if key == name]
    if not values:
        return None
    try:
        moment = datetime.fromisoformat(values[-1])
    except ValueError:
        raise bad_request(f"{name} must be a FHIR instant such as 2024-01-31T12:00:00Z, not {values[-1]!r}", name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def subset_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """``_elements``: keep the named top-level elements (and the mandatory ones), tagged SUBSETTED."""
    wanted = set(elements) | set(ALWAYS_KEPT_ELEMENTS)
    subset = {key: value for key, value in resource.items() if key in wanted}
    meta = dict(subset.get("meta") or {})
    meta["tag"] = list(meta.get("tag") or []) + [SUBSETTED]
    subset["meta"] = meta
    return subset


def search_entry(ctx: RequestContext, stored: StoredResource, mode: str, elements: list[str]) -> dict[str, Any]:
    resource = stored.resource or {}
    return {
        "fullUrl": ctx.url_of(stored.reference),
        "resource": subset_elements(resource, elements) if elements else resource,
        "search": {"mode": mode},
    }


def searchset_bundle(
    ctx: RequestContext,
    page: Page,
    included: list[StoredResource],
    page_request: PageRequest,
    *,
    ignored: list[str] = (),
    elements: list[str] = (),
    summary_count: bool = False,
) -> dict[str, Any]:
    """A ``searchset`` Bundle: matches, then includes, then an outcome naming ignored parameters."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = page_request.links(ctx, page.has_more and not summary_count)
    entries: list[dict[str, Any]] = []
    if not summary_count:
        entries.extend(search_entry(ctx, stored, "match", list(elements)) for stored in page.items)
        entries.extend(search_entry(ctx, stored, "include", []) for stored in included)
    if ignored:
        outcome = operation_outcome(
            warning("not-supported", f"unknown search parameter {name!r} was ignored", name) for name in ignored
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def history_entry(ctx: RequestContext, stored: StoredResource) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": ctx.url_of(stored.reference)}
    if stored.resource is not None:
        entry["resource"] = stored.resource
    entry["request"] = {
        "method": stored.method,
        "url": stored.resource_type if stored.method == "POST" else stored.reference,
    }
    entry["response"] = {
        "status": HISTORY_STATUS.get(stored.method, "200 OK"),
        "etag": stored.etag,
        "lastModified": format_timestamp(stored.last_updated),
    }
    return entry


def history_bundle(ctx: RequestContext, page: Page, page_request: PageRequest) -> dict[str, Any]:
    """A ``history`` Bundle, newest version first, with paging links."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = page_request.links(ctx, page.has_more)
    if page.items:
        bundle["entry"] = [history_entry(ctx, stored) for stored in page.items]
    return bundle
