"""Per-organization access through HTTP, on both stores: an EHR sees and changes only what its organization sent;
another tenant's resource answers exactly like an unknown id (reads, version reads, history, updates, deletes)
and never shows up in a search, a ``_total`` or an ``_include``; the plan sees everything; everyone reads the
provider directory; a client cannot stamp itself into another tenant's data."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import EHR_SCOPES, load_directory, register


def patient(family: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}], "gender": "female", **fields}


@pytest.fixture
def parties(secure_each):
    plan = load_directory(secure_each)
    ehr_a = register(secure_each, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    ehr_b = register(secure_each, "Organization/ehr-b", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    return plan, ehr_a, ehr_b


def created(party, body) -> dict[str, Any]:
    response = party.post(f"/fhir/{body['resourceType']}", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_another_tenants_resource_is_as_unknown_as_an_unknown_id(parties):
    plan, ehr_a, ehr_b = parties
    mine = created(ehr_a, patient("Alpha"))
    url = f"/fhir/Patient/{mine['id']}"
    unknown = ehr_b.get("/fhir/Patient/never-was")
    for response in (ehr_b.get(url), ehr_b.get(f"{url}/_history/1"), ehr_b.get(f"{url}/_history"), ehr_b.delete(url)):
        assert response.status_code == 404, response.text
        assert response.json()["issue"][0]["diagnostics"] == unknown.json()["issue"][0]["diagnostics"].replace(
            "never-was", mine["id"])
    assert ehr_a.get(url).json()["name"][0]["family"] == "Alpha"  # untouched
    assert plan.get(url).status_code == 200


def test_an_update_of_another_tenants_id_answers_as_an_update_of_an_unknown_id(parties):
    """FHIR's update: "405 - the resource did not exist prior to the update, and the server does not allow client
    defined ids". A tenant client may not create under an id it chooses, so an unknown id and another tenant's
    answer alike (status, Allow, OperationOutcome), in a transaction too; the plan still may; the
    CapabilityStatement says so."""
    plan, ehr_a, ehr_b = parties
    mine = created(ehr_a, patient("Alpha"))

    def put(party, resource_id):
        return party.put(f"/fhir/Patient/{resource_id}", {**patient("Hijack"), "id": resource_id})

    theirs, unknown = put(ehr_b, mine["id"]), put(ehr_b, "never-was")
    assert theirs.status_code == unknown.status_code == 405, theirs.text
    assert theirs.headers["allow"] == unknown.headers["allow"]
    assert theirs.json() == {**unknown.json(), "issue": [
        {**issue, "diagnostics": issue["diagnostics"].replace("never-was", mine["id"])} for issue in unknown.json()["issue"]]}
    in_bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {**patient("Hijack"), "id": resource_id}, "request": {"method": "PUT", "url": f"Patient/{resource_id}"}}
        for resource_id in (mine["id"], "never-was")]}
    statuses = [entry["response"]["status"] for entry in ehr_b.post("/fhir", in_bundle).json()["entry"]]
    assert [status[:3] for status in statuses] == ["405", "405"]
    assert ehr_b.get("/fhir/Patient/never-was").status_code == 404  # nothing was created
    assert ehr_a.get(f"/fhir/Patient/{mine['id']}").json()["name"][0]["family"] == "Alpha"

    assert put(ehr_a, mine["id"]).status_code == 200  # its own resource: an ordinary update
    assert put(plan, "chosen-by-the-plan").status_code == 201  # the plan creates under its own ids
    statement = ehr_b.client.get("/fhir/metadata").json()
    update_create = {entry["type"]: entry["updateCreate"] for entry in statement["rest"][0]["resource"]}
    assert update_create["Patient"] is False and update_create["Organization"] is True


def test_a_deleted_resource_of_another_tenant_is_404_not_410(parties):
    _, ehr_a, ehr_b = parties
    mine = created(ehr_a, patient("Gone"))
    assert ehr_a.delete(f"/fhir/Patient/{mine['id']}").status_code == 204
    assert ehr_a.get(f"/fhir/Patient/{mine['id']}").status_code == 410
    assert ehr_b.get(f"/fhir/Patient/{mine['id']}").status_code == 404


def test_searches_and_totals_show_only_the_callers_tenant(parties):
    plan, ehr_a, ehr_b = parties
    created(ehr_a, patient("Alpha"))
    created(ehr_a, patient("Alpha"))
    created(ehr_b, patient("Alpha"))

    def total(party, query="family=alpha") -> int:
        response = party.get(f"/fhir/Patient?{query}&_total=accurate")
        assert response.status_code == 200, response.text
        return response.json()["total"]

    assert (total(ehr_a), total(ehr_b), total(plan)) == (2, 1, 3)
    assert total(ehr_b, "_summary=count") == 1
    posted = ehr_b.client.post("/fhir/Patient/_search", data={"family": "alpha"},
                               headers={"Authorization": f"Bearer {ehr_b.token}"})
    assert posted.json()["total"] == 1


def test_includes_never_bring_in_another_tenants_resources(parties):
    _, ehr_a, ehr_b = parties
    theirs = created(ehr_a, patient("Alpha"))
    mine = created(ehr_b, patient("Beta"))
    for beneficiary in (theirs["id"], mine["id"]):
        coverage = {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": f"Patient/{beneficiary}"},
                    "payor": [{"reference": "Organization/org-health-net"}]}
        created(ehr_b, coverage)
    bundle = ehr_b.get("/fhir/Coverage?_include=Coverage:beneficiary").json()
    included = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included == [mine["id"]]
    created(ehr_a, {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": f"Patient/{mine['id']}"},
                    "payor": [{"reference": "Organization/org-health-net"}]})
    rev = ehr_b.get(f"/fhir/Patient?_id={mine['id']}&_revinclude=Coverage:beneficiary").json()
    assert len([e for e in rev["entry"] if e["search"]["mode"] == "include"]) == 1  # its own Coverage only


def test_everyone_reads_the_provider_directory(parties):
    _, ehr_a, ehr_b = parties
    for party in (ehr_a, ehr_b):
        assert party.get("/fhir/Practitioner/pract-04").status_code == 200
        assert party.get("/fhir/Organization?type=prvgrp").json()["entry"]


def test_a_client_cannot_stamp_itself_into_another_tenant(parties):
    _, ehr_a, ehr_b = parties
    forged = patient("Sneaky", meta={"security": [
        {"system": "http://example.org/fhir/second-opinion/CodeSystem/tenant", "code": "Organization/ehr-a"}]})
    mine = created(ehr_b, forged)
    assert [label["code"] for label in mine["meta"]["security"]] == ["Organization/ehr-b"]
    assert ehr_a.get(f"/fhir/Patient/{mine['id']}").status_code == 404


def test_an_update_by_the_plan_keeps_the_ehrs_access(parties):
    plan, ehr_a, _ = parties
    mine = created(ehr_a, patient("Alpha"))
    updated = plan.put(f"/fhir/Patient/{mine['id']}", {**patient("Alpha-2"), "id": mine["id"]})
    assert updated.status_code == 200, updated.text
    assert ehr_a.get(f"/fhir/Patient/{mine['id']}").json()["name"][0]["family"] == "Alpha-2"


def test_bundle_entries_are_checked_one_by_one(parties):
    _, ehr_a, ehr_b = parties
    theirs = created(ehr_a, patient("Alpha"))
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("New"), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": f"Patient/{theirs['id']}"}},
    ]}
    batch = {**transaction, "type": "batch"}
    answer = ehr_b.post("/fhir", batch)
    assert answer.status_code == 200, answer.text
    statuses = [entry["response"]["status"] for entry in answer.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("404")
    no_scope = {**batch, "entry": [{"resource": {"resourceType": "Observation", "status": "final",
                                                  "code": {"text": "x"}}, "request": {"method": "POST", "url": "Observation"}}]}
    refused = ehr_b.post("/fhir", no_scope).json()["entry"][0]["response"]["status"]
    assert refused.startswith("403")


def test_security_records_are_invisible_even_to_the_plan(parties):
    from fhir_server.security.clients import CLIENT_KIND
    from fhir_server.security.records import record_id

    plan, ehr_a, _ = parties
    own = created(plan, {"resourceType": "Basic", "code": {"text": "a plan note"}})
    listed = plan.get("/fhir/Basic?_count=100").json()["entry"]
    assert own["id"] in {entry["resource"]["id"] for entry in listed}
    assert not any("security-record" in str(entry["resource"].get("code")) for entry in listed)
    secret = record_id(CLIENT_KIND, ehr_a.client_id)
    assert plan.get(f"/fhir/Basic/{secret}").status_code == 404
    assert plan.put(f"/fhir/Basic/{secret}", {"resourceType": "Basic", "id": secret, "code": {"text": "mine"}}).status_code == 404
    assert plan.get("/fhir/_history?_count=1000").json().get("entry", []) and not any(
        entry.get("resource", {}).get("id") == secret for entry in plan.get("/fhir/_history?_count=1000").json()["entry"])


def test_a_patch_of_another_tenants_resource_is_404(parties):
    _, ehr_a, ehr_b = parties
    mine = created(ehr_a, patient("Alpha"))
    url = f"/fhir/Patient/{mine['id']}"
    patch = [{"op": "replace", "path": "/gender", "value": "male"}]
    def headers(party):
        return {"Authorization": f"Bearer {party.token}", "content-type": "application/json-patch+json"}

    assert ehr_b.client.patch(url, json=patch, headers=headers(ehr_b)).status_code == 404
    own = ehr_a.client.patch(url, json=patch, headers=headers(ehr_a))
    assert own.status_code == 200, own.text
    assert ehr_a.get(url).json()["gender"] == "male"
