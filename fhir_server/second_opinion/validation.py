"""Validation of a ``$submit`` Bundle before anything else happens.

Envelope first (a collection whose first entry is the ServiceRequest), then the project's validator on every
entry: base R4 problems answer 400, hosted-profile problems 422 (the request entry is always checked against
the second-opinion-request profile), every problem of every entry at once, each FHIRPath re-anchored to
``Bundle.entry[i].resource...`` so the client sees which entry is wrong.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Protocol

from fhir_server.errors import FhirError, Issue, bad_request, error, unprocessable
from fhir_server.second_opinion.codes import REQUEST_PROFILE


class Validator(Protocol):
    def validate_structure(self, resource: dict[str, Any]) -> list[Issue]: ...

    def validate_profiles(
        self, resource: dict[str, Any], profiles: tuple[str, ...] = (), check_meta_profiles: bool = True
    ) -> list[Issue]: ...


def check_envelope(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request("The body of $submit must be a Bundle", "Bundle")
    if bundle.get("type") != "collection":
        raise bad_request("The $submit Bundle must be of type 'collection'", "Bundle.type")
    entries = bundle.get("entry") or []
    if any(not isinstance(e, dict) or not isinstance(e.get("resource"), dict) for e in entries):
        raise bad_request("Every entry of the $submit Bundle needs a resource", "Bundle.entry")
    if not entries or entries[0]["resource"].get("resourceType") != "ServiceRequest":
        raise unprocessable([error("business-rule", "The first entry must be the ServiceRequest", "Bundle.entry[0].resource")])
    return entries


def _in_entry(issue: Issue, index: int, resource_type: str) -> Issue:
    """Re-anchor an issue's FHIRPaths from ``Type.x`` to ``Bundle.entry[i].resource.x``."""
    prefix = f"Bundle.entry[{index}].resource"
    anchored = tuple(
        prefix + e[len(resource_type) :] if e == resource_type or e.startswith(resource_type + ".") else f"{prefix}.{e}"
        for e in issue.expression
    ) or (prefix,)
    return Issue(issue.severity, issue.code, issue.diagnostics, anchored, issue.details_code)


async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Issue]:
    result = method(*args, **kwargs)
    return list(await result) if inspect.isawaitable(result) else list(result)


async def validate_entries(validator: Validator | None, entries: list[dict[str, Any]]) -> list[Issue]:
    """Base R4 problems of every entry (400), then hosted-profile problems of every entry (422), all at once;
    returns the warnings (e.g. a claimed profile this server does not host) for the answer."""
    if validator is None:
        return []
    warnings: list[Issue] = []
    for stage, status in (("structure", 400), ("profiles", 422)):
        issues: list[Issue] = []
        for index, entry in enumerate(entries):
            resource = entry["resource"]
            if stage == "structure":
                found = await _call(validator.validate_structure, resource)
            else:
                profiles = (REQUEST_PROFILE,) if index == 0 else ()
                found = await _call(validator.validate_profiles, resource, profiles=profiles, check_meta_profiles=True)
            anchored = [_in_entry(i, index, resource["resourceType"]) for i in found]
            issues += [i for i in anchored if i.is_error]
            warnings += [i for i in anchored if i.severity == "warning"]
        if issues:
            raise FhirError(issues, status)
    return warnings
