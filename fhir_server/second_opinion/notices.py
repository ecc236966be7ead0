"""Notices: the ``Communication`` resources that tell the parties of a case what happened.

Decision notices (90.2.17 procedure 5: "Both the member and provider will be notified of the determination";
the issue: every decision, automatic or a physician's, and a redirection to Member Services) go to the member
and to the requesting provider; a consultation report goes to the member's Primary Care Physician
(procedure 7, see :mod:`consultations`).

One Communication per recipient rather than one with two recipients: each party's notice then has its own
status and delivery record (``sent``/``received``, a later ``not-done`` for a letter that came back), and a
search ``Communication?recipient=Patient/x`` returns exactly the member's notices. Both carry the same words.

The words are the plan's (``notices`` in ``mappings/plans/*.yaml``, one text per reader and decision, placeholders
filled here). A member's notice is plain language: the consultant with the address and phone the directory gives,
the authorization number and its last day, that tests need a separate approval; on a denial, the grievance and
independent-review rights with how and by when and the plan's Member Services phone; never a code, a policy number
or "PPG"/"PCP". A provider's notice names the patient and carries the plan's notes for the outcome. A certification
is also sent to the consultant it authorizes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fhir_server.second_opinion.authorization import authorization_number_of, authorized_provider_of, process_notes
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.codes import REASON_SYSTEM, STATUS_SYSTEM, TASK_INPUT_SYSTEM, codes_in
from fhir_server.second_opinion.directory import is_active, roles_of
from fhir_server.second_opinion.evaluation import practitioner_of, provider_requester
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


def plain_reason(service_request: dict[str, Any] | None, words: dict[str, str]) -> str:
    """The request's reasons in plain words (mappings/reasons.yaml), each once; another code system's reason by
    its text or display; never a raw code."""
    said: list[str] = []
    for concept in (service_request or {}).get("reasonCode", ()):
        ours = codes_in([concept], REASON_SYSTEM)
        if ours:
            said += [words.get(code, words.get("other", "")) for code in ours]
        else:
            displays = [c.get("display") for c in concept.get("coding", ()) if c.get("display")]
            said.append(concept.get("text") or (displays[0] if displays else words.get("other", "")))
    return " and ".join(dict.fromkeys(w for w in said if w)) or words.get("other", "")


def reviewer_words(reason: dict[str, Any] | None, words: dict[str, str]) -> str | None:
    """A reviewer's reason as a notice may say it: its text, else its codings' displays; a bare code (``NMN``)
    never reaches a reader, who is told instead that Member Services can explain it."""
    if not reason:
        return None
    displays = [c.get("display") for c in reason.get("coding", ()) if c.get("display")]
    return reason.get("text") or "; ".join(displays) or words.get("coded-reason") or None


def long_date(day: str | None) -> str:
    """``2027-02-23`` as a letter writes it (February 23, 2027)."""
    try:
        parsed = date.fromisoformat(str(day))
    except ValueError:
        return str(day or "")
    return f"{parsed:%B} {parsed.day}, {parsed.year}"


def _address(resource: dict[str, Any]) -> str | None:
    for address in resource.get("address", ()) if isinstance(resource.get("address"), list) else [resource.get("address") or {}]:
        place = " ".join(p for p in (address.get("state"), address.get("postalCode")) if p)
        parts = [*address.get("line", ()), address.get("city"), place]
        if any(parts):
            return ", ".join(p for p in parts if p)
    return None


def _phone(resource: dict[str, Any]) -> str | None:
    return next((t.get("value") for t in resource.get("telecom", ()) if t.get("system") == "phone" and t.get("value")), None)


async def contact_of(resolver: Resolver, practitioner: str | None) -> str:
    """Where the member finds the professional, from the directory: the address and phone of their active role,
    else of the role's organization, else their own."""
    if not practitioner:
        return "whose contact details Member Services will give you"
    places: list[dict[str, Any]] = []
    for role in await roles_of(resolver.ops, practitioner):
        if is_active(role):
            places.append(role)
            places.append(await resolver.get((role.get("organization") or {}).get("reference")) or {})
    places.append(await resolver.get(practitioner) or {})
    address = next((a for a in map(_address, places) if a), None)
    phone = next((p for p in map(_phone, places) if p), None)
    return ", ".join(filter(None, (address, f"phone {phone}" if phone else None))) or "whose contact details Member Services will give you"


