"""The errors security refuses with (no HTTP imports: the store guard raises them too)."""

from __future__ import annotations

import re

from fhir_server.errors import FhirError, error

_HEADER_SAFE = re.compile(r"^[A-Za-z0-9/*.]+$")


def insufficient_scope(needed: str, diagnostics: str | None = None) -> FhirError:
    """403 with ``WWW-Authenticate: Bearer error="insufficient_scope"`` (naming the scope when it is a plain one)."""
    challenge = 'Bearer error="insufficient_scope"'
    if _HEADER_SAFE.match(needed):
        challenge += f', scope="{needed}"'
    return FhirError(
        [error("forbidden", diagnostics or f"the access token's scopes do not allow this: {needed} is needed")],
        403,
        {"WWW-Authenticate": challenge},
    )


def server_only(resource_type: str) -> FhirError:
    """405: the API does not write this type (AuditEvent)."""
    return FhirError.single(405, "not-supported", f"{resource_type} is written by the server only")
