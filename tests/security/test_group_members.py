"""A physician group sees its members' cases however the member's PCP is named (``Patient.generalPractitioner``):
the group itself, a PractitionerRole at the group, or a Practitioner whose active role is at the group. Another
group does not. On both stores.

The case is a Member Services redirection: the plan owns its Task, so the group's access comes from the member
alone (not from deciding the case)."""

from __future__ import annotations

import pytest

from tests.second_opinion.conftest import example
from tests.second_opinion.helpers import entry_resource
from tests.security.conftest import EHR_SCOPES, load_directory, register

GROUP_SCOPES = "system/Task.rs system/ServiceRequest.rs system/ClaimResponse.rs system/Patient.rs system/Claim.rs"
CASE_TYPES = ("ServiceRequest", "Task", "ClaimResponse")


@pytest.mark.parametrize("pcp", ["PractitionerRole/role-07", "Practitioner/pract-07"])
def test_the_members_group_sees_the_case_when_the_members_pcp_is_named(secure_each, pcp):
    load_directory(secure_each)
    ehr = register(secure_each, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    coastal = register(secure_each, "Organization/ppg-coastal", "group", GROUP_SCOPES).sign_in(GROUP_SCOPES)
    valley = register(secure_each, "Organization/ppg-valley", "group", GROUP_SCOPES).sign_in(GROUP_SCOPES)
    bundle = example("submit-out-of-network-choice")  # role-07 / pract-07: Coastal Physicians
    entry_resource(bundle, "Patient")["generalPractitioner"] = [{"reference": pcp}]

    answer = ehr.post("/fhir/ServiceRequest/$submit", bundle)
    assert answer.status_code == 200, answer.text
    case = {entry["resource"]["resourceType"]: entry["resource"] for entry in answer.json()["entry"]}
    assert case["Task"]["owner"]["reference"] == "Organization/org-health-net"  # the plan decides, not the group

    for resource_type in CASE_TYPES:
        url = f"/fhir/{resource_type}/{case[resource_type]['id']}"
        assert coastal.get(url).status_code == 200, resource_type
        assert valley.get(url).status_code == 404, resource_type
    assert coastal.get("/fhir/Task?_total=accurate").json()["total"] == 1
    assert valley.get("/fhir/Task?_total=accurate").json()["total"] == 0
