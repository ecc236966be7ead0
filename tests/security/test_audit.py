"""The audit trail through HTTP on both stores: an AuditEvent for every interaction (refused ones included) saying
who, what, when, from where and the outcome; the plan searches it; nobody changes or deletes it."""

from __future__ import annotations

from tests.security.conftest import ALL, EHR_SCOPES, register


def events(plan, query: str) -> list[dict]:
    response = plan.get(f"/fhir/AuditEvent?{query}&_count=100")
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json().get("entry", []) if entry["search"]["mode"] == "match"]


def test_a_read_is_recorded_with_who_what_when_where_and_outcome(secure_each):
    plan = register(secure_each, "Organization/the-plan", "plan", ALL).sign_in(ALL)
    ehr = register(secure_each, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    patient = ehr.post("/fhir/Patient", {"resourceType": "Patient", "gender": "male"}).json()
    assert ehr.get(f"/fhir/Patient/{patient['id']}").status_code == 200

    recorded = events(plan, f"entity=Patient/{patient['id']}")
    read = next(event for event in recorded if event["subtype"][0]["code"] == "read")
    assert read["action"] == "R" and read["outcome"] == "0"
    assert read["recorded"].startswith("2030-03-04T15:00:00")
    client_agent = read["agent"][0]
    assert client_agent["who"]["identifier"]["value"] == ehr.client_id
    assert client_agent["network"]["address"] == "testclient"
    assert {"reference": "Organization/ehr-a"} in [agent["who"] for agent in read["agent"]]
    assert {e["subtype"][0]["code"] for e in recorded} >= {"create", "read"}
    assert events(plan, f"patient=Patient/{patient['id']}")
    coverage = ehr.post("/fhir/Coverage", {"resourceType": "Coverage", "status": "active",
                                           "beneficiary": {"reference": f"Patient/{patient['id']}"},
                                           "payor": [{"reference": "Organization/the-plan"}]}).json()
    assert ehr.get(f"/fhir/Coverage/{coverage['id']}").status_code == 200
    about_patient = events(plan, f"patient=Patient/{patient['id']}")
    assert f"Coverage/{coverage['id']}" in {e["what"]["reference"] for event in about_patient for e in event["entity"]
                                            if "what" in e}  # a read of the member's Coverage is about the member
    assert len(events(plan, "agent=Organization/ehr-a")) >= 2
    assert events(plan, "date=ge2030-03-04") and not events(plan, "date=lt2030-03-04")


def test_refused_requests_are_recorded_too(secure):
    plan = register(secure, "Organization/the-plan", "plan", ALL).sign_in(ALL)
    assert secure.get("/fhir/Patient/anyone").status_code == 401
    narrow = register(secure, "Organization/ehr-a", "ehr", "system/Patient.rs").sign_in("system/Patient.rs")
    assert narrow.delete("/fhir/Patient/anyone").status_code == 403
    refused = events(plan, "entity=Patient/anyone")
    assert sorted(event["outcome"] for event in refused) == ["4", "4"]
    unauthenticated = next(event for event in refused if event["subtype"][0]["code"] == "read")
    assert unauthenticated["agent"][0]["who"]["display"] == "unauthenticated"
    assert next(event for event in refused if event["subtype"][0]["code"] == "delete")["action"] == "D"
    token_requests = [e for e in events(plan, "subtype=operation") if "auth/token" in e["outcomeDesc"]]
    assert token_requests  # signing in is on the trail as well


def test_audit_events_cannot_be_changed_or_deleted_through_the_api(secure_each):
    plan = register(secure_each, "Organization/the-plan", "plan", ALL).sign_in(ALL)
    assert plan.get("/fhir/Organization?name=x").status_code == 200
    event = events(plan, "agent=Organization/the-plan")[0]
    url = f"/fhir/AuditEvent/{event['id']}"
    assert plan.put(url, {**event, "outcome": "0", "outcomeDesc": "nothing happened"}).status_code == 405
    assert plan.delete(url).status_code == 405
    assert plan.post("/fhir/AuditEvent", {k: v for k, v in event.items() if k not in ("id", "meta")}).status_code == 405
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "DELETE", "url": f"AuditEvent/{event['id']}"}}]}
    assert plan.post("/fhir", batch).json()["entry"][0]["response"]["status"].startswith("405")
    assert plan.get(url).json()["outcomeDesc"] == event["outcomeDesc"]


def test_an_ehr_does_not_read_the_trail(secure):
    register(secure, "Organization/the-plan", "plan", ALL)
    ehr = register(secure, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    ehr.get("/fhir/Patient")
    response = ehr.get("/fhir/AuditEvent?_total=accurate")
    assert response.status_code == 200 and response.json()["total"] == 0
