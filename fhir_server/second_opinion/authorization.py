"""The PAS-style records of a decision: the Claim the server records for each request and the ClaimResponse
that answers it (contract "The answer"; Da Vinci PAS 2.x ``ClaimResponse.fsh`` shapes).

One item (sequence 1, one consultation: Health Net "approved for a one-time-only consultation"); its
adjudication carries the reviewAction (X12 306 A1 certified / A4 pended, the authorization number and the
reason), its extension the authorized provider. ``preAuthRef`` and ``preAuthPeriod`` only when certified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_server.second_opinion.codes import (
    ADJUDICATION_SYSTEM,
    AUTHORIZATION_PROFILE,
    AUTHORIZED_PROVIDER_EXT,
    CLAIM_TYPE_SYSTEM,
    PROCESS_PRIORITY_SYSTEM,
    REVIEW_ACTION_CODE_EXT,
    REVIEW_ACTION_EXT,
    STATUS_SYSTEM,
    X12_REVIEW_ACTION_SYSTEM,
    X12_SERVICE_TYPE_SYSTEM,
)
from fhir_server.second_opinion.plans import PlanRules
from fhir_server.second_opinion.routing import RoutingDecision
from fhir_server.second_opinion.workflow import OUTCOME_STATES, instant

PROFESSIONAL = {"coding": [{"system": CLAIM_TYPE_SYSTEM, "code": "professional"}]}
CONSULTATION = {"coding": [{"system": X12_SERVICE_TYPE_SYSTEM, "code": "3", "display": "Consultation"}]}


@dataclass(frozen=True)
class Parties:
    """Who is who in a request, as local references."""

    patient: str
    coverage: str
    insurer: str  # the plan's payer Organization
    requestor: str | None  # the requesting Practitioner/PractitionerRole (None when the member asked)
    claim_provider: str  # Claim.provider: the requestor, else the member's group, else the plan


def authorization_number(rules: PlanRules, claim_id: str, received: datetime) -> str:
    return f"{rules.authorization_number_prefix}-{received:%Y%m%d}-{claim_id.replace('-', '')[:8].upper()}"


def build_claim(
    *, claim_id: str, service_request_ref: str, parties: Parties, rules: PlanRules, expedited: bool, received: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "id": claim_id,
        "status": "active",
        "type": PROFESSIONAL,
        "use": "preauthorization",
        "patient": {"reference": parties.patient},
        "created": instant(received),
        "insurer": {"reference": parties.insurer},
        "provider": {"reference": parties.claim_provider},
        "priority": {"coding": [{"system": PROCESS_PRIORITY_SYSTEM, "code": "stat" if expedited else "normal"}]},
        "referral": {"reference": service_request_ref},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": parties.coverage}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": CONSULTATION,
                "quantity": {"value": rules.authorization_quantity},
            }
        ],
    }


def process_notes(rules: PlanRules, decision: RoutingDecision) -> list[str]:
    """The plan's own words for this outcome, plus its out-of-network text when the provider is out of network."""
    texts = list(rules.notes_for(OUTCOME_STATES[decision.outcome].notes_key))
    if decision.tier == "out-of-network" and decision.outcome != "information-missing":
        texts += rules.notes_for("out_of_network")
    return texts


def _review_action(code: str, display: str, number: str, business_status: str) -> dict[str, Any]:
    return {
        "url": REVIEW_ACTION_EXT,
        "extension": [
            {
                "url": REVIEW_ACTION_CODE_EXT,
                "valueCodeableConcept": {"coding": [{"system": X12_REVIEW_ACTION_SYSTEM, "code": code, "display": display}]},
            },
            {"url": "number", "valueString": number},
            {"url": "reasonCode", "valueCodeableConcept": {"coding": [{"system": STATUS_SYSTEM, "code": business_status}]}},
        ],
    }


def build_claim_response(
    *,
    claim_response_id: str,
    claim_ref: str,
    parties: Parties,
    rules: PlanRules,
    decision: RoutingDecision,
    number: str,
    received: datetime,
    now: datetime,
    tags: list[dict[str, str]],
) -> dict[str, Any]:
    state = OUTCOME_STATES[decision.outcome]
    item: dict[str, Any] = {
        "itemSequence": 1,
        "adjudication": [
            {
                "extension": [_review_action(state.review_action, state.display, number, state.business_status)],
                "category": {"coding": [{"system": ADJUDICATION_SYSTEM, "code": "submitted"}]},
            }
        ],
    }
    if decision.provider is not None and decision.outcome == "certify":
        item["extension"] = [
            {
                "url": AUTHORIZED_PROVIDER_EXT,
                "extension": [{"url": "provider", "valueReference": {"reference": decision.provider.practitioner}}],
            }
        ]
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": claim_response_id,
        "meta": {"profile": [AUTHORIZATION_PROFILE], "tag": tags},
        "status": "active",
        "type": PROFESSIONAL,
        "use": "preauthorization",
        "patient": {"reference": parties.patient},
        "created": instant(now),
        "insurer": {"reference": parties.insurer},
        "request": {"reference": claim_ref},
        "outcome": "complete",
        "disposition": state.display,
        "item": [item],
    }
    if parties.requestor:
        response["requestor"] = {"reference": parties.requestor}
    if decision.outcome == "certify":
        start = received.date()
        response["preAuthRef"] = number
        response["preAuthPeriod"] = {
            "start": start.isoformat(),
            "end": (start + timedelta(days=rules.authorization_validity_days)).isoformat(),
        }
    notes = process_notes(rules, decision)
    if notes:
        response["processNote"] = [{"number": i, "type": "display", "text": t} for i, t in enumerate(notes, start=1)]
    return response
