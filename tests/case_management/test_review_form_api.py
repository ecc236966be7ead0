"""The review form and the consultative review (90.2.17 procedure 5: "The physician reviewing the request shall
document his findings and recommendations on the form below"; procedure 6: "If after review, the consultative
physician recommends the second opinion it will be approved [...] does not recommend [...] it will be denied")."""

from __future__ import annotations

from typing import Any

from tests.case_management.helpers import decide_ok, in_review, parameters, post_decide, search, validation_errors
from tests.second_opinion.conftest import EXAMPLES, FHIR_JSON, example, load_json
from tests.second_opinion.helpers import submission, submit_ok

REVIEW_FORM = "http://example.org/fhir/second-opinion/Questionnaire/second-opinion-review"
CONSULTANT = "Practitioner/pract-19"  # the expert panel's cardiologist, of the requested specialty


def answers(form: dict[str, Any]) -> dict[str, Any]:
    return {item["linkId"]: next(iter(item["answer"][0].values())) for item in form["item"]}


def test_the_review_form_is_a_questionnaire_the_server_hosts(client):
    """Procedure 5 "the form below": the form is a Questionnaire with the project canonical, served by the server."""
    response = client.get("/fhir/Questionnaire/second-opinion-review", headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    form = response.json()
    assert form["url"] == REVIEW_FORM
    assert {i["linkId"] for i in form["item"]} >= {"determination", "findings", "recommendation"}


def test_90_2_17_procedure_5_an_approval_documents_findings_on_the_form(client):
    """Procedure 5: an approval carries findings too: a completed QuestionnaireResponse of the form, by the reviewer,
    with the determination, findings and recommendation, referenced by the Task's output and the Provenance."""
    case = in_review(client)
    body = parameters("approve", findings="Three-vessel disease on angiography; surgery proposed.")
    body["parameter"].append({"name": "recommendation", "valueString": "A cardiothoracic opinion is warranted."})
    decision = decide_ok(client, case.task["id"], body)
    (form,) = decision.of_type("QuestionnaireResponse")
    assert form["questionnaire"] == REVIEW_FORM and form["status"] == "completed"
    assert form["author"] == {"reference": "Practitioner/pract-13"}
    given = answers(form)
    assert given["determination"]["code"] == "approve"
    assert given["findings"] == "Three-vessel disease on angiography; surgery proposed."
    assert given["recommendation"] == "A cardiothoracic opinion is warranted."
    reference = f"QuestionnaireResponse/{form['id']}"
    assert reference in [o["valueReference"]["reference"] for o in decision.task["output"]]
    assert decision.provenance["entity"][0]["what"]["reference"].startswith(reference + "/_history/")
    assert validation_errors(client, form) == [] and validation_errors(client, decision.task) == []


def test_90_2_17_procedure_5_a_decision_without_findings_is_refused(client):
    """Procedure 5: the findings are documented on the form for every determination: none given, 400."""
    case = in_review(client)
    response = post_decide(client, case.task["id"], parameters("approve", findings=None))
    assert response.status_code == 400 and "findings" in response.text


def refer(client) -> Any:
    case = in_review(client)
    referral = parameters("refer", consultativeReviewer={"valueReference": {"reference": CONSULTANT}})
    referred = decide_ok(client, case.task["id"], referral)
    assert referred.business_status == "consultative-review"
    return case


def test_90_2_17_procedure_6_the_consultants_recommendation_approves(client):
    """Procedure 6: the consultative physician recommends the second opinion: approved (A1), recorded on the form
    by the consultant, the proposed provider authorized."""
    case = refer(client)
    decision = decide_ok(client, case.task["id"], parameters("recommend", CONSULTANT, findings="Surgery questionable."))
    assert decision.review_action == "A1" and decision.business_status == "approved"
    assert decision.authorized_provider == "Practitioner/pract-15"
    forms = search(client, f"QuestionnaireResponse?_id={decision.of_type('QuestionnaireResponse')[0]['id']}")
    assert answers(forms[0])["determination"]["code"] == "recommend" and forms[0]["author"]["reference"] == CONSULTANT


def test_90_2_17_procedure_6_the_consultants_recommendation_against_denies(client):
    """Procedure 6: "does not recommend the second opinion, it will be denied": A3, the reason to the member."""
    case = refer(client)
    body = parameters("not-recommend", CONSULTANT, findings="Two concordant opinions already on file.",
                      reason={"valueString": "Two concordant specialist opinions already answer the question"})
    decision = decide_ok(client, case.task["id"], body)
    assert decision.review_action == "A3" and decision.business_status == "denied"


def test_90_2_17_procedure_6_only_the_referred_consultant_recommends_and_only_when_referred(client):
    """Procedure 6 is the consultant's: another physician (even the CMO) cannot "recommend" (422), nor can anyone
    before a referral (422 on the business status)."""
    fresh = in_review(client, identifier="not-referred")
    early = post_decide(client, fresh.task["id"], parameters("recommend", CONSULTANT))
    assert early.status_code == 422 and early.json()["issue"][0]["expression"] == ["Task.businessStatus"]
    case = refer(client)
    other = post_decide(client, case.task["id"], parameters("recommend", "Practitioner/pract-13"))
    assert other.status_code == 422 and "not 'Practitioner/pract-19'" in other.text


def test_90_2_17_procedure_6_a_referred_case_survives_a_resubmission(client):
    """Procedure 6: the consultative review decides; a resubmission of the same request while it is under way
    answers the stored case (still consultative-review), and the consultant's recommendation still decides it."""
    case = refer(client)
    again = submit_ok(client, submission(plan="blue-shield-promise-cmc", group="Organization/ipa-harbor", treating=[],
                                         identifier="in-review"))
    assert again.task["id"] == case.task["id"] and again.business_status == "consultative-review"
    decision = decide_ok(client, case.task["id"], parameters("recommend", CONSULTANT))
    assert decision.business_status == "approved"


def test_the_sample_review_with_findings_decides_the_third_opinion(client):
    """examples/decide-approve-with-findings.json on the third-opinion sample (90.2.17 Third Opinion 1, procedure 5):
    Harbor IPA's physician designee approves with findings; the form records them."""
    case = submit_ok(client, example("submit-bsp-cmc-third-opinion"))
    decision = decide_ok(client, case.task["id"], load_json(EXAMPLES / "decide-approve-with-findings.json"))
    assert decision.review_action == "A1"
    assert "Two prior cardiology opinions differ" in answers(decision.of_type("QuestionnaireResponse")[0])["findings"]


def test_90_2_17_purpose_a_consultant_involved_in_the_care_is_refused_at_referral(client):
    """90.2.17 purpose ("not previously involved"): on the third-opinion sample, pract-19 gave the second opinion, so
    the referral to him (examples/decide-refer-then-recommend.json) is refused; a referral to another cardiologist of
    the specialty not involved (pract-05, MD) is taken."""
    case = submit_ok(client, example("submit-bsp-cmc-third-opinion"))
    body = load_json(EXAMPLES / "decide-refer-then-recommend.json")
    refused = post_decide(client, case.task["id"], body)
    assert refused.status_code == 422 and "consultativeReviewer 'Practitioner/pract-19'" in refused.text
    for item in body["parameter"]:
        if item["name"] == "consultativeReviewer":
            item["valueReference"]["reference"] = "Practitioner/pract-05"
    assert decide_ok(client, case.task["id"], body).business_status == "consultative-review"
