"""The PAS-style records of a decision: the Claim the server records for each request and the ClaimResponse
that answers it (contract "The answer"; Da Vinci PAS 2.x ``ClaimResponse.fsh`` shapes).

One item (sequence 1, one consultation: Health Net "approved for a one-time-only consultation"); its
adjudication carries the reviewAction (X12 306 A1 certified / A3 not certified, only by a physician reviewer /
A4 pended, the authorization number and the reasons), its extension the authorized provider. ``preAuthRef`` and ``preAuthPeriod`` only when certified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


# What the server decides on a client's own Claim (PAS): the parties and the link to the request follow the
# plan's rules, as on a Claim the server makes up; the rest (identifier, items and their trace numbers, care
# team, diagnoses, provider) stays as the client sent it.
SERVER_CLAIM_ELEMENTS = ("id", "status", "use", "patient", "insurer", "referral", "insurance")


def adopt_claim(submitted: dict[str, Any], built: dict[str, Any]) -> dict[str, Any]:
    """The client's Claim as the case's Claim: ``built`` (:func:`build_claim`) supplies the server's elements
    and whatever the client left out (type, created, priority, provider, an item's quantity)."""
    claim = {**built, **{k: v for k, v in submitted.items() if k not in SERVER_CLAIM_ELEMENTS}}
    claim.update({key: built[key] for key in SERVER_CLAIM_ELEMENTS})
    default_quantity = built["item"][0]["quantity"]
    claim["item"] = [{"quantity": default_quantity, **item} for item in claim.get("item") or built["item"]]
    return claim


def process_notes(rules: PlanRules, outcome: str, tier: str, reason: str | None = None) -> list[str]:
    """The plan's own words for this outcome (after the reviewer's reason, when one was given), plus its
    out-of-network text when a certification authorizes an out-of-network provider (never on a pended answer:
    that decision is not taken yet)."""
    texts = [f"Reason: {reason}"] if reason else []
    texts += rules.notes_for(OUTCOME_STATES[outcome].notes_key)
    if tier == "out-of-network" and outcome == "certify":
        texts += rules.notes_for("out_of_network")
    return texts


def _review_action(
    code: str, display: str, number: str, business_status: str, reason: dict[str, Any] | None
) -> dict[str, Any]:
    reasons = [{"coding": [{"system": STATUS_SYSTEM, "code": business_status}]}] + ([reason] if reason else [])
    return {
        "url": REVIEW_ACTION_EXT,
        "extension": [
            {
                "url": REVIEW_ACTION_CODE_EXT,
                "valueCodeableConcept": {"coding": [{"system": X12_REVIEW_ACTION_SYSTEM, "code": code, "display": display}]},
            },
            {"url": "number", "valueString": number},
            *({"url": "reasonCode", "valueCodeableConcept": concept} for concept in reasons),
        ],
    }


@dataclass(frozen=True)
class Adjudication:
    """The outcome parts of an authorization, the same whether routing or a physician reviewer decided."""

    outcome: str  # a workflow.OUTCOME_STATES key
    number: str  # the authorization number
    tier: str  # routing tier of the authorized provider (out of network adds the plan's note)
    provider: str | None = None  # the authorized "Practitioner/id" (certified only)
    reason: dict[str, Any] | None = None  # a reviewer's reason (CodeableConcept), added to the reason codes
    reason_text: str | None = None  # the same reason in words, for the processNote


def adjudicate(
    response: dict[str, Any], adjudication: Adjudication, rules: PlanRules, authorized_from: date
) -> dict[str, Any]:
    """Set the outcome of a ClaimResponse (reviewAction, authorized provider, preAuthRef/preAuthPeriod,
    disposition, processNote) on a copy of ``response``; shared by $submit and by a physician's decision, so a
    reviewed authorization has exactly the shape of an automatic one."""
    state = OUTCOME_STATES[adjudication.outcome]
    certified = adjudication.outcome == "certify"
    item: dict[str, Any] = {
        "itemSequence": 1,
        "adjudication": [
            {
                "extension": [
                    _review_action(
                        state.review_action, state.display, adjudication.number, state.business_status, adjudication.reason
                    )
                ],
                "category": {"coding": [{"system": ADJUDICATION_SYSTEM, "code": "submitted"}]},
            }
        ],
    }
    if adjudication.provider is not None and certified:
        item["extension"] = [
            {"url": AUTHORIZED_PROVIDER_EXT, "extension": [{"url": "provider", "valueReference": {"reference": adjudication.provider}}]}
        ]
    outcome_keys = ("outcome", "disposition", "item", "preAuthRef", "preAuthPeriod", "processNote")
    result = {key: value for key, value in response.items() if key not in outcome_keys}
    result.update({"outcome": "complete", "disposition": state.display, "item": [item]})
    if certified:
        result["preAuthRef"] = adjudication.number
        result["preAuthPeriod"] = {
            "start": authorized_from.isoformat(),
            "end": (authorized_from + timedelta(days=rules.authorization_validity_days)).isoformat(),
        }
    notes = process_notes(rules, adjudication.outcome, adjudication.tier, adjudication.reason_text)
    if notes:
        result["processNote"] = [{"number": i, "type": "display", "text": t} for i, t in enumerate(notes, start=1)]
    return result


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
    }
    if parties.requestor:
        response["requestor"] = {"reference": parties.requestor}
    response["request"] = {"reference": claim_ref}
    adjudication = Adjudication(
        outcome=decision.outcome,
        number=number,
        tier=decision.tier,
        provider=decision.provider.practitioner if decision.provider is not None else None,
    )
    return adjudicate(response, adjudication, rules, rules.due_times.calendar.local_date(received))


def _review_action_of(claim_response: dict[str, Any]) -> dict[str, Any]:
    for item in claim_response.get("item", ()):
        for adjudication in item.get("adjudication", ()):
            for extension in adjudication.get("extension", ()):
                if extension.get("url") == REVIEW_ACTION_EXT:
                    return extension
    return {}


def authorization_number_of(claim_response: dict[str, Any]) -> str | None:
    """The authorization number a ClaimResponse carries (kept across its versions)."""
    return next((e.get("valueString") for e in _review_action_of(claim_response).get("extension", ()) if e.get("url") == "number"), None)


def authorized_provider_of(claim_response: dict[str, Any]) -> str | None:
    """The ``Practitioner/id`` a certified ClaimResponse authorizes, if any."""
    for item in claim_response.get("item", ()):
        for extension in item.get("extension", ()):
            if extension.get("url") == AUTHORIZED_PROVIDER_EXT:
                return next((e["valueReference"].get("reference") for e in extension.get("extension", ()) if "valueReference" in e), None)
    return None
