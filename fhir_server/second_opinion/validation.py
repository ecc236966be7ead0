"""Validation of a ``$submit`` Bundle before anything else happens.

Envelope first (a collection whose first entry is the ServiceRequest), then the project's validator on every
entry: base R4 problems answer 400, hosted-profile problems 422 (the request entry is always checked against
the second-opinion-request profile), every problem of every entry at once, each FHIRPath re-anchored to
``Bundle.entry[i].resource...`` so the client sees which entry is wrong.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError, Issue, bad_request, error, unprocessable
from fhir_server.second_opinion.codes import PAS_CLAIM_PROFILE, REQUEST_PROFILE
from fhir_server.services.validation import ResourceValidator, collect_issues, raise_for_issues


def check_envelope(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request("The body of $submit must be a Bundle", "Bundle")
    if bundle.get("type") != "collection":
        raise bad_request("The $submit Bundle must be of type 'collection'", "Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(well_formed(e) for e in entries):
        raise bad_request("Every entry of the $submit Bundle needs a resource with a resourceType (and a fullUrl, "
                          "if any, that is a string)", "Bundle.entry")
    if not entries or entries[0]["resource"].get("resourceType") != "ServiceRequest":
        raise unprocessable([error("business-rule", "The first entry must be the ServiceRequest", "Bundle.entry[0].resource")])
    return entries


def well_formed(entry: Any) -> bool:
    """The shapes the intake relies on before validation: a resource object with a type, a string fullUrl."""
    resource = entry.get("resource") if isinstance(entry, dict) else None
    return isinstance(resource, dict) and isinstance(resource.get("resourceType"), str) \
        and isinstance(entry.get("fullUrl", ""), str)


def _in_entry(issue: Issue, index: int, resource_type: str) -> Issue:
    """Re-anchor an issue's FHIRPaths from ``Type.x`` to ``Bundle.entry[i].resource.x``."""
    prefix = f"Bundle.entry[{index}].resource"
    anchored = tuple(
        prefix + e[len(resource_type) :] if e == resource_type or e.startswith(resource_type + ".") else f"{prefix}.{e}"
        for e in issue.expression
    ) or (prefix,)
    return Issue(issue.severity, issue.code, issue.diagnostics, anchored, issue.details_code)


def validate_entries(
    validator: ResourceValidator | None, entries: list[dict[str, Any]], claim_entry: int | None = None
) -> list[Issue]:
    """Every problem of every entry at once (400 when any breaks the base rules, else 422 when any breaks a
    hosted profile; the request entry is always checked against the second-opinion-request profile, a PAS
    client's Claim at ``claim_entry`` against pas-second-opinion-claim); returns the warnings (e.g. a claimed
    profile this server does not host) for the answer."""
    if validator is None:
        return []
    structure: list[Issue] = []
    profile: list[Issue] = []
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        profiles = (REQUEST_PROFILE,) if index == 0 else (PAS_CLAIM_PROFILE,) if index == claim_entry else ()
        entry_structure, entry_profile = collect_issues(validator, resource, profiles)
        structure += [_in_entry(issue, index, resource["resourceType"]) for issue in entry_structure]
        profile += [_in_entry(issue, index, resource["resourceType"]) for issue in entry_profile]
    return raise_for_issues(structure, profile + submission_rules(entries[0]["resource"]))


def check_structure(validator: ResourceValidator | None, entries: list[dict[str, Any]]) -> None:
    """400 when an entry breaks the base R4 rules, naming every problem of every entry at once (the hosted
    profiles' too), each at ``Bundle.entry[i].resource...``: for code that reads a Bundle's entries before the
    intake validates them (the PAS mapping), so it only ever meets valid FHIR."""
    if validator is None:
        return
    structure = [_in_entry(issue, index, entry["resource"]["resourceType"])
                 for index, entry in enumerate(entries) for issue in validator.validate_structure(entry["resource"])]
    if any(issue.is_error for issue in structure):
        profile = [_in_entry(issue, index, entry["resource"]["resourceType"])
                   for index, entry in enumerate(entries) for issue in validator.validate_profiles(entry["resource"])]
        raise FhirError([*structure, *profile], 400)


def submission_rules(request: dict[str, Any]) -> list[Issue]:
    """What the contract asks of a submitted request beyond its profile (whose status stays open, because the
    workflow later completes the request): it is submitted ``active``."""
    status = request.get("status")
    if isinstance(status, str) and status != "active":
        return [
            error(
                "business-rule",
                f"A second-opinion request is submitted with status 'active', not {status!r}",
                "Bundle.entry[0].resource.status",
            )
        ]
    return []
