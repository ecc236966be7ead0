"""The consultation report back to the PCP (90.2.17 procedure 7), posted through REST or in a transaction."""

from __future__ import annotations

from typing import Any

from tests.case_management.helpers import decide_ok, in_review, parameters, search
from tests.second_opinion.conftest import FHIR_JSON
from tests.second_opinion.helpers import Answer, submission, submit_ok

LOINC = "http://loinc.org"
FINDINGS = "Findings: three-vessel disease confirmed. Recommendation: proceed with bypass surgery."


def diagnostic_report(case: Answer) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "basedOn": [{"reference": f"ServiceRequest/{case.service_request['id']}"}],
        "subject": case.service_request["subject"],
        "performer": [{"reference": "Practitioner/pract-05"}],
        "conclusion": FINDINGS,
    }


def document_reference(case: Answer, author: str = "Practitioner/pract-05") -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "subject": case.service_request["subject"],
        "author": [{"reference": author}],
        "description": FINDINGS,
        "content": [{"attachment": {"contentType": "text/plain", "data": "RmluZGluZ3M="}}],
        "context": {"related": [{"reference": f"ServiceRequest/{case.service_request['id']}"}]},
    }


def read(client, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}", headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return response.json()


def pcp_of(client, case: Answer) -> list[str]:
    patient = read(client, case.service_request["subject"]["reference"])
    return [gp["reference"] for gp in patient["generalPractitioner"]]


def assert_report_linked_and_sent(client, case: Answer, report_ref: str, author: str = "Practitioner/pract-05") -> None:
    task = read(client, f"Task/{case.task['id']}")
    assert task["status"] == "completed"
    assert task["businessStatus"]["coding"][0]["code"] == "report-received"
    assert task["output"][0]["valueReference"]["reference"] == f"ClaimResponse/{case.claim_response['id']}"
    assert task["output"][-1]["valueReference"]["reference"] == report_ref
    (notice,) = search(client, f"Communication?about={report_ref}")
    assert [r["reference"] for r in notice["recipient"]] == pcp_of(client, case)
    assert {"contentReference": {"reference": report_ref}} in notice["payload"]
    assert FINDINGS in notice["payload"][0]["contentString"]
    assert notice["basedOn"] == [{"reference": f"ServiceRequest/{case.service_request['id']}"}]
    assert notice["sender"]["reference"] == author


def test_90_2_17_procedure_7_diagnostic_report_goes_to_the_members_pcp(client_on_each_store):
    """90.2.17 procedure 7 ("submit a copy of their consultation ... to the Member's Primary Care Physician ...
    findings and recommendations"): a DiagnosticReport basedOn the request, created through REST, is linked into
    the Task's output (report-received, still completed) and sent to the PCP in the same transaction."""
    client = client_on_each_store
    case = submit_ok(client, submission())
    created = client.post("/fhir/DiagnosticReport", json=diagnostic_report(case), headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    assert_report_linked_and_sent(client, case, f"DiagnosticReport/{created.json()['id']}")


def test_90_2_17_procedure_7_consult_note_document_reference_in_a_transaction(client):
    """The issue: a DocumentReference (LOINC 11488-4 consult note, as US Core sends it) whose context.related names
    the request, posted in a transaction Bundle after a physician's approval, is linked and sent the same way."""
    case = in_review(client)
    decide_ok(client, case.task["id"], parameters("approve"))  # authorizes pract-15
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b8e4b7e-3a57-4c8e-9d55-3f2a1c9e7d01",
         "resource": document_reference(case, "PractitionerRole/role-15"),
         "request": {"method": "POST", "url": "DocumentReference"}}]}
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"]
    assert_report_linked_and_sent(client, case, "/".join(location.split("/")[-4:-2]), "PractitionerRole/role-15")


