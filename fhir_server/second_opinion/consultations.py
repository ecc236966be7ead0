"""The consultation report of a second opinion, linked to its case and sent to the member's PCP.

90.2.17 procedure 7: "physicians providing second opinions [...] submit a copy of their consultation and any
test results to the Member's Primary Care Physician. This consultation report should include the physician's
findings and recommendations." The consultant posts either a ``DiagnosticReport`` whose ``basedOn`` names the
ServiceRequest (findings and recommendations in ``conclusion``) or a ``DocumentReference`` of type LOINC
11488-4 (consult note, as US Core sends it) whose ``context.related`` names it.

Run as a change observer inside the transaction that writes the report (REST create or update, a Bundle entry,
``load``): the Task gets the report in ``output`` and
businessStatus ``report-received`` (it stays ``completed``), and a Communication carries the report to every
``Patient.generalPractitioner``. A report already in the Task's output is not linked or sent again (a corrected
version updates the report itself). A report for a request that is not an approved second opinion (no case, still
in review, denied) is stored as it is and linked to nothing: the report exists whatever the workflow says. Nor does
a preliminary report, or one by anyone but the authorized consultant, complete the case: it is stored, and the
client's answer carries an OperationOutcome warning saying why (``Prefer: return=OperationOutcome``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from fhir_server.errors import warning
from fhir_server.fhir.resources import copy_resource
from fhir_server.second_opinion.authorization import authorized_provider_of
from fhir_server.second_opinion.evaluation import practitioner_of
from fhir_server.storage.observed import warn
from fhir_server.second_opinion.cases import existing_case
from fhir_server.second_opinion.codes import codes_in
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.notices import business_status_of, communication, display_name, fill
from fhir_server.second_opinion.plans import PlanCatalog
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.workflow import business_status, instant
from fhir_server.storage.base import ResourceOperations, StoredResource

LOINC = "http://loinc.org"
CONSULT_NOTE = "11488-4"
REPORT_OUTPUT_TYPE = {
    "coding": [{"system": LOINC, "code": CONSULT_NOTE, "display": "Consult note"}],
    "text": "consultation report",
}
# Business states in which a consultation is expected (a second report adds to the first).
LINKABLE_STATES = frozenset({"approved", "report-received"})
# Only a final (or amended) report completes the case: a preliminary one is stored but changes nothing.
FINAL_REPORT_STATES = frozenset({"final", "amended", "corrected", "appended"})


def _service_requests(references: Iterable[dict[str, Any] | None]) -> list[str]:
    found = [(r or {}).get("reference", "") for r in references]
    return [r for r in found if r.startswith("ServiceRequest/")]


def _diagnostic_report_requests(report: dict[str, Any]) -> list[str]:
    return _service_requests(report.get("basedOn", ()))


def _document_reference_requests(document: dict[str, Any]) -> list[str]:
    if CONSULT_NOTE not in codes_in([document.get("type")], LOINC):
        return []
    return _service_requests(document.get("context", {}).get("related", ()))


def _diagnostic_report_final(report: dict[str, Any]) -> bool:
    return report.get("status") in FINAL_REPORT_STATES


def _document_final(document: dict[str, Any]) -> bool:
    """A current document whose docStatus, when given, is final or amended."""
    return document.get("status") == "current" and document.get("docStatus", "final") in FINAL_REPORT_STATES


@dataclass(frozen=True)
class ReportKind:
    """Where a kind of consultation report says what it answers, who wrote it, what was found, and whether it is
    final."""

    service_requests: Callable[[dict[str, Any]], list[str]]
    author_element: str
    findings_element: str
    is_final: Callable[[dict[str, Any]], bool]
    status_element: str


REPORT_KINDS: dict[str, ReportKind] = {
    "DiagnosticReport": ReportKind(_diagnostic_report_requests, "performer", "conclusion", _diagnostic_report_final, "status"),
    "DocumentReference": ReportKind(
        _document_reference_requests, "author", "description", _document_final, "docStatus"
    ),
}


async def link_report(
    ops: ResourceOperations, stored: StoredResource, catalog: PlanCatalog, now: datetime
) -> dict[str, Any] | None:
    """Link a consultation report to its case and send it to the PCP; returns the Communication (None when the
    report answers no approved second opinion, is linked already, or the member has no PCP to send it to)."""
    report = stored.resource
    if report is None or stored.resource_type not in REPORT_KINDS:
        return None
    kind = REPORT_KINDS[stored.resource_type]
    for service_request in kind.service_requests(report):
        case = await existing_case(ops, service_request)
        if case is None or business_status_of(case.task) not in LINKABLE_STATES:
            continue
        linked = {(o.get("valueReference") or {}).get("reference") for o in case.task.get("output", ())}
        if stored.reference in linked:
            return None
        if not await _is_the_consultation(ops, stored, kind, case.claim_response or {}):
            return None
        task = copy_resource(case.task)
        task["businessStatus"] = business_status("report-received", "Report received")
        task["output"] = [
            *task.get("output", ()), {"type": REPORT_OUTPUT_TYPE, "valueReference": {"reference": stored.reference}}
        ]
        task["lastModified"] = instant(now)
        updated, _ = await ops.update(task)
        assert updated.resource is not None
        author, findings = report.get(kind.author_element), report.get(kind.findings_element)
        return await _send_to_pcp(ops, catalog, updated.resource, stored, author, findings, now)
    return None


async def _is_the_consultation(
    ops: ResourceOperations, stored: StoredResource, kind: ReportKind, claim_response: dict[str, Any]
) -> bool:
    """Procedure 7 asks the physician providing the second opinion for their consultation: a final (or amended)
    report by the authorized consultant. Anything else is stored as it is, and the client is told why it changes
    nothing (an OperationOutcome warning)."""
    report = stored.resource or {}
    where = f"{stored.resource_type}.{kind.status_element}"
    if not kind.is_final(report):
        warn(warning("business-rule", f"{stored.reference} is stored, but only a final (or amended) consultation "
                     "report completes the second opinion and goes to the member's primary care physician", where))
        return False
    consultant = authorized_provider_of(claim_response)
    resolver = Resolver(ops)
    authors = [await practitioner_of(resolver, (a or {}).get("reference")) for a in report.get(kind.author_element) or ()]
    if consultant not in authors:
        warn(warning("business-rule", f"{stored.reference} is stored, but it is not by the authorized consultant "
                     f"{consultant!r}: only their report completes the second opinion (90.2.17 procedure 7)",
                     f"{stored.resource_type}.{kind.author_element}"))
        return False
    return True


async def _send_to_pcp(
    ops: ResourceOperations,
    catalog: PlanCatalog,
    task: dict[str, Any],
    stored: StoredResource,
    authors: list[dict[str, Any]] | None,
    findings: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    resolver = Resolver(ops)
    patient_ref = task["for"]["reference"]
    patient = await resolver.get(patient_ref) or {}
    pcps = [gp["reference"] for gp in patient.get("generalPractitioner", ()) if gp.get("reference")]
    if not pcps:
        return None
    plan_key = tag_value(task.get("meta", {}).get("tag", []), "plan")
    template = catalog.plans[plan_key].notice_for("consultation_report") if plan_key in catalog.plans else None
    patient_name = display_name(patient, patient_ref)
    headline = fill(template or "Consultation report {report}", patient=patient_name, report=stored.reference)
    text = "\n\n".join(t for t in (headline, findings) if t)
    notice = communication(
        recipients=pcps,
        task=task,
        about=[f"Task/{task['id']}", stored.reference],
        topic="Second-opinion consultation report",
        payload=[{"contentString": text}, {"contentReference": {"reference": stored.reference}}],
        sender=next((a.get("reference") for a in authors or () if a.get("reference")), None),
        now=now,
    )
    created = await ops.create(notice, resource_id=notice["id"])
    return created.resource
