"""The review on the case page, on each store: a physician reviewer decides through the form rendered from the
stored Questionnaire, refusals of $decide come back in words with the answers kept, and the decided case leaves
the worklist of the organization while the organization's other people see the change too."""

from __future__ import annotations

from tests.ui.conftest import Browserless
from tests.ui.people import api_headers


def test_a_reviewer_decides_with_findings_and_the_worklist_changes(pages_to_change):
    client, cases = pages_to_change
    reviewer = Browserless(client)
    reviewer.sign_in("dr-reed")
    case_url = f"/ui/cases/{cases.harbor}"
    page = reviewer.get(case_url).text
    assert "Second-opinion review form" in page and 'name="findings"' in page

    answer = reviewer.post_form(case_url, f"{case_url}/decide", {
        "decision": "approve", "findings": "Elective bypass surgery; two opinions are reasonable.",
        "recommendation": "A board-certified cardiologist of the member's group."})
    assert answer.status_code == 303 and answer.headers["location"] == f"{case_url}?decided=approve"
    decided = reviewer.get(answer.headers["location"]).text
    assert "Your review is recorded" in decided and "Certified (A1)" in decided
    assert "Victor M. Castillo, MD" in decided  # the authorized provider, and the notices sent
    assert decided.count('class="message"') >= 3  # the review form's answers and the notices
    assert "Elective bypass surgery; two opinions are reasonable." in decided and "Thomas Reed, MD" in decided

    task = client.get(f"/fhir/Task/{cases.harbor}", headers=api_headers(client, "committee")).json()
    assert task["status"] == "completed"
    form = next(o["valueReference"]["reference"] for o in task["output"] if o["valueReference"]["reference"].startswith("QuestionnaireResponse/"))
    answers = client.get(f"/fhir/{form}", headers=api_headers(client, "committee")).json()
    findings = next(i for i in answers["item"] if i["linkId"] == "findings")
    assert findings["answer"][0]["valueString"] == "Elective bypass surgery; two opinions are reasonable."
    assert answers["author"]["reference"] == "Practitioner/pract-13"

    colleague = Browserless(client)
    colleague.sign_in("cm-harbor")
    listed = colleague.get("/ui/worklist").text
    assert cases.harbor not in listed and cases.harbor_second in listed


def test_refusals_of_decide_are_said_in_words_and_nothing_is_decided(pages_to_change):
    client, cases = pages_to_change
    reviewer = Browserless(client)
    reviewer.sign_in("dr-reed")
    case_url = f"/ui/cases/{cases.harbor}"
    unqualified = reviewer.post_form(case_url, f"{case_url}/decide", {
        "decision": "approve", "findings": "Fine.", "assignedProvider": "role-14"})  # not board-certified
    assert unqualified.status_code == 422
    assert "Nothing was decided" in unqualified.text and "role-14" in unqualified.text
    assert 'value="role-14"' in unqualified.text and "Fine.</textarea>" in unqualified.text
    no_reason = reviewer.post_form(case_url, f"{case_url}/decide", {"decision": "deny", "findings": "Not needed."})
    assert no_reason.status_code == 400 and "a denial needs a reason" in no_reason.text
    task = client.get(f"/fhir/Task/{cases.harbor}", headers=api_headers(client, "committee")).json()
    assert task["status"] == "in-progress"


def test_an_incomplete_case_is_not_decided(pages_to_change):
    client, cases = pages_to_change
    reviewer = Browserless(client)
    reviewer.sign_in("dr-patel")
    case_url = f"/ui/cases/{cases.valley}"
    answer = reviewer.post_form(case_url, f"{case_url}/decide", {"decision": "approve", "findings": "Fine."})
    assert answer.status_code == 422 and "Nothing was decided" in answer.text
    assert "is on hold for missing information" in answer.text


def test_only_physician_reviewers_review(pages_to_change):
    client, cases = pages_to_change
    case_url = f"/ui/cases/{cases.harbor}"
    for username in ("cm-harbor", "committee"):  # a case manager; the plan's committee
        someone = Browserless(client)
        someone.sign_in(username)
        assert "Record the review" not in someone.get(case_url).text
        answer = someone.post_form(case_url, f"{case_url}/decide", {"decision": "approve", "findings": "Fine."})
        assert answer.status_code == 403 and "Not allowed" in answer.text, username
