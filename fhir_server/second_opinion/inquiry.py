"""``Claim/$inquire`` (Da Vinci PAS 2.x): the current authorization of the cases an inquiry Bundle names.

The inquiry is a query by example: a ``collection`` Bundle with one Claim (``use`` preauthorization) naming
the patient, the insurer, the provider asking, and the request by the Claim's ``identifier`` or its items'
``itemTraceNumber``, with the resources it references. Its references are resolved as ``$submit`` resolves
them (:func:`references.plan_writes`: an entry whose business identifier matches a stored resource stands for
it), but nothing is written. A case matches when its Claim is the same patient's and shares an identifier or a
trace number with the inquiry; its ClaimResponse comes back as it is now, pended ones included.

Whose cases: only those the provider the inquiry names (``Claim.provider``) requested (:func:`scope_of`), among the
Claims the asking client may see at all: with authorization on, the store's tenant guard shows an organization only
its own cases, so an inquiry cannot reach another organization's, whatever provider it names.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.errors import error, unprocessable
from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery
from fhir_server.second_opinion.codes import AUTHORIZATION_PROFILE, PAS_INQUIRY_RESPONSE_BUNDLE_PROFILE
from fhir_server.second_opinion.pas import case_entries, check_collection, claim_index, collection, trace_numbers
from fhir_server.second_opinion.references import plan_writes, read_or_none, search_every
from fhir_server.services.validation import ResourceValidator
from fhir_server.storage.base import ResourceOperations

OPERATION = "Claim/$inquire"


def _identifiers(values: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(v.get("system", ""), v["value"]) for v in values if isinstance(v, dict) and v.get("value")}


def _trace_identifiers(claim: dict[str, Any]) -> set[tuple[str, str]]:
    return _identifiers([e.get("valueIdentifier") for e in trace_numbers(claim)])


def _reference(resource: dict[str, Any], element: str) -> str | None:
    return (resource.get(element) or {}).get("reference")


def scope_of(inquiry: dict[str, Any]) -> frozenset[str]:
    """The requesting parties whose cases the inquiry asks about: the provider it names."""
    provider = _reference(inquiry, "provider")
    return frozenset({provider}) if provider else frozenset()


def matches(claim: dict[str, Any], inquiry: dict[str, Any], scope: frozenset[str]) -> bool:
    """Same patient, asked by a party in scope, and the same Claim identifier or item trace number."""
    return (
        _reference(claim, "patient") == _reference(inquiry, "patient")
        and _reference(claim, "provider") in scope
        and bool(_identifiers(claim.get("identifier", [])) & _identifiers(inquiry.get("identifier", []))
                 or _trace_identifiers(claim) & _trace_identifiers(inquiry))
    )


async def _claim_responses(ops: ResourceOperations, claim_id: str) -> list[dict[str, Any]]:
    """The second-opinion authorizations answering a Claim (current versions)."""
    query = SearchQuery("ClaimResponse", [Criterion("request", "reference", (ReferenceValue("Claim", claim_id),))])
    return [r for r in await search_every(ops, query)
            if AUTHORIZATION_PROFILE in (r.get("meta") or {}).get("profile", ())]


async def inquire(
    bundle: Any,
    *,
    store: ResourceOperations,
    validator: ResourceValidator | None,
    base_url: str,
    timestamp: str,
) -> dict[str, Any]:
    """The PAS inquiry response Bundle: each matching case's ClaimResponse and what it references (an
    informational OperationOutcome when none matches); 400/422 for an inquiry that cannot be read."""
    entries = check_collection(bundle, OPERATION, validator)
    claim_at = claim_index(entries, OPERATION)
    inquiry = (await plan_writes(store, entries)).entries[claim_at].resource
    expression = f"Bundle.entry[{claim_at}].resource"
    issues = []
    if not _identifiers(inquiry.get("identifier", [])) and not _trace_identifiers(inquiry):
        issues.append(error("required", "An inquiry names the Claim by its identifier or by its items' "
                            "itemTraceNumber", f"{expression}.identifier"))
    scope = scope_of(inquiry)
    if not scope:
        issues.append(error("required", "An inquiry names the provider asking (Claim.provider)",
                            f"{expression}.provider"))
    patient = _reference(inquiry, "patient") or ""
    if issues:
        raise unprocessable(issues)

    resource_type, _, patient_id = patient.partition("/")
    query = SearchQuery("Claim", [Criterion("patient", "reference", (ReferenceValue(resource_type, patient_id),))])
    found: list[dict[str, Any]] = []
    for claim in await search_every(store, query):
        if matches(claim, inquiry, scope):
            for claim_response in await _claim_responses(store, claim["id"]):
                found += await case_entries(claim_response, lambda reference: read_or_none(store, reference))
    if not any(r["resourceType"] == "ClaimResponse" for r in found):
        found.append({"resourceType": "OperationOutcome", "id": str(uuid.uuid4()), "issue": [
            {"severity": "information", "code": "not-found",
             "diagnostics": "No second-opinion authorization of this provider matches the inquiry"}]})
    return collection(base_url, found, PAS_INQUIRY_RESPONSE_BUNDLE_PROFILE, timestamp)