def _patient_words(patient: dict[str, Any] | None, fallback: str) -> str:
    name = display_name(patient, fallback)
    born = (patient or {}).get("birthDate")
    return f"{name} (born {long_date(born)})" if born else name


# Task.businessStatus of a decision -> the outcome whose plan notes a provider notice carries after its words.
NOTE_OUTCOMES = {"certified": "certify", "denied": "deny", "member_services": "member-services"}


async def notify_decision(
    ops: ResourceOperations,
    *,
    rules: PlanRules,
    task: dict[str, Any],
    claim_response: dict[str, Any],
    now: datetime,
    reason: dict[str, Any] | None = None,
    previous_task: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Create the decision notices of ``task``'s new state (inside the caller's transaction) and return them:
    one to the member, one to the requesting provider (the PCP when the member asked), and on a certification
    one to the authorized consultant; each in the plan's words for that reader.

    Nothing is sent for a state that is no decision (pended for review or for information), nor when the state
    did not change (a resubmission that ends where the case already was). ``reason`` is the reviewer's (a
    CodeableConcept, told by :func:`reviewer_words`); else the request's own reasons in plain words. The member's notice never shows codes or policy numbers; the provider's
    adds the plan's notes for the outcome (the authorization's processNote texts but the reviewer's reason, said
    once already)."""
    status = business_status_of(task)
    key = NOTICE_KEYS.get(status or "")
    if key is None or (previous_task is not None and business_status_of(previous_task) == status):
        return []
    resolver = Resolver(ops)
    service_request = await resolver.get(task["focus"]["reference"]) or {}
    patient_ref = task["for"]["reference"]
    patient = await resolver.get(patient_ref)
    consultant_ref = authorized_provider_of(claim_response) or proposed_provider_of(task)
    chosen_ref = await practitioner_of(resolver, (service_request.get("performer") or [{}])[0].get("reference"))
    values = {
        "member": display_name(patient, "Member"),
        "patient": _patient_words(patient, patient_ref),
        "number": authorization_number_of(claim_response) or "",
        "expires": long_date((claim_response.get("preAuthPeriod") or {}).get("end")),
        "consultant": display_name(await resolver.get(consultant_ref), "a qualified doctor"),
        "contact": await contact_of(resolver, consultant_ref),
        "chosen": display_name(await resolver.get(chosen_ref), "another doctor"),
        "reason": reviewer_words(reason, rules.reason_words) or plain_reason(service_request, rules.reason_words),
        "phone": rules.member_services_phone,
    }
    tier = tag_value(task.get("meta", {}).get("tag", []), "tier") or "none"
    provider_notes = process_notes(rules, NOTE_OUTCOMES[key], tier)
    audiences = {patient_ref: "member"}
    audiences.setdefault(requesting_provider(service_request, patient) or "", "provider")
    if key == "certified" and consultant_ref:
        audiences.setdefault(consultant_ref, "consultant")
    about = [f"ClaimResponse/{claim_response['id']}", f"Task/{task['id']}"]
    notices = []
    for recipient, audience in audiences.items():
        template = rules.notice_for(f"{audience}.{key}")
        if not recipient or template is None:
            continue
        texts = [fill(template, **values)]
        if audience == "member" and key == "certified" and chosen_ref and chosen_ref != consultant_ref:
            texts.append(fill(rules.notice_for("member.choice_set_aside") or "", **values))
        if audience != "member":
            texts += provider_notes
        notices.append(communication(
            recipients=[recipient],
            task=task,
            about=about,
            topic="Second-opinion decision",
            payload=[{"contentString": "\n\n".join(t for t in texts if t)}],
            sender=task.get("owner", {}).get("reference"),
            now=now,
        ))
    return [await _create(ops, notice) for notice in notices]


async def _create(ops: ResourceOperations, resource: dict[str, Any]) -> dict[str, Any]:
    stored = await ops.create(resource, resource_id=resource["id"])
    assert stored.resource is not None
    return stored.resource