def test_a_report_for_a_case_not_approved_is_stored_but_linked_to_nothing(client):
    """A report for a request still in review (or not a consult note) is an ordinary resource: no output, no
    notice, the case untouched."""
    case = in_review(client)
    created = client.post("/fhir/DiagnosticReport", json=diagnostic_report(case), headers=FHIR_JSON)
    assert created.status_code == 201
    other_note = document_reference(submit_ok(client, submission(identifier="approved")))
    other_note["type"] = {"coding": [{"system": LOINC, "code": "34117-2", "display": "History and physical note"}]}
    assert client.post("/fhir/DocumentReference", json=other_note, headers=FHIR_JSON).status_code == 201
    task = read(client, f"Task/{case.task['id']}")
    assert task["businessStatus"]["coding"][0]["code"] == "physician-review" and len(task["output"]) == 1
    assert [n for n in search(client, "Communication") if "consultation report" in n["topic"]["text"]] == []


def test_a_report_written_by_put_is_linked_once_and_a_correction_sends_nothing_twice(client):
    """Every write path links a consultation report (here update-as-create with a client id); re-sending or
    correcting the same report neither adds a second output nor a second notice to the PCP."""
    case = submit_ok(client, submission())
    report = diagnostic_report(case) | {"id": "consult-1"}
    assert client.put("/fhir/DiagnosticReport/consult-1", json=report, headers=FHIR_JSON).status_code == 201
    assert_report_linked_and_sent(client, case, "DiagnosticReport/consult-1")
    corrected = report | {"conclusion": FINDINGS + " Addendum: no further tests needed."}
    assert client.put("/fhir/DiagnosticReport/consult-1", json=corrected, headers=FHIR_JSON).status_code == 200
    assert_report_linked_and_sent(client, case, "DiagnosticReport/consult-1")
    task = read(client, f"Task/{case.task['id']}")
    assert [o["valueReference"]["reference"] for o in task["output"]].count("DiagnosticReport/consult-1") == 1


def test_90_2_17_procedure_7_a_preliminary_report_is_stored_but_completes_nothing(client):
    """90.2.17 procedure 7 (the consultation report "should include the physician's findings and recommendations"):
    a preliminary report by the authorized consultant is stored, the case stays approved with no report and nothing
    goes to the PCP, and the answer says why (an OperationOutcome warning on the status); the final one completes
    it."""
    case = submit_ok(client, submission())
    draft = diagnostic_report(case) | {"status": "preliminary"}
    created = client.post("/fhir/DiagnosticReport", json=draft,
                          headers={**FHIR_JSON, "prefer": "return=OperationOutcome"})
    assert created.status_code == 201, created.text
    (issue,) = [i for i in created.json()["issue"] if i["code"] == "business-rule"]
    assert issue["severity"] == "warning" and issue["expression"] == ["DiagnosticReport.status"]
    task = read(client, f"Task/{case.task['id']}")
    assert task["businessStatus"]["coding"][0]["code"] == "approved" and len(task["output"]) == 1
    final = client.post("/fhir/DiagnosticReport", json=diagnostic_report(case), headers=FHIR_JSON)
    assert_report_linked_and_sent(client, case, f"DiagnosticReport/{final.json()['id']}")


def test_90_2_17_procedure_7_a_report_by_someone_else_than_the_consultant_completes_nothing(client):
    """90.2.17 procedure 7 ("physicians providing second opinions [...] submit a copy of their consultation"): a
    final report by the treating cardiologist pract-04, not the authorized pract-05, is stored with a warning
    naming the author element, and the case is unchanged."""
    case = submit_ok(client, submission())
    report = diagnostic_report(case) | {"performer": [{"reference": "Practitioner/pract-04"}]}
    created = client.post("/fhir/DiagnosticReport", json=report, headers={**FHIR_JSON, "prefer": "return=OperationOutcome"})
    assert created.status_code == 201, created.text
    (issue,) = [i for i in created.json()["issue"] if i["code"] == "business-rule"]
    assert issue["severity"] == "warning" and issue["expression"] == ["DiagnosticReport.performer"]
    assert read(client, f"Task/{case.task['id']}")["businessStatus"]["coding"][0]["code"] == "approved"
    assert search(client, f"Communication?about=DiagnosticReport/{created.headers['location'].split('/')[-3]}") == []
