"""The pages under /ui without a browser: who may see what (the API's tenants and route rules), sessions and CSRF,
the worklist's filters, counts, overdue marks and live rows, the case page, the report and its CSV."""

from __future__ import annotations

from datetime import timedelta

from fhir_server.security.sessions import SESSION_COOKIE
from tests.ui.people import api_headers, csrf_of


def test_pages_send_a_stranger_to_sign_in(pages, person):
    answer = person.get("/ui/worklist?status=physician-review")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=%2Fui%2Fworklist%3Fstatus%3Dphysician-review"
    live = person.get("/ui/worklist/rows", headers={"HX-Request": "true"})
    assert live.status_code == 204 and live.headers["HX-Redirect"].startswith("/ui/sign-in?next=")
    assert person.get("/ui/report").status_code == 303


def test_a_wrong_password_is_said_in_words(person):
    answer = person.sign_in("dr-reed", "not the password at all")
    assert answer.status_code == 401
    assert "The user name or the password is wrong." in answer.text
    assert person.get("/ui/worklist").status_code == 303


def test_signing_in_lands_on_the_worklist_and_signing_out_ends_the_session(person):
    answer = person.sign_in("dr-reed")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/worklist"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    page = person.get("/ui/worklist")
    assert page.status_code == 200 and "Signed in as <strong>dr-reed</strong>" in page.text
    out = person.post_form("/ui/worklist", "/ui/sign-out", {})
    assert out.status_code == 303
    assert person.get("/ui/worklist").status_code == 303


def test_forms_without_the_session_token_are_refused(pages, person):
    client, cases = pages
    person.sign_in("dr-reed")
    forged = client.post(f"/ui/cases/{cases.harbor}/decide", data={"csrf": "forged", "decision": "approve",
                                                                  "findings": "fine"}, follow_redirects=False)
    assert forged.status_code == 403 and "out of date" in forged.text
    task = client.get(f"/fhir/Task/{cases.harbor}", headers=api_headers(client, "committee")).json()
    assert task["status"] == "in-progress"
    client.cookies.clear()
    stranger = client.post("/ui/sign-in", data={"username": "dr-reed", "password": "x" * 20}, follow_redirects=False)
    assert stranger.status_code == 403


def test_a_forged_session_cookie_is_no_session(pages, person):
    client, _ = pages
    client.cookies.set(SESSION_COOKIE, "eyJjc3JmIjoiYSIsInRva2VuIjoiYiJ9.forged", path="/ui")
    assert person.get("/ui/worklist").status_code == 303


def test_the_worklist_shows_what_the_organization_may_see(pages, person):
    client, cases = pages
    person.sign_in("cm-valley")
    page = person.get("/ui/worklist").text
    assert cases.valley in page and cases.harbor not in page and cases.harbor_second not in page
    assert "1 of 1 open cases shown" in page
    refused = person.get(f"/ui/cases/{cases.harbor}")
    assert refused.status_code == 404 and "Not found" in refused.text  # the API's answer: it does not exist
    person.sign_in("committee")
    everything = person.get("/ui/worklist").text
    assert all(task in everything for task in (cases.harbor, cases.harbor_second, cases.valley))


def test_the_worklist_is_sorted_by_due_time_and_filtered_with_counts(pages, person):
    _, cases = pages
    person.sign_in("committee")
    page = person.get("/ui/worklist").text
    # the expedited Harbor case is due in 72 hours, before the routine ones (5 business days)
    assert page.index(cases.harbor_second) < page.index(cases.harbor)
    assert "Physician review (2)" in page and "Pended for information (1)" in page
    assert "Harbor IPA (2)" in page
    narrowed = person.get("/ui/worklist?status=information-missing").text
    assert cases.valley in narrowed and cases.harbor not in narrowed
    assert "1 of 3 open cases shown" in narrowed
    # counts of the other filters follow the chosen status
    assert "Harbor IPA (0)" in narrowed


