"""Canonical URLs and code systems of the second-opinion domain, named once.

Every builder and reader of the domain's resources takes its URLs from here, so a canonical changes in one
place. ``CANON`` is the contract's ``{canon}``.
"""

from __future__ import annotations

from typing import Any, Iterable

CANON = "http://example.org/fhir/second-opinion"

REQUEST_PROFILE = f"{CANON}/StructureDefinition/second-opinion-request"
TASK_PROFILE = f"{CANON}/StructureDefinition/second-opinion-task"
AUTHORIZATION_PROFILE = f"{CANON}/StructureDefinition/second-opinion-authorization"
PAS_CLAIM_PROFILE = f"{CANON}/StructureDefinition/pas-second-opinion-claim"  # what Claim/$submit needs of PAS's

REASON_SYSTEM = f"{CANON}/CodeSystem/second-opinion-reason"
STATUS_SYSTEM = f"{CANON}/CodeSystem/second-opinion-status"
TASK_INPUT_SYSTEM = f"{CANON}/CodeSystem/second-opinion-task-input"
# Report dimensions carried as meta.tag (searchable with ``_tag`` on every store): see categories.py.
ROUTING_TIER_SYSTEM = f"{CANON}/CodeSystem/second-opinion-routing-tier"
PHYSICIAN_GROUP_SYSTEM = f"{CANON}/physician-group"
PLAN_KEY_SYSTEM = f"{CANON}/plan-key"

TREATING_PRACTITIONER_EXT = f"{CANON}/StructureDefinition/treating-practitioner"
OPINION_SEQUENCE_EXT = f"{CANON}/StructureDefinition/opinion-sequence"
SUBMIT_OPERATION = f"{CANON}/OperationDefinition/ServiceRequest-submit"

NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
COVERAGE_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
SECOND_OPINION_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0336"
ORG_TYPE_SYSTEM = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS"
NETWORK_REFERENCE_EXT = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference"

CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/adjudication"
PROCESS_PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
X12_SERVICE_TYPE_SYSTEM = "https://codesystem.x12.org/005010/1365"
X12_REVIEW_ACTION_SYSTEM = "https://codesystem.x12.org/005010/306"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition"
REVIEW_ACTION_EXT = f"{PAS}/extension-reviewAction"
REVIEW_ACTION_CODE_EXT = f"{PAS}/extension-reviewActionCode"
AUTHORIZED_PROVIDER_EXT = f"{PAS}/extension-itemAuthorizedProvider"
# Da Vinci PAS 2.x canonicals a PAS client sends or expects (``Claim/$submit``, ``Claim/$inquire``).
REQUESTED_SERVICE_EXT = f"{PAS}/extension-requestedService"
ITEM_TRACE_NUMBER_EXT = f"{PAS}/extension-itemTraceNumber"
PAS_OPERATIONS = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition"
PAS_SUBMIT_OPERATION = f"{PAS_OPERATIONS}/Claim-submit"
PAS_INQUIRE_OPERATION = f"{PAS_OPERATIONS}/Claim-inquiry"
PAS_RESPONSE_BUNDLE_PROFILE = f"{PAS}/profile-pas-response-bundle"
PAS_INQUIRY_RESPONSE_BUNDLE_PROFILE = f"{PAS}/profile-pas-inquiry-response-bundle"

# Priorities that make a request expedited (an imminent and serious threat to health).
EXPEDITED_PRIORITIES = frozenset({"urgent", "asap", "stat"})


def codes_in(concepts: Iterable[dict[str, Any] | None], system: str) -> list[str]:
    """The codes of ``system`` in some CodeableConcepts, in order (the one way the domain reads codes)."""
    return [
        coding["code"]
        for concept in concepts
        for coding in (concept or {}).get("coding", ())
        if coding.get("system") == system and coding.get("code")
    ]
