"""Everything the case page shows about one second-opinion case, read as the signed-in person's organization sees
it: the request in plain words, the routing result, the authorization and its notes, the Task's timeline, the
notices sent, and what is missing with the request to the provider for it.

The Task is the case's handle (the worklist links to it); the rest is found from it: its ``focus`` (the
ServiceRequest), ``for`` (the member), its ``output`` (the ClaimResponse, review forms), and the Communications and
CommunicationRequests ``basedOn`` the request. A Task the caller may not see is a 404, as through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server.errors import FhirError, not_found
from fhir_server.second_opinion.authorization import authorization_number_of, authorized_provider_of
from fhir_server.second_opinion.candidates import RoutingResult, routing_result
from fhir_server.second_opinion.cases import is_second_opinion_task
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.codes import OPINION_SEQUENCE_EXT, TASK_INPUT_SYSTEM, codes_in
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.notices import business_status_of, concept_text, display_name, proposed_provider_of
from fhir_server.second_opinion.reports import DECISIONS, search_all
from fhir_server.storage.base import ResourceOperations
from fhir_server.ui.reading import by_reference, reference_of
from fhir_server.ui.words import moment_of, status_label, when
from fhir_server.ui.worklist import specialty_of

TIMELINE_VERSIONS = 50  # versions of the Task the timeline lists (newest first)
TIERS = {"group": "the member's physician group", "network": "the plan's network",
         "out-of-network": "out of network (the plan bears the cost)", "none": "nobody routed yet"}


@dataclass(frozen=True)
class TimelineEntry:
    version: str
    at: str
    status: str
    business_status: str
    note: str


@dataclass(frozen=True)
class Message:
    sent: str
    topic: str
    recipients: list[str]
    text: list[str]
    status: str


@dataclass(frozen=True)
class Review:
    """A completed review form (a QuestionnaireResponse the Task's output names): who, when, each answer."""

    author: str
    authored: str
    answers: list[tuple[str, str]]  # (question, answer)


def _answer_text(answer: dict[str, Any]) -> str:
    coding = answer.get("valueCoding")
    if coding:
        return coding.get("display") or coding.get("code", "")
    reference = answer.get("valueReference")
    if reference:
        return reference.get("display") or reference.get("reference", "")
    return next((str(value) for key, value in answer.items() if key.startswith("value")), "")


def _review(form: dict[str, Any], names: dict[str, str]) -> Review:
    author = reference_of(form.get("author")) or ""
    return Review(
        author=names.get(author, author or "unknown"),
        authored=when(moment_of(form.get("authored"))),
        answers=[(item.get("text") or item.get("linkId", ""), "; ".join(_answer_text(a) for a in item.get("answer", ())))
                 for item in form.get("item", ())],
    )


@dataclass
class CaseFile:
    """The case page's content (names already resolved to words)."""

    task: dict[str, Any]
    service_request: dict[str, Any]
    patient: dict[str, Any] | None
    claim_response: dict[str, Any] | None
    names: dict[str, str]  # reference -> display name
    timeline: list[TimelineEntry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    information_requests: list[Message] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    routing: RoutingResult | None = None  # the request routed again on today's directory, every candidate judged

    def suggestions(self) -> dict[str, list[tuple[str, str]]]:
        """Values the review form suggests for its reference fields: the qualified professionals, in routing's
        order (their role for an assigned provider, the physician for a consultative reviewer)."""
        qualified = self.routing.qualified if self.routing else []
        return {
            "assignedProvider": [(c.candidate.role.partition("/")[2], self.name(c.candidate.practitioner)) for c in qualified],
            "consultativeReviewer": [(c.candidate.practitioner.partition("/")[2], self.name(c.candidate.practitioner))
                                     for c in qualified],
        }

    # -- the request --------------------------------------------------------------------------------------------
    def name(self, reference: str | None, fallback: str = "not given") -> str:
        return self.names.get(reference or "", reference or fallback)

    @property
    def task_id(self) -> str:
        return self.task["id"]

    @property
    def status(self) -> str:
        return business_status_of(self.task) or self.task.get("status", "unknown")

    @property
    def status_words(self) -> str:
        return status_label(self.status)

    @property
    def open(self) -> bool:
        return self.task.get("status") in ("requested", "received", "accepted", "in-progress", "on-hold")

    @property
    def member(self) -> str:
        return display_name(self.patient, "unknown member")

    @property
    def member_details(self) -> str:
        patient = self.patient or {}
        parts = [f"born {patient['birthDate']}" if patient.get("birthDate") else "", patient.get("gender", "")]
        return ", ".join(p for p in parts if p)

    @property
    def reasons(self) -> list[str]:
        return [concept_text(c) or "unnamed reason" for c in self.service_request.get("reasonCode", ())]

    @property
    def specialty(self) -> str:
        return specialty_of(self.service_request)

    @property
    def requester(self) -> str:
        reference = reference_of(self.service_request.get("requester"))
        who = self.name(reference)
        return f"{who} (the member)" if (reference or "").startswith("Patient/") else who

    @property
    def members_choice(self) -> str:
        chosen = [reference_of(p) for p in self.service_request.get("performer", ())]
        return ", ".join(self.name(c) for c in chosen if c) or "none named"

    @property
    def opinion(self) -> str:
        for extension in self.service_request.get("extension", ()):
            if extension.get("url") == OPINION_SEQUENCE_EXT:
                return f"{extension.get('valueCode', 'second')} opinion"
        return "second opinion"

    @property
    def priority(self) -> str:
        return self.service_request.get("priority", "routine")

    @property
    def received(self) -> str:
        return when(moment_of(self.task.get("authoredOn")))

    @property
    def due(self) -> str:
        return when(moment_of(((self.task.get("restriction") or {}).get("period") or {}).get("end")))

    # -- routing and authorization --------------------------------------------------------------------------------
    @property
    def tags(self) -> list[dict[str, str]]:
        return (self.claim_response or self.task).get("meta", {}).get("tag", [])

    @property
    def tier(self) -> str:
        return TIERS.get(tag_value(self.tags, "tier") or "none", tag_value(self.tags, "tier") or "")

    @property
    def proposed_provider(self) -> str | None:
        return proposed_provider_of(self.task)

    @property
    def owner(self) -> str:
        return self.name(reference_of(self.task.get("owner")))

    @property
    def decision(self) -> str:
        code = tag_value(self.tags, "decision")
        return f"{DECISIONS.get(code or '', 'not decided')} ({code})" if code else "not decided"

    @property
    def authorization_number(self) -> str | None:
        return authorization_number_of(self.claim_response) if self.claim_response else None

    @property
    def authorized_provider(self) -> str | None:
        return authorized_provider_of(self.claim_response) if self.claim_response else None

    @property
    def authorization_period(self) -> str | None:
        period = (self.claim_response or {}).get("preAuthPeriod")
        return f"{period.get('start', '?')} to {period.get('end', '?')}" if period else None

    @property
    def notes(self) -> list[str]:
        return [note.get("text", "") for note in (self.claim_response or {}).get("processNote", ())]

    @property
    def missing(self) -> list[str]:
        return [
            (item.get("type") or {}).get("text") or item.get("valueString", "")
            for item in self.task.get("input", ())
            if "missing-information" in codes_in([item.get("type")], TASK_INPUT_SYSTEM)
        ]

    @property
    def status_reason(self) -> str | None:
        return concept_text(self.task.get("statusReason"))


def _message(resource: dict[str, Any], names: dict[str, str], at_key: str) -> Message:
    return Message(
        sent=when(moment_of(resource.get(at_key))),
        topic=concept_text(resource.get("topic")) or concept_text(next(iter(resource.get("category", ())), None)) or "",
        recipients=[names.get(r.get("reference", ""), r.get("reference", "")) for r in resource.get("recipient", ())],
        text=[p.get("contentString", "") for p in resource.get("payload", ()) if p.get("contentString")],
        status=resource.get("status", ""),
    )


async def _timeline(ops: ResourceOperations, task_id: str) -> list[TimelineEntry]:
    page = await ops.history("Task", task_id, count=TIMELINE_VERSIONS)
    entries = []
    for item in page.items:
        task = item.resource or {}
        entries.append(TimelineEntry(
            version=str(item.version_id),
            at=when(item.last_updated),
            status=task.get("status", "deleted"),
            business_status=status_label(business_status_of(task)) if task else "",
            note=concept_text(task.get("statusReason")) or "",
        ))
    return entries


async def case_file(ops: ResourceOperations, task_id: str, catalog: PlanCatalog) -> CaseFile:
    """The case whose Task is ``task_id`` (404 when the caller may not see it or it is no second-opinion case)."""
    try:
        task = (await ops.read("Task", task_id)).resource
    except FhirError as exc:
        if exc.status == 410:
            raise not_found(f"Task/{task_id} is not known") from None
        raise
    if not task or not is_second_opinion_task(task):
        raise not_found(f"Task/{task_id} is no second-opinion case")
    request_ref = reference_of(task.get("focus")) or ""
    outputs = [reference_of(o.get("valueReference")) for o in task.get("output", ())]
    linked = await by_reference(ops, [request_ref, reference_of(task.get("for")), *outputs])
    service_request = linked.get(request_ref, {})
    claim_response = next((linked[r] for r in outputs if r and r.startswith("ClaimResponse/") and r in linked), None)
    notices = await search_all(ops, "Communication", [("based-on", request_ref)]) if request_ref else []
    asked = await search_all(ops, "CommunicationRequest", [("based-on", request_ref)]) if request_ref else []

    patient = linked.get(reference_of(task.get("for")) or "")
    routing = await routing_result(ops, service_request, patient, catalog) if service_request else None
    considered = routing.considered if routing else []
    people = [*(c.candidate.practitioner for c in considered), *(c.candidate.organization for c in considered),
              reference_of(service_request.get("requester")), reference_of(task.get("owner")), proposed_provider_of(task),
              authorized_provider_of(claim_response) if claim_response else None,
              *(reference_of(p) for p in service_request.get("performer", ())),
              *(reference_of(linked.get(r or "", {}).get("author")) for r in outputs),
              *(reference_of(r) for resource in (*notices, *asked) for r in resource.get("recipient", ()))]
    found = await by_reference(ops, people)
    names = {reference: display_name(resource, reference) for reference, resource in found.items()}
    case = CaseFile(task, service_request, patient, claim_response, names, routing=routing)
    case.timeline = await _timeline(ops, task_id)
    case.messages = sorted((_message(n, names, "sent") for n in notices), key=lambda m: m.sent)
    case.information_requests = [_message(r, names, "authoredOn") for r in asked]
    case.reviews = [_review(linked[r], names) for r in outputs
                    if r and r.startswith("QuestionnaireResponse/") and r in linked]
    return case