def test_overdue_cases_are_marked_by_the_servers_clock(pages, person):
    client, cases = pages
    person.sign_in("committee")
    assert "Overdue" not in person.get("/ui/worklist").text
    client.app.state.clock.advance(timedelta(hours=73).total_seconds())
    person.sign_in("committee")  # the morning's session has ended meanwhile
    page = person.get("/ui/worklist").text
    assert "1 overdue" in page and page.count('<span class="badge late">Overdue</span>') == 1


def test_live_rows_answer_nothing_until_the_list_changes(pages, person):
    client, cases = pages
    person.sign_in("committee")
    rows = person.get("/ui/worklist/rows?status=physician-review")
    assert rows.status_code == 200 and 'hx-trigger="every 5000ms"' in rows.text
    seen = rows.text.split("seen=")[1].split('"')[0]
    assert person.get(f"/ui/worklist/rows?status=physician-review&seen={seen}").status_code == 204
    client.app.state.clock.advance(timedelta(hours=73).total_seconds())  # one case becomes overdue
    person.sign_in("committee")
    changed = person.get(f"/ui/worklist/rows?status=physician-review&seen={seen}")
    assert changed.status_code == 200 and "Overdue" in changed.text


def test_the_case_page_tells_the_request_in_words(pages, person):
    _, cases = pages
    person.sign_in("cm-harbor")
    page = person.get(f"/ui/cases/{cases.harbor}")
    assert page.status_code == 200
    for words in ("Maria Elena Gonzalez", "Cardiovascular Disease Physician", "James R. Whitaker, MD",
                  "Physician review", "Victor M. Castillo, MD", "Pended (A4)", "the member&#39;s physician group"):
        assert words in page.text, words
    assert "Record the review" not in page.text  # a case manager does not decide


def test_the_case_page_shows_every_candidate_routing_considered_and_why(pages, person):
    _, cases = pages
    person.sign_in("cm-harbor")
    page = person.get(f"/ui/cases/{cases.harbor}").text
    rows = {row.split('data-role="')[1].split('"')[0]: row for row in page.split("<tr ")[1:] if 'data-role="' in row}
    assert "<strong>Chosen</strong>" in rows["PractitionerRole/role-15"]  # Harbor's board-certified cardiologist
    assert "in the member&#39;s physician group" in rows["PractitionerRole/role-15"]
    assert "Not qualified" in rows["PractitionerRole/role-14"] and "not board-certified" in rows["PractitionerRole/role-14"]
    assert "Qualified, preference 2" in rows["PractitionerRole/role-19"]  # the plan network's expert panel
    assert "on the plan&#39;s expert panel" in rows["PractitionerRole/role-19"]


def test_the_case_page_names_what_is_missing(pages, person):
    _, cases = pages
    person.sign_in("cm-valley")
    page = person.get(f"/ui/cases/{cases.valley}").text
    assert "Pended for information" in page and "Nothing is missing." not in page


def test_the_report_is_the_plans(pages, person):
    person.sign_in("cm-harbor")
    refused = person.get("/ui/report")
    assert refused.status_code == 403 and "Not allowed" in refused.text
    assert "Quarterly report" not in person.get("/ui/worklist").text
    person.sign_in("committee")
    page = person.get("/ui/report?quarter=2030-Q1")
    assert page.status_code == 200 and "2030-01-01 to 2030-03-31" in page.text
    assert 'value="2030-Q1" selected' in page.text
    csv = person.get("/ui/report.csv?quarter=2030-Q1")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="second-opinion-report_2030-Q1.csv"' in csv.headers["content-disposition"]
    assert csv.text.startswith("stratifier,stratum,decision,count,overdue\r\n")
    assert "total,total,A4,3,0" in csv.text
    assert person.get("/ui/report?quarter=2030-Q5").status_code == 400


def test_the_api_still_wants_a_bearer_token(pages, person):
    client, _ = pages
    person.sign_in("committee")  # the session cookie is for the pages only
    assert client.get("/fhir/Task").status_code == 401


def test_a_session_ends_with_its_token(pages, person):
    client, _ = pages
    person.sign_in("cm-harbor")
    client.app.state.clock.advance(client.app.state.settings.session_seconds - 1)
    assert person.get("/ui/worklist").status_code == 200
    client.app.state.clock.advance(2)
    assert person.get("/ui/worklist").status_code == 303
