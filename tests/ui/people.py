"""The people of the page tests, their accounts, and the cases they work on (shared by the in-process page tests
and the browser tests, which talk to a real server over HTTP).

- ``dr-reed``: Thomas Reed, MD (``pract-13``), physician reviewer at Harbor IPA: decides Harbor's cases.
- ``dr-patel``: Priya Raman, MD (``pract-03``), physician reviewer at Valley Medical Group.
- ``cm-harbor``: a case manager of Harbor IPA (role ``group``): sees Harbor's cases, decides nothing.
- ``cm-valley``: a case manager of Valley Medical Group: sees Valley's cases only.
- ``committee``: the plan's UM/QM committee member (role ``plan``): sees everything and the quarterly report.
- ``ehr-harbor``: the EHR account the requests are submitted with; ``plan-admin`` loads the directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from fhir_server.security.accounts import add_account
from fhir_server.storage.base import ResourceOperations
from tests.case_management.helpers import BSP
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json
from tests.second_opinion.helpers import submission

NOW = datetime(2030, 3, 4, 15, 0, tzinfo=timezone.utc)  # a Monday
PASSWORD = "correct horse battery staple"
CASE_SCOPES = ("system/Task.rus system/ServiceRequest.rs system/ClaimResponse.rs system/Patient.rs system/Claim.rs "
               "system/Communication.rs system/CommunicationRequest.rs system/Questionnaire.rs")
EHR_SCOPES = ("system/ServiceRequest.crs system/Task.rus system/ClaimResponse.rs system/Claim.rs system/Patient.cruds "
              "system/Coverage.crus system/Condition.crus system/DocumentReference.crus system/DiagnosticReport.crus")


@dataclass(frozen=True)
class Person:
    username: str
    practitioner: str
    organization: str
    role: str
    scopes: str


PEOPLE = {
    person.username: person for person in (
        Person("dr-reed", "Practitioner/pract-13", "Organization/ipa-harbor", "reviewer", CASE_SCOPES),
        Person("dr-patel", "Practitioner/pract-03", "Organization/ppg-valley", "reviewer", CASE_SCOPES),
        Person("cm-harbor", "Practitioner/pract-12", "Organization/ipa-harbor", "group", CASE_SCOPES),
        Person("cm-valley", "Practitioner/pract-01", "Organization/ppg-valley", "group", CASE_SCOPES),
        Person("committee", "Practitioner/pract-19", "Organization/org-blue-shield-promise", "plan", "system/*.cruds"),
        Person("ehr-harbor", "Practitioner/pract-12", "Organization/ehr-harbor", "ehr", EHR_SCOPES),
        Person("plan-admin", "Practitioner/pract-19", "Organization/org-blue-shield-promise", "plan", "system/*.cruds"),
    )
}


async def add_people(store: ResourceOperations) -> None:
    for person in PEOPLE.values():
        await add_account(store, username=person.username, password=PASSWORD, practitioner=person.practitioner,
                          organization=person.organization, role=person.role, scopes=person.scopes.split())


class Http(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...
    def post(self, url: str, **kwargs: Any) -> Any: ...


def api_headers(http: Http, username: str) -> dict[str, str]:
    """Bearer headers of a person's API token (``[base]/auth/sign-in``)."""
    answer = http.post("/fhir/auth/sign-in", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {**FHIR_JSON, "Authorization": f"Bearer {answer.json()['access_token']}"}


@dataclass(frozen=True)
class Cases:
    """Task ids of the open cases: two at Harbor IPA in physician review (the second an expedited third opinion), one
    at Valley pended for information."""

    harbor: str
    harbor_second: str
    valley: str


def _task_of(answer: Any) -> str:
    assert answer.status_code == 200, answer.text
    return next(e["resource"]["id"] for e in answer.json()["entry"] if e["resource"]["resourceType"] == "Task")


def another_member(bundle: dict[str, Any]) -> dict[str, Any]:
    """The sample's member made another person (new identifiers and name), so the cases do not share a Patient."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in ("Patient", "Coverage"):
            for identifier in resource.get("identifier", ()):
                identifier["value"] += "-2"
        if resource["resourceType"] == "Patient":
            resource["name"] = [{"family": "Ortega", "given": ["Ana", "Lucia"]}]
    return bundle


def open_cases(http: Http) -> Cases:
    """Load the directory and submit the three cases, through the API."""
    loaded = http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=api_headers(http, "plan-admin"))
    assert loaded.status_code == 200, loaded.text
    ehr = api_headers(http, "ehr-harbor")
    submit = "/fhir/ServiceRequest/$submit"
    harbor = _task_of(http.post(submit, json=submission(plan=BSP, group="Organization/ipa-harbor", treating=[],
                                                        identifier="ui-harbor-1"), headers=ehr))
    second = submission("submit-bsp-cmc-third-opinion", priority="urgent")  # Robert James Thompson's third opinion
    harbor_second = _task_of(http.post(submit, json=second, headers=ehr))
    valley = _task_of(http.post(submit, json=another_member(submission("submit-incomplete", identifier="ui-valley-1")),
                                headers=ehr))
    return Cases(harbor, harbor_second, valley)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)
