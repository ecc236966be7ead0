"""Da Vinci PAS 2.x request and inquiry Bundles built from the project's sample submissions.

A PAS client sends the same clinical content as ``ServiceRequest/$submit`` does, wrapped the PAS way: the
Claim first (``use`` preauthorization, its item coded as PAS codes a consultation, naming the second-opinion
ServiceRequest through ``extension-requestedService``, traced by ``extension-itemTraceNumber``), then the
resources it references.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from fhir_server.second_opinion.codes import ITEM_TRACE_NUMBER_EXT, PAS, REQUESTED_SERVICE_EXT

PAS_CLAIM_PROFILE = f"{PAS}/profile-claim"
PAS_INQUIRY_PROFILE = f"{PAS}/profile-claim-inquiry"
PAS_REQUEST_BUNDLE_PROFILE = f"{PAS}/profile-pas-request-bundle"
PAS_INQUIRY_BUNDLE_PROFILE = f"{PAS}/profile-pas-inquiry-request-bundle"
CLAIM_ID_SYSTEM = "urn:oid:2.16.840.1.113883.3.1000.9"  # the EHR's prior-authorization request numbers
TRACE_SYSTEM = "urn:oid:2.16.840.1.113883.3.1000.10"  # the EHR's item trace numbers
X12_SERVICE_TYPE = "https://codesystem.x12.org/005010/1365"
CPT = "http://www.ama-assn.org/go/cpt"
NAMESPACE = uuid.UUID("5b0e3d0c-6f4e-4a43-9a52-8f2b9a1c7e01")


def _by_full_url(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e.get("fullUrl") == reference)


def trace_number(value: str) -> dict[str, Any]:
    return {"url": ITEM_TRACE_NUMBER_EXT, "valueIdentifier": {"system": TRACE_SYSTEM, "value": value}}


def pas_claim(native: dict[str, Any], *, number: str, trace: str, provider: str | None = None,
              profile: str = PAS_CLAIM_PROFILE) -> dict[str, Any]:
    """The PAS Claim of a native submission (its first entry the ServiceRequest)."""
    request_entry = native["entry"][0]
    service_request = request_entry["resource"]
    coverage_ref = service_request["insurance"][0]["reference"]
    coverage = _by_full_url(native, coverage_ref) if coverage_ref.startswith("urn:") else {}
    requester = service_request["requester"]["reference"]
    return {
        "resourceType": "Claim",
        "meta": {"profile": [profile]},
        "identifier": [{"system": CLAIM_ID_SYSTEM, "value": number}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "preauthorization",
        "patient": {"reference": service_request["subject"]["reference"]},
        "created": service_request["authoredOn"],
        "insurer": coverage.get("payor", [{"reference": "Organization/org-health-net"}])[0],
        "provider": {"reference": provider or requester},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage_ref}}],
        "item": [
            {
                "extension": [
                    trace_number(trace),
                    {"url": REQUESTED_SERVICE_EXT, "valueReference": {"reference": request_entry["fullUrl"]}},
                ],
                "sequence": 1,
                "category": {"coding": [{"system": X12_SERVICE_TYPE, "code": "3", "display": "Consultation"}]},
                "productOrService": {"coding": [{"system": CPT, "code": "99243"}]},
                "quantity": {"value": 1},
            }
        ],
    }


def pas_request(native: dict[str, Any], *, number: str = "PA-1001", trace: str = "TRN-1001-1",
                provider: str | None = None) -> dict[str, Any]:
    """A PAS request Bundle: the Claim first, then every entry of the native submission."""
    native = copy.deepcopy(native)
    claim = pas_claim(native, number=number, trace=trace, provider=provider)
    return _claim_bundle(PAS_REQUEST_BUNDLE_PROFILE, f"{number}-submission", number, claim, native["entry"])


def pas_inquiry(native: dict[str, Any], *, number: str | None = "PA-1001", trace: str | None = None,
                provider: str | None = None) -> dict[str, Any]:
    """A PAS inquiry Bundle asking about the request ``number`` (or the item ``trace``) of the same member:
    the inquiry Claim, then the Patient and Coverage as the EHR holds them."""
    native = copy.deepcopy(native)
    claim = pas_claim(native, number=number or "unknown", trace=trace or "unknown", provider=provider,
                      profile=PAS_INQUIRY_PROFILE)
    if number is None:
        del claim["identifier"]
    item = claim["item"][0]
    item["extension"] = [trace_number(trace)] if trace else []
    if not item["extension"]:
        del item["extension"]
    references = {claim["patient"]["reference"], claim["insurance"][0]["coverage"]["reference"]}
    return _claim_bundle(PAS_INQUIRY_BUNDLE_PROFILE, f"inquiry-{number or trace}", f"inquiry-{number}-{trace}", claim,
                         [entry for entry in native["entry"] if entry.get("fullUrl") in references])


def _claim_bundle(profile: str, identifier: str, seed: str, claim: dict[str, Any],
                  entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A PAS collection Bundle: the Claim first (its fullUrl a UUID derived from ``seed``), then ``entries``."""
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [profile]},
        "identifier": {"system": CLAIM_ID_SYSTEM, "value": identifier},
        "type": "collection",
        "timestamp": claim["created"],
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(NAMESPACE, seed)}", "resource": claim}, *entries],
    }
