"""Notices: the ``Communication`` resources that tell the parties of a case what happened.

Decision notices (90.2.17 procedure 5: "Both the member and provider will be notified of the determination";
the issue: every decision, automatic or a physician's, and a redirection to Member Services) go to the member
and to the requesting provider; a consultation report goes to the member's Primary Care Physician
(procedure 7, see :mod:`consultations`).

One Communication per recipient rather than one with two recipients: each party's notice then has its own
status and delivery record (``sent``/``received``, a later ``not-done`` for a letter that came back), and a
search ``Communication?recipient=Patient/x`` returns exactly the member's notices. Both carry the same words.

The words are the plan's (``notices`` in ``mappings/plans/*.yaml``, placeholders filled here), followed by the
authorization's processNote texts (the reviewer's reason and, on a denial, the member's grievance rights), so
a notice never says something the authorization does not.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fhir_server.second_opinion.authorization import authorization_number_of, authorized_provider_of
from fhir_server.second_opinion.codes import STATUS_SYSTEM, TASK_INPUT_SYSTEM, codes_in
from fhir_server.second_opinion.evaluation import provider_requester
from fhir_server.second_opinion.plans import PlanRules
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.workflow import instant
from fhir_server.storage.base import ResourceOperations

COMMUNICATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"
# Task.businessStatus of a decision -> the plan's notice key (the same keys as its processNote lists).
NOTICE_KEYS = {"approved": "certified", "denied": "denied", "member-services": "member_services"}


class _Placeholders(dict):
    """Template values; a placeholder a plan file uses but this module does not fill stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, **values: str) -> str:
    return template.format_map(_Placeholders(values))


def display_name(resource: dict[str, Any] | None, fallback: str) -> str:
    """A person's or an organization's name as a letter would write it."""
    if not resource:
        return fallback
    name = resource.get("name")
    if isinstance(name, str):
        return name
    for human in name or ():
        if human.get("text"):
            return human["text"]
        parts = [*human.get("prefix", ()), *human.get("given", ()), human.get("family", "")]
        if any(parts):
            return " ".join(p for p in parts if p)
    return fallback


def concept_text(concept: dict[str, Any] | None) -> str | None:
    """The words of a CodeableConcept: its text, else its codings' displays (or codes)."""
    if not concept:
        return None
    if concept.get("text"):
        return concept["text"]
    words = [c.get("display") or c.get("code") for c in concept.get("coding", ())]
    return "; ".join(w for w in words if w) or None


def business_status_of(task: dict[str, Any]) -> str | None:
    return next(iter(codes_in([task.get("businessStatus")], STATUS_SYSTEM)), None)


def proposed_provider_of(task: dict[str, Any]) -> str | None:
    for item in task.get("input", ()):
        if "proposed-provider" in codes_in([item.get("type")], TASK_INPUT_SYSTEM):
            return item.get("valueReference", {}).get("reference")
    return None


def communication(
    *,
    recipients: list[str],
    task: dict[str, Any],
    about: list[str],
    topic: str,
    payload: list[dict[str, Any]],
    sender: str | None,
    now: datetime,
) -> dict[str, Any]:
    """One completed notice of a case (decisions and consultation reports alike)."""
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(uuid.uuid4()),
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY_SYSTEM, "code": "notification"}]}],
        "basedOn": [task["focus"]],
        "subject": task["for"],
        "topic": {"text": topic},
        "about": [{"reference": reference} for reference in about],
        "sent": instant(now),
        "recipient": [{"reference": recipient} for recipient in recipients],
        "payload": payload,
    }
    if sender:
        resource["sender"] = {"reference": sender}
    return resource


def requesting_provider(service_request: dict[str, Any] | None, patient: dict[str, Any] | None) -> str | None:
    """Who is "the provider" to notify: the requesting professional, or the member's PCP when the member asked."""
    requester = provider_requester(service_request or {})
    if requester:
        return requester
    pcps = [gp.get("reference") for gp in (patient or {}).get("generalPractitioner", ())]
    return next((pcp for pcp in pcps if pcp), None)


async def notify_decision(
    ops: ResourceOperations,
    *,
    rules: PlanRules,
    task: dict[str, Any],
    claim_response: dict[str, Any],
    now: datetime,
    reason: str | None = None,
    previous_task: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Create the decision notices of ``task``'s new state (inside the caller's transaction) and return them.

    Nothing is sent for a state that is no decision (pended for review or for information), nor when the state
    did not change (a resubmission that ends where the case already was). ``reason`` is the reviewer's; an
    automatic decision gives the plan's ``<key>_reason`` text."""
    status = business_status_of(task)
    key = NOTICE_KEYS.get(status or "")
    template = rules.notice_for(key) if key else None
    if template is None or (previous_task is not None and business_status_of(previous_task) == status):
        return []
    resolver = Resolver(ops)
    service_request = await resolver.get(task["focus"]["reference"])
    patient_ref = task["for"]["reference"]
    patient = await resolver.get(patient_ref)
    provider_ref = authorized_provider_of(claim_response) or proposed_provider_of(task)
    provider = display_name(await resolver.get(provider_ref), provider_ref or "the professional to be assigned")
    request_reason = "; ".join(filter(None, (concept_text(c) for c in (service_request or {}).get("reasonCode", ()))))
    number = authorization_number_of(claim_response) or ""
    values = {"number": number, "provider": provider, "request_reason": request_reason}
    reason = reason or fill(rules.notice_for(f"{key}_reason") or "", **values)
    notes = [note["text"] for note in claim_response.get("processNote", ())]
    text = "\n\n".join([fill(template, **values, reason=reason), *notes])
    recipients = dict.fromkeys(r for r in (patient_ref, requesting_provider(service_request, patient)) if r)
    about = [f"ClaimResponse/{claim_response['id']}", f"Task/{task['id']}"]
    notices = [
        communication(
            recipients=[recipient],
            task=task,
            about=about,
            topic="Second-opinion decision",
            payload=[{"contentString": text}],
            sender=task.get("owner", {}).get("reference"),
            now=now,
        )
        for recipient in recipients
    ]
    return [await _create(ops, notice) for notice in notices]


async def _create(ops: ResourceOperations, resource: dict[str, Any]) -> dict[str, Any]:
    stored = await ops.create(resource, resource_id=resource["id"])
    assert stored.resource is not None
    return stored.resource
