"""Decision notices (Communication) of automatic decisions at ``$submit``: who receives them and what they say."""

from __future__ import annotations

import re

from tests.case_management.helpers import decide_ok, in_review, notices_of, parameters, recipients, search
from tests.second_opinion.conftest import example
from tests.second_opinion.helpers import submission, submit_ok


JARGON = re.compile(r"\bPPG\b|\bPCP\b|90\.2\.17|§|questions-surgery|not-improving|opinions-differ|\bA[134]\b")


def by_recipient(notices: list[dict]) -> dict[str, str]:
    return {n["recipient"][0]["reference"]: n["payload"][0]["contentString"] for n in notices}


def test_health_net_automatic_certification_notifies_member_provider_and_consultant(client):
    """Health Net automatic certification: notices to the member, the requesting physician and the authorized
    consultant, basedOn the request, about the authorization and the Task. The member's, in plain words: the
    consultant with the address and phone of the directory, the approval number and its last day, that tests need a
    separate approval ("They do not include additional tests, which have to be approved separately"), Member
    Services' phone; no code, policy number or PPG/PCP jargon. The provider's names the patient."""
    answer = submit_ok(client, submission())
    notices = notices_of(answer.bundle)
    patient = answer.service_request["subject"]["reference"]
    assert recipients(notices) == sorted([patient, "Practitioner/pract-04", "Practitioner/pract-05"])
    for notice in notices:
        assert notice["status"] == "completed" and notice["subject"]["reference"] == patient
        assert notice["basedOn"] == [{"reference": f"ServiceRequest/{answer.service_request['id']}"}]
        assert notice["about"] == [
            {"reference": f"ClaimResponse/{answer.claim_response['id']}"}, {"reference": f"Task/{answer.task['id']}"}]
        assert notice["sender"]["reference"] == "Organization/ppg-valley"  # the delegated PPG decided
    texts = by_recipient(notices)
    member = texts[patient]
    for words in ("Dear Maria Elena Gonzalez", "Angela Moreno, MD", "4100 Ventura Canyon Avenue", "(818) 555-0140",
                  answer.authorization_number, "February 23, 2027", "separate approval", "1-800-522-0088",
                  "whether the recommended surgery is reasonable or necessary"):
        assert words in member, words
    assert not JARGON.search(member), JARGON.search(member)
    assert "Maria Elena Gonzalez (born" in texts["Practitioner/pract-04"] and "copayment" in texts["Practitioner/pract-04"]
    assert "authorized a one-time second-opinion consultation with you" in texts["Practitioner/pract-05"]
    assert len(search(client, f"Communication?about=ClaimResponse/{answer.claim_response['id']}")) == 3


def test_a_member_notice_says_a_coded_reason_in_plain_words(client):
    """Plain language: the reason code ``not-improving`` reaches the member as words, never as the code."""
    answer = submit_ok(client, submission(reason="not-improving", identifier="plain"))
    member = by_recipient(notices_of(answer.bundle))[answer.service_request["subject"]["reference"]]
    assert "a treatment plan that is not improving the condition" in member and "not-improving" not in member


def test_90_2_17_a_member_whose_out_of_network_choice_was_set_aside_is_told_so(client):
    """90.2.17 procedure 6b (specialty care follows the PPG, the contracted specialists, then out of network) and
    procedure 5 (both notified): the member named pract-04, outside the Blue Shield Promise network; the CMO approves
    the in-network pract-15, and the member's notice says their choice was not followed and why."""
    case = in_review(client, performer="Practitioner/pract-04", identifier="choice")
    decision = decide_ok(client, case.task["id"], parameters("approve"))
    member = by_recipient(decision.notices)[case.service_request["subject"]["reference"]]
    assert "You asked to see James R. Whitaker, MD" in member and "Victor M. Castillo, MD" in member
    assert "1-855-905-3825" in member and not JARGON.search(member)


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
    assert len(notices_of(decided.bundle)) == 3
    again = submit_ok(client, example("submit-health-net-cardiology"))
    assert notices_of(again.bundle) == []
    assert len(search(client, f"Communication?about=Task/{decided.task['id']}")) == 3


def test_a_member_request_notifies_the_member_and_the_members_pcp(client):
    """90.2.17 procedure 5 "both the member and provider": when the member asked, the provider told is the PCP."""
    bundle = submission(identifier="member-asks")
    request = bundle["entry"][0]["resource"]
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    request["requester"] = {"reference": patient_url}
    answer = submit_ok(client, bundle)
    pcp = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")["generalPractitioner"][0]
    assert recipients(notices_of(answer.bundle)) == sorted(
        [answer.service_request["subject"]["reference"], pcp["reference"], answer.authorized_provider])


def test_health_net_denial_by_a_physician_tells_both_parties_of_the_grievance_right(client):
    """Health Net: a request the rules cannot certify (a reason outside the five situations) goes to a physician;
    the physician's denial (the only way to A3) notifies the member and the requesting physician (nobody is
    authorized, so no consultant). The member's notice gives the reviewer's reason once, the grievance right with how
    and by when (180 days, Member Services' phone), the independent medical review with how and by when (6 months,
    the DMHC); the provider's names the patient and the reason once; the authorization carries the plan's note."""
    case = submit_ok(client, submission(reason="399211009", identifier="hn-deny"))
    assert case.business_status == "physician-review"
    words = "The requested opinion concerns a condition already reviewed this month"
    decision = decide_ok(client, case.task["id"], parameters("deny", reviewer="Practitioner/pract-03",
                                                             reason={"valueString": words}))
    assert decision.review_action == "A3" and "grievance with Health Net" in decision.notes
    patient = case.service_request["subject"]["reference"]
    assert recipients(decision.notices) == sorted([patient, "Practitioner/pract-04"])
    texts = by_recipient(decision.notices)
    member, provider = texts[patient], texts["Practitioner/pract-04"]
    for needed in ("has not approved", "grievance", "180 calendar days", "1-800-522-0088", "Independent Medical Review",
                   "6 months", "1-888-466-2219"):
        assert needed in member, needed
    assert member.count(words) == 1 and provider.count(words) == 1
    assert not JARGON.search(member) and "Maria Elena Gonzalez (born" in provider


def test_a_reviewers_bare_code_never_reaches_the_member(client):
    """Plain language: a denial whose reason is only a code (``NMN``, not medically necessary, without words) is
    told to the member without the code; a coded reason with a display is told by its display."""
    case = in_review(client, identifier="coded-reason")
    bare = {"valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/139", "code": "NMN"}]}}
    decision = decide_ok(client, case.task["id"], parameters("deny", reason=bare))
    member = by_recipient(decision.notices)[case.service_request["subject"]["reference"]]
    assert "NMN" not in member and "Member Services can explain it" in member
    shown = in_review(client, identifier="display-reason")
    words = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "183932001",
                                                   "display": "Procedure contraindicated"}]}}
    member = by_recipient(decide_ok(client, shown.task["id"], parameters("deny", reason=words)).notices)[
        shown.service_request["subject"]["reference"]]
    assert "Procedure contraindicated" in member and "183932001" not in member
