"""Missing information (90.2.17 procedure 3: "If more information is needed the case manager will contact the
treating provider to obtain additional information"; Cal. Health & Safety Code §1367.01(h)(1): the decision time
counts from receipt of the information reasonably necessary)."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.case_management.helpers import search
from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import entry_resource, submit_ok


def information_requests(client, service_request_id: str, status: str | None = None) -> list[dict]:
    query = f"CommunicationRequest?based-on=ServiceRequest/{service_request_id}" + (f"&status={status}" if status else "")
    return search(client, query)


def test_90_2_17_procedure_3_the_treating_provider_is_asked_for_each_missing_item(client):
    """Procedure 3: pended for information, the case asks the requesting (treating) provider through FHIR, in the
    same transaction: one active CommunicationRequest to pract-04, basedOn the request, about the Task, one payload
    line per missing item naming its FHIRPath; it comes back in the answer."""
    pended = submit_ok(client, example("submit-incomplete"))
    assert pended.task["status"] == "on-hold"
    (asked,) = information_requests(client, pended.service_request["id"])
    assert asked["status"] == "active" and asked["recipient"] == [{"reference": "Practitioner/pract-04"}]
    assert asked["about"] == [{"reference": f"Task/{pended.task['id']}"}]
    lines = [p["contentString"] for p in asked["payload"]]
    assert len(lines) == len(pended.inputs("missing-information")) >= 1
    assert all(any(path in line for line in lines) for path in pended.inputs("missing-information"))
    assert asked["id"] in [e["resource"]["id"] for e in pended.bundle["entry"]]
    checked = client.post("/fhir/CommunicationRequest/$validate", json={k: v for k, v in asked.items() if k != "meta"},
                          headers=FHIR_JSON)
    assert not [i for i in checked.json()["issue"] if i["severity"] in ("error", "fatal")], checked.text


def test_90_2_17_procedure_3_the_answer_closes_the_request_for_information_on_each_store(client_on_each_store):
    """Procedure 3: the resubmission that supplies the information decides the case and closes the request
    (completed); no open request is left behind."""
    client = client_on_each_store
    pended = submit_ok(client, example("submit-incomplete"))
    decided = submit_ok(client, example("submit-health-net-cardiology"))
    assert decided.business_status == "approved"
    assert information_requests(client, pended.service_request["id"], "active") == []
    (closed,) = information_requests(client, pended.service_request["id"], "completed")
    assert closed["recipient"] == [{"reference": "Practitioner/pract-04"}]


def test_an_answer_still_incomplete_keeps_one_open_request_naming_what_is_still_missing(client):
    """Procedure 3 again: a resubmission that supplies part of what is missing keeps the case on hold with the one
    open request, now naming only what is still missing."""
    pended = submit_ok(client, example("submit-incomplete"))
    before = {p["contentString"] for p in information_requests(client, pended.service_request["id"])[0]["payload"]}
    bundle = example("submit-incomplete")
    entry_resource(bundle, "Patient")["birthDate"] = "1958-03-14"
    again = submit_ok(client, bundle)
    (still,) = information_requests(client, pended.service_request["id"], "active")
    after = {p["contentString"] for p in still["payload"]}
    assert again.task["status"] == "on-hold"  # the sample lacks more than the birth date
    assert after < before and not any("Patient.birthDate" in line for line in after)


def test_1367_01_h_1_the_decision_clock_restarts_when_the_information_arrives(client):
    """§1367.01(h)(1): received Wednesday 25 November 2026 but incomplete; the information arrives Tuesday
    1 December 09:00 Pacific: five business days from then (2, 3, 4, 7, 8 December) make the due time Tuesday
    8 December 09:00 Pacific, not 4 December as counted from the first receipt."""
    submit_ok(client, example("submit-incomplete"))
    client.app.state.clock.freeze(datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc))
    decided = submit_ok(client, example("submit-health-net-cardiology"))
    assert decided.task["restriction"]["period"]["end"] == "2026-12-08T17:00:00Z"
    assert decided.task["authoredOn"] == "2026-11-25T17:00:00Z"  # the receipt itself stays what it was
