"""Who may ask, what primary care means for the member's age, and plan data that works on any payer's directory
(Health Net "Second Opinion by a Physician"; policy 90.2.17; contract "Provider directory", "Review and
decisions"). Each test names its clause and the competitor the rule sets aside."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from fhir_server.second_opinion.categories import tag_value
from fhir_server.settings import PROJECT_ROOT

from tests.second_opinion.conftest import FHIR_JSON, example
from tests.second_opinion.helpers import entry_resource, post_submit, submission, submit_ok

PEDIATRICS = "208000000X"
FAMILY_MEDICINE = "207Q00000X"


def put(client: TestClient, resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


def refused_requester(client: TestClient, bundle: dict[str, Any]) -> dict[str, Any]:
    response = post_submit(client, bundle)
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.requester"], issue
    assert client.get("/fhir/Task", headers=FHIR_JSON).json().get("total", 0) == 0  # nothing stored
    return issue


def test_health_net_a_professional_who_neither_treats_nor_is_the_pcp_may_not_request(client):
    """Health Net: "when the second opinion is requested by a member or the member's physician"; 90.2.17: "The
    member, the primary care physician, or a specialist that is treating": pract-05, named neither as treating nor
    as PCP, is refused (422 on requester); the same request from the treating cardiologist pract-04 is answered."""
    refused_requester(client, submission(requester="Practitioner/pract-05", treating=[], requester_treats=False))
    assert submit_ok(client, submission(treating=["Practitioner/pract-04"])).review_action == "A1"


def test_90_2_17_another_patient_is_not_the_member(client):
    """90.2.17 "The member ... may request": a Patient who is not the subject cannot ask for someone else."""
    put(client, {"resourceType": "Patient", "id": "someone-else", "name": [{"family": "Else"}]})
    issue = refused_requester(client, submission("submit-out-of-network-choice", requester="Patient/someone-else"))
    assert "another Patient" in issue["diagnostics"]


def test_the_members_pcp_and_the_member_may_request(client):
    """90.2.17 "the member, the primary care physician": the member's own request (out-of-network sample) and the
    PCP's (third-opinion sample, requester the member's generalPractitioner role-12) are accepted."""
    assert post_submit(client, example("submit-out-of-network-choice")).status_code == 200
    assert post_submit(client, example("submit-bsp-cmc-third-opinion")).status_code == 200


def pediatrician_in_valley(client: TestClient) -> None:
    """A pediatrician in the member's group whose role id sorts before every other (role-00)."""
    put(client, {"resourceType": "Practitioner", "id": "pract-00", "name": [{"family": "Ito", "given": ["Mei"]}],
                 "qualification": [{"code": {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": PEDIATRICS}]},
                                    "issuer": {"display": "American Board of Pediatrics"}}]})
    put(client, {"resourceType": "PractitionerRole", "id": "role-00", "active": True,
                 "practitioner": {"reference": "Practitioner/pract-00"}, "organization": {"reference": "Organization/ppg-valley"},
                 "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": PEDIATRICS}]}],
                 "extension": [{"url": "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference",
                                "valueReference": {"reference": "Organization/ntwk-health-net"}}]})


