"""Focused regressions for what the generative robustness tests found: inputs once answered 500, or accepted
when they are not valid FHIR."""

from __future__ import annotations

import copy

import pytest

from tests.robustness.conftest import EXAMPLES_DIR, FHIR_JSON, Prober, load_json

TOPIC = "http://example.org/fhir/second-opinion/SubscriptionTopic/second-opinion-decision"


async def test_a_version_beyond_64_bits_is_a_bad_request_not_a_store_overflow(prober: Prober) -> None:
    created = await prober.send("POST", "/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    patient_id = created.json()["id"]
    huge = "9" * 23
    vread = await prober.send("GET", f"/Patient/{patient_id}/_history/{huge}")
    update = await prober.send("PUT", f"/Patient/{patient_id}", headers={**FHIR_JSON, "If-Match": f'W/"{huge}"'},
                               json={"resourceType": "Patient", "id": patient_id})
    delete = await prober.send("DELETE", f"/Patient/{patient_id}", headers={"If-Match": f'W/"{huge}"'})
    assert [vread.status_code, update.status_code, delete.status_code] == [400, 400, 400]
    assert (await prober.send("GET", f"/Patient/{patient_id}/_history/{2**63 - 1}")).status_code == 404
    prober.verdict()


async def test_a_subscription_whose_channel_is_not_an_object_is_refused_as_invalid_fhir(prober: Prober) -> None:
    subscription = {"resourceType": "Subscription", "status": "requested", "reason": "fuzz", "criteria": TOPIC,
                    "channel": "rest-hook"}
    created = await prober.send("POST", "/Subscription", json=subscription, headers=FHIR_JSON)
    updated = await prober.send("PUT", "/Subscription/fuzz", json={**subscription, "id": "fuzz"}, headers=FHIR_JSON)
    assert created.status_code == updated.status_code == 400
    assert any("channel" in expression for issue in created.json()["issue"] for expression in issue["expression"])
    prober.verdict()


async def test_operation_parameters_of_the_wrong_shape_are_bad_requests(prober: Prober) -> None:
    not_a_list = {"resourceType": "Parameters", "parameter": 5}
    code_as_object = {"resourceType": "Parameters", "parameter": [
        {"name": "decision", "valueCode": {"approve": True}},
        {"name": "reviewer", "valueReference": {"reference": "Practitioner/pract-13"}}]}
    answers = [
        await prober.send("POST", "/Task/unknown/$decide", json=not_a_list, headers=FHIR_JSON),
        await prober.send("POST", "/Task/unknown/$decide", json=code_as_object, headers=FHIR_JSON),
        await prober.send("POST", "/$second-opinion-report", json=not_a_list, headers=FHIR_JSON),
        await prober.send("POST", "/Patient/$validate", json=not_a_list, headers=FHIR_JSON),
    ]
    assert [answer.status_code for answer in answers] == [400, 400, 400, 400]
    assert answers[1].json()["issue"][0]["expression"] == ["Parameters.parameter[0].value"]
    prober.verdict()


async def test_a_report_period_ending_on_the_last_representable_day_is_a_bad_request(prober: Prober) -> None:
    answer = await prober.send("GET", "/$second-opinion-report?start=2026-01-01&end=9999-12-31")
    assert answer.status_code == 400 and answer.json()["issue"][0]["expression"] == ["end"]
    prober.verdict()


async def test_submit_entries_of_the_wrong_shape_are_bad_requests(prober: Prober) -> None:
    submission = load_json(EXAMPLES_DIR / "submit-health-net-cardiology.json")
    numeric_full_url = copy.deepcopy(submission)
    numeric_full_url["entry"][1]["fullUrl"] = 5
    listed_type = copy.deepcopy(submission)
    listed_type["entry"][1]["resource"]["resourceType"] = ["Patient"]
    entry_not_a_list = {**submission, "entry": 5}
    for bundle in (numeric_full_url, listed_type, entry_not_a_list):
        answer = await prober.send("POST", "/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)
        assert answer.status_code == 400 and answer.json()["issue"][0]["expression"] == ["Bundle.entry"]
    prober.verdict()


async def test_a_coding_system_that_is_not_a_string_is_reported_not_looked_up(prober: Prober) -> None:
    request = load_json(EXAMPLES_DIR / "submit-health-net-cardiology.json")["entry"][0]["resource"]
    request["reasonCode"][0]["coding"][0]["system"] = ["http://example.org/fhir/second-opinion/CodeSystem/x"]
    validated = await prober.send("POST", "/ServiceRequest/$validate", json=request, headers=FHIR_JSON)
    created = await prober.send("POST", "/ServiceRequest", json=request, headers=FHIR_JSON)
    assert validated.status_code == 200 and created.status_code == 400
    assert "ServiceRequest.reasonCode[0].coding[0].system" in {
        e for issue in created.json()["issue"] for e in issue.get("expression", [])}
    prober.verdict()


async def test_a_bundle_type_that_is_not_a_string_is_a_bad_request(prober: Prober) -> None:
    for kind in (["batch"], {"transaction": True}):
        answer = await prober.send("POST", "", json={"resourceType": "Bundle", "type": kind, "entry": []},
                                   headers=FHIR_JSON)
        assert answer.status_code == 400 and answer.json()["issue"][0]["expression"] == ["Bundle.type"]
    prober.verdict()


@pytest.mark.parametrize("reference", ["#x", "Patient/", "Patient//1", "Unknown/1", "Organization/a b"])
async def test_a_reference_no_server_can_follow_is_a_bad_request(prober: Prober, reference: str) -> None:
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": reference}}
    answer = await prober.send("POST", "/Patient", json=patient, headers=FHIR_JSON)
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["expression"] == ["Patient.managingOrganization.reference"]
    prober.verdict()


@pytest.mark.parametrize("reference", ["#org", "Organization/org-1", "Organization/org-1/_history/2",
                                       "http://elsewhere.example/fhir/Organization/1", "urn:oid:1.2.3"])
async def test_references_of_every_followable_form_are_accepted(prober: Prober, reference: str) -> None:
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": reference},
               "contained": [{"resourceType": "Organization", "id": "org", "name": "Contained"}]}
    if reference != "#org":
        del patient["contained"]
    answer = await prober.send("POST", "/Patient", json=patient, headers=FHIR_JSON)
    assert answer.status_code == 201, answer.text
    prober.verdict()


async def test_an_unnamed_conditional_parameter_is_named_visibly(prober: Prober) -> None:
    answer = await prober.send("POST", "/Patient", json={"resourceType": "Patient"},
                               headers={**FHIR_JSON, "If-None-Exist": "=x"})
    assert answer.status_code == 400 and answer.json()["issue"][0]["diagnostics"].endswith("for Patient: ''")
    prober.verdict()
