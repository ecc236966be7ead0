"""Decision notices (Communication) of automatic decisions at ``$submit``: who receives them and what they say."""

from __future__ import annotations

from tests.case_management.helpers import decide_ok, in_review, notices_of, parameters, recipients, search
from tests.second_opinion.conftest import example
from tests.second_opinion.helpers import submission, submit_ok


def test_health_net_automatic_certification_notifies_member_and_requesting_physician(client):
    """Health Net automatic certification and the issue ("every decision creates Communication notices to the
    member and to the requesting provider"): two completed notices, basedOn the request, about the authorization
    and the Task, in the plan's words: the authorization number, the authorized professional by name, why, and the
    plan's notes (copayment; tests back to the PPG/PCP)."""
    answer = submit_ok(client, submission())
    notices = notices_of(answer.bundle)
    patient = answer.service_request["subject"]["reference"]
    assert recipients(notices) == sorted([patient, "Practitioner/pract-04"])
    for notice in notices:
        assert notice["status"] == "completed" and notice["subject"]["reference"] == patient
        assert notice["basedOn"] == [{"reference": f"ServiceRequest/{answer.service_request['id']}"}]
        assert notice["about"] == [
            {"reference": f"ClaimResponse/{answer.claim_response['id']}"}, {"reference": f"Task/{answer.task['id']}"}]
        assert notice["sender"]["reference"] == "Organization/ppg-valley"  # the delegated PPG decided
        text = notice["payload"][0]["contentString"]
        assert answer.authorization_number in text and "Angela Moreno, MD" in text and "approved" in text
        assert "Reason: the request qualifies" in text and "copayment" in text
    assert len(search(client, f"Communication?about=ClaimResponse/{answer.claim_response['id']}")) == 2


def test_member_services_redirection_is_a_decision_the_parties_hear_of(client):
    """Health Net Out-of-Network Requests: the redirection to Member Services is announced, with why (the in-network
    professional available) and the plan's Member Services note."""
    answer = submit_ok(client, example("submit-out-of-network-choice"))
    notices = notices_of(answer.bundle)
    assert len(notices) == 2
    text = notices[0]["payload"][0]["contentString"]
    assert "Member Services" in text and "Elizabeth Chen, MD" in text


def test_pended_requests_send_no_decision_notice_and_a_repeated_answer_sends_none_again(client):
    """Only decisions are announced: a case pended for the CMO (90.2.17 procedure 4) or for information sends
    nothing; the stored answer of a decided request, submitted again, sends no second notice."""
    assert notices_of(in_review(client).bundle) == []
    assert notices_of(submit_ok(client, example("submit-incomplete")).bundle) == []
    decided = submit_ok(client, example("submit-health-net-cardiology"))  # the same identifier: now complete
    assert len(notices_of(decided.bundle)) == 2
    again = submit_ok(client, example("submit-health-net-cardiology"))
    assert notices_of(again.bundle) == []
    assert len(search(client, f"Communication?about=Task/{decided.task['id']}")) == 2


def test_a_member_request_notifies_the_member_and_the_members_pcp(client):
    """90.2.17 procedure 5 "both the member and provider": when the member asked, the provider told is the PCP."""
    bundle = submission(identifier="member-asks")
    request = bundle["entry"][0]["resource"]
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    request["requester"] = {"reference": patient_url}
    answer = submit_ok(client, bundle)
    pcp = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")["generalPractitioner"][0]
    assert recipients(notices_of(answer.bundle)) == sorted([answer.service_request["subject"]["reference"], pcp["reference"]])


def test_health_net_denial_by_a_physician_tells_both_parties_of_the_grievance_right(client):
    """Health Net: a request the rules cannot certify (a reason outside the five situations) goes to a physician;
    the physician's denial (the only way to A3) notifies the member and the requesting physician, each notice in
    Health Net's words with its grievance text, and the authorization carries the same note."""
    case = submit_ok(client, submission(reason="399211009", identifier="hn-deny"))
    assert case.business_status == "physician-review"
    reason = {"valueString": "The requested opinion concerns a condition already reviewed this month"}
    decision = decide_ok(client, case.task["id"], parameters("deny", reviewer="Practitioner/pract-03", reason=reason))
    assert decision.review_action == "A3" and "grievance with Health Net" in decision.notes
    patient = case.service_request["subject"]["reference"]
    assert recipients(decision.notices) == sorted([patient, "Practitioner/pract-04"])
    for notice in decision.notices:
        text = notice["payload"][0]["contentString"]
        assert "Health Net has not approved" in text and "grievance with Health Net" in text
