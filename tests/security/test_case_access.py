"""The second-opinion case under security: the EHR that submitted it, the physician group that decides it, the plan
and another EHR each see what they should; ``$decide`` records the reviewer from the token; Subscriptions take the
subscriber's organization from its token."""

from __future__ import annotations

import pytest

from tests.case_management.helpers import BSP, parameters
from tests.second_opinion.conftest import example
from tests.second_opinion.helpers import submission
from tests.security.conftest import EHR_SCOPES, load_directory, register

REVIEWER_SCOPES = "system/Task.rus system/ServiceRequest.rs system/ClaimResponse.rs system/Patient.rs system/Claim.rs"


@pytest.fixture
def case(secure):
    plan = load_directory(secure)
    ehr = register(secure, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    other = register(secure, "Organization/ehr-b", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    bundle = submission(plan=BSP, group="Organization/ipa-harbor", treating=[], identifier="secured")
    answer = ehr.post("/fhir/ServiceRequest/$submit", bundle)
    assert answer.status_code == 200, answer.text
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in answer.json()["entry"]}
    assert resources["Task"]["owner"]["reference"] == "Organization/ipa-harbor"
    return plan, ehr, other, resources


def test_the_case_is_visible_to_its_ehr_its_group_and_the_plan_only(secure, case):
    plan, ehr, other, resources = case
    group = register(secure, "Organization/ipa-harbor", "group", REVIEWER_SCOPES).sign_in(REVIEWER_SCOPES)
    stranger_group = register(secure, "Organization/ppg-valley", "group", REVIEWER_SCOPES).sign_in(REVIEWER_SCOPES)
    references = [f"{t}/{resources[t]['id']}" for t in ("Task", "ServiceRequest", "ClaimResponse")]
    for reference in [*references, resources["Task"]["for"]["reference"], resources["ClaimResponse"]["request"]["reference"]]:
        resource_type = reference.split("/")[0]
        url = f"/fhir/{reference}"
        assert ehr.get(url).status_code == 200, resource_type
        assert group.get(url).status_code == 200, resource_type
        assert plan.get(url).status_code == 200, resource_type
        assert other.get(url).status_code == 404, resource_type
        assert stranger_group.get(url).status_code == 404, resource_type
    assert other.get("/fhir/Task?_total=accurate").json()["total"] == 0
    assert group.get("/fhir/Task?_total=accurate").json()["total"] == 1


def test_another_ehr_cannot_find_the_case(case):
    _, _, other, resources = case
    assert other.get("/fhir/ServiceRequest?identifier=secured&_total=accurate").json()["total"] == 0
    assert other.get(f"/fhir/ClaimResponse?request={resources['ClaimResponse']['request']['reference']}").json().get("entry", []) == []


def test_decide_records_the_reviewer_of_the_token_not_the_parameter(secure, case):
    _, ehr, _, resources = case
    reviewer = register(secure, "Organization/ipa-harbor", "reviewer", REVIEWER_SCOPES,
                        practitioner="Practitioner/pract-13").sign_in(REVIEWER_SCOPES)
    task_id = resources["Task"]["id"]
    refused = ehr.post(f"/fhir/Task/{task_id}/$decide", parameters(reviewer="Practitioner/pract-13"))
    assert refused.status_code == 403  # an EHR does not decide
    decided = reviewer.post(f"/fhir/Task/{task_id}/$decide", parameters(reviewer="Practitioner/pract-99"))
    assert decided.status_code == 200, decided.text
    provenance = next(e["resource"] for e in decided.json()["entry"] if e["resource"]["resourceType"] == "Provenance")
    authors = [agent["who"]["reference"] for agent in provenance["agent"]]
    assert "Practitioner/pract-13" in authors and "Practitioner/pract-99" not in authors
    # the EHR still sees the decided case, whose new versions the reviewer wrote, and the notices of the decision
    assert ehr.get(f"/fhir/Task/{task_id}").json()["status"] == "completed"
    for notice in (e["resource"] for e in decided.json()["entry"] if e["resource"]["resourceType"] == "Communication"):
        assert ehr.get(f"/fhir/Communication/{notice['id']}").status_code == 200


def test_the_plan_names_the_reviewer_it_acts_for(secure, case):
    plan, _, _, resources = case
    decided = plan.post(f"/fhir/Task/{resources['Task']['id']}/$decide", parameters(reviewer="Practitioner/pract-13"))
    assert decided.status_code == 200, decided.text
    provenance = next(e["resource"] for e in decided.json()["entry"] if e["resource"]["resourceType"] == "Provenance")
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/pract-13"


def test_a_reviewer_client_without_a_physician_cannot_decide(secure, case):
    _, _, _, resources = case
    nobody = register(secure, "Organization/ipa-harbor", "reviewer", REVIEWER_SCOPES).sign_in(REVIEWER_SCOPES)
    response = nobody.post(f"/fhir/Task/{resources['Task']['id']}/$decide", parameters(reviewer="Practitioner/pract-13"))
    assert response.status_code == 403, response.text


def test_a_subscription_naming_another_organization_is_refused(secure):
    load_directory(secure)
    scopes = "system/Subscription.crus"
    valley = register(secure, "Organization/ppg-valley", "group", scopes).sign_in(scopes)
    harbor = register(secure, "Organization/ipa-harbor", "group", scopes).sign_in(scopes)
    plan = register(secure, "Organization/org-blue-shield-promise", "plan", scopes).sign_in(scopes)
    subscription = example("subscription-valley")  # Task?organization=Organization/ppg-valley
    subscription["channel"]["endpoint"] = "http://127.0.0.1:9/notifications"  # nobody listens: the handshake fails

    refused = harbor.post("/fhir/Subscription", subscription)
    assert refused.status_code == 422, refused.text
    assert any(issue["code"] == "forbidden" for issue in refused.json()["issue"])
    assert valley.post("/fhir/Subscription", subscription).status_code == 201
    assert plan.post("/fhir/Subscription", subscription).status_code == 201  # the plan sees every organization
