"""The per-request context the HTTP layer hands to services.

One :class:`RequestContext` is built per request by ``api/deps.py`` (never global state): the base URL links
are built from, what the client prefers, and — once security lands — the authenticated identity and
organization, so services can apply tenancy without knowing about HTTP. The CLI builds one too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from fhir_server.errors import Issue, operation_outcome

ReturnPreference = Literal["minimal", "representation", "OperationOutcome"]


@dataclass(frozen=True)
class RequestContext:
    """What services need to know about the request, without the request itself."""

    base_url: str  # absolute, no trailing slash: ``http://127.0.0.1:8000/fhir``
    prefer_return: ReturnPreference = "representation"
    strict_handling: bool = False  # ``Prefer: handling=strict``
    identity: str | None = None  # authenticated client, once security lands
    organization: str | None = None  # tenant the identity acts for, once security lands

    def url_of(self, relative: str) -> str:
        """Absolute URL of ``Type/id...`` relative to the FHIR base."""
        return f"{self.base_url}/{relative}"

    def preferred_body(self, resource: dict[str, Any] | None, issues: Sequence[Issue] = ()) -> dict[str, Any] | None:
        """What a write answers under ``Prefer: return=``: the resource, nothing, or an OperationOutcome."""
        if self.prefer_return == "minimal":
            return None
        if self.prefer_return == "OperationOutcome":
            return operation_outcome(issues)
        return resource