def primary_care_for(born: str, specialty: str, identifier: str) -> dict[str, Any]:
    bundle = example("submit-primary-care")
    entry_resource(bundle, "Patient")["birthDate"] = born
    request = bundle["entry"][0]["resource"]
    request["performerType"] = {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": specialty}]}
    request["identifier"][0]["value"] = identifier
    return bundle


def test_primary_care_for_a_child_is_a_pediatrician(client):
    """90.2.17 6a "an appropriately qualified primary care physician" / Health Net "acting within the PCP's scope
    of practice", with the age table of mappings/specialty-equivalences.yaml: a 9-year-old asking for a family
    medicine second opinion goes to the group's pediatrician, not to the adult family physicians pract-02."""
    pediatrician_in_valley(client)
    answer = submit_ok(client, primary_care_for("2017-04-02", FAMILY_MEDICINE, "child"))
    assert answer.authorized_provider == "Practitioner/pract-00"


def test_primary_care_for_an_adult_is_never_a_pediatrician(client):
    """The same age table: an adult whose request names Pediatrics as the primary-care specialty gets an adult
    PCP of the group (pract-02), though the pediatrician matches the code exactly and sorts first."""
    pediatrician_in_valley(client)
    answer = submit_ok(client, primary_care_for("1986-07-22", PEDIATRICS, "adult"))
    assert answer.authorized_provider == "Practitioner/pract-02"


def test_a_child_with_no_pediatrician_anywhere_goes_to_a_physician(client):
    """The age table again: no pediatrician in the directory, so nobody qualifies for a child (adult PCPs are not
    appropriate): Health Net's nobody-qualified situation, physician review, no authorization."""
    answer = submit_ok(client, primary_care_for("2017-04-02", FAMILY_MEDICINE, "child-alone"))
    assert answer.business_status == "physician-review" and answer.authorized_provider is None


def test_plan_networks_are_found_by_the_identifier_value_whatever_its_system_on_each_store(client_on_each_store):
    """Contract "Provider directory": InsurancePlan "an identifier whose value is the plan key, whatever its system
    (each payer keeps its own)": with Health Net's own system on its InsurancePlan, a Valley member's neurosurgery
    request still finds pract-09 (Coastal, in the Health Net network): tier network, not out of network."""
    client = client_on_each_store
    plan = client.get("/fhir/InsurancePlan/plan-health-net-commercial", headers=FHIR_JSON).json()
    plan["identifier"] = [{"system": "https://www.healthnet.com/plans", "value": "health-net-commercial"}]
    put(client, plan)
    answer = submit_ok(client, submission(specialty="207T00000X", treating=[]))
    assert answer.authorized_provider == "Practitioner/pract-09" and tag_value(answer.tags, "tier") == "network"


def test_a_free_text_reason_is_reported_as_other(client):
    """90.2.17 procedure 11 ("coded by category"): a reason given only as text is counted under `other`, never as a
    category of its own words."""
    bundle = submission()
    bundle["entry"][0]["resource"]["reasonCode"] = [{"text": "I am worried about the stent"}]
    answer = submit_ok(client, bundle)
    assert tag_value(answer.tags, "reason") == "other"


def test_the_insurer_is_the_coverages_payor(client):
    """Contract "Review and decisions": "The insurer is the Coverage's payor": a Coverage paid by another Health Net
    entity names it as ClaimResponse.insurer (and as the Claim's)."""
    put(client, {"resourceType": "Organization", "id": "org-health-net-west", "name": "Health Net West",
                 "type": [{"coding": [{"system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS",
                                       "code": "payer"}]}]})
    bundle = submission()
    entry_resource(bundle, "Coverage")["payor"] = [{"reference": "Organization/org-health-net-west"}]
    answer = submit_ok(client, bundle)
    assert answer.claim_response["insurer"] == {"reference": "Organization/org-health-net-west"}
    assert answer.claim["insurer"] == {"reference": "Organization/org-health-net-west"}


def test_plan_data_names_no_resource_id_of_a_directory():
    """Contract: "plan data names no resource id of a particular directory": the same plan file works on any
    payer's directory (the expert panel is found by an identifier value, the insurer is the Coverage's payor)."""
    for path in (PROJECT_ROOT / "mappings" / "plans").glob("*.yaml"):
        assert not re.search(r"\b(Organization|Practitioner|PractitionerRole|InsurancePlan)/[\w.-]+", path.read_text()), path


def test_90_2_17_expert_panel_is_found_by_the_identifier_the_plan_names(client):
    """90.2.17 "An expert panel list is maintained and utilized for second opinion consultation referrals": a
    Sunrise IPA member (no cardiologist in the IPA) is proposed the panel's pract-19, found by the identifier value
    the plan data names, ahead of Harbor's pract-15 whose role id sorts first; without that identifier on the
    network there is no panel and pract-15 is proposed."""
    answer = submit_ok(client, submission(plan="blue-shield-promise-cmc", group="Organization/ipa-sunrise", treating=[]))
    assert answer.proposed_provider == "Practitioner/pract-19"
    panel = client.get("/fhir/Organization/ntwk-bsp-expert-panel", headers=FHIR_JSON).json()
    panel.pop("identifier")
    put(client, panel)
    again = submit_ok(client, submission(plan="blue-shield-promise-cmc", group="Organization/ipa-sunrise", treating=[],
                                         identifier="no-panel"))
    assert again.proposed_provider == "Practitioner/pract-15"
