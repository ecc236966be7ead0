"""``$second-opinion-report``: the committees' quarterly report (policy 90.2.17 procedures 11-12; the issue's
"Reports the committees need"), through HTTP."""

from __future__ import annotations

from fhir_server.second_opinion import references, reports
from fhir_server.second_opinion.categories import decision_tags
from fhir_server.second_opinion.codes import CANON
from fhir_server.services.validation import collect_issues

from tests.reports.helpers import (
    certified_at,
    utc,
    Q1,
    REPORTED_AT,
    at,
    csv_table,
    first_quarter,
    get_report,
    report_table,
    utc,
)
from tests.second_opinion.conftest import FHIR_JSON

MEASURE = f"{CANON}/Measure/second-opinion-decisions"
BSP, HN = "blue-shield-promise-cmc", "health-net-commercial"

# Q1 2026 of first_quarter(), every non-zero cell: (stratifier, stratum, decision) -> (count, overdue).
Q1_EXPECTED = {
    ("total", "total", "A1"): (3, 0),
    ("reason", "questions-surgery", "A1"): (2, 0),
    ("reason", "serious-condition", "A1"): (1, 0),
    ("tier", "group", "A1"): (2, 0),
    ("tier", "network", "A1"): (1, 0),
    ("group", "ipa-harbor", "A1"): (1, 0),
    ("group", "ppg-valley", "A1"): (2, 0),
    ("plan", BSP, "A1"): (1, 0),
    ("plan", HN, "A1"): (2, 0),
    ("total", "total", "A3"): (1, 1),
    ("reason", "questions-surgery", "A3"): (1, 1),
    ("tier", "group", "A3"): (1, 1),
    ("group", "ipa-harbor", "A3"): (1, 1),
    ("plan", BSP, "A3"): (1, 1),
    ("total", "total", "A4"): (2, 1),
    ("reason", "not-improving", "A4"): (1, 1),
    ("reason", "questions-surgery", "A4"): (1, 0),
    ("tier", "group", "A4"): (1, 1),
    ("tier", "none", "A4"): (1, 0),
    ("group", "ipa-harbor", "A4"): (1, 1),
    ("group", "ppg-valley", "A4"): (1, 0),
    ("plan", BSP, "A4"): (1, 1),
    ("plan", HN, "A4"): (1, 0),
    # 90.2.17 procedure 12 "provider trends": by requesting provider and by authorized consultant.
    ("requester", "Practitioner/pract-04", "A1"): (3, 0),
    ("requester", "Practitioner/pract-04", "A3"): (1, 1),
    ("requester", "Practitioner/pract-04", "A4"): (2, 1),
    ("consultant", "Practitioner/pract-05", "A1"): (2, 0),
    ("consultant", "Practitioner/pract-19", "A1"): (1, 0),
    ("consultant", "none", "A3"): (1, 1),
    ("consultant", "none", "A4"): (2, 1),
}


def non_zero(table: dict) -> dict:
    return {key: value for key, value in table.items() if value != (0, 0)}


def totals(client, query: str) -> dict[str, tuple[int, int]]:
    response = get_report(client, query)
    assert response.status_code == 200, response.text
    return {decision: counts for (stratifier, _, decision), counts in report_table(response.json()).items()
            if stratifier == "total"}


def test_90_2_17_procedures_11_12_q1_by_decision_and_category_on_each_store(client_on_each_store):
    """Approvals (A1), denials (A3) and pended cases (A4) of the quarter, each coded by reason, routing tier,
    physician group and plan; a case is counted once, by its latest decision (the CMO's approval and denial
    replace the pended answers); late decisions and pended cases past due are counted apart as overdue."""
    first_quarter(client_on_each_store)
    response = get_report(client_on_each_store)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    report = response.json()
    assert (report["resourceType"], report["status"], report["type"]) == ("MeasureReport", "complete", "summary")
    assert report["measure"] == MEASURE
    assert report["period"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert report["date"] == "2026-04-01T12:00:00Z"
    assert [g["code"]["coding"][0]["code"] for g in report["group"]] == ["A1", "A3", "A4"]
    table = report_table(report)
    assert non_zero(table) == Q1_EXPECTED
    # Every decision group lists the same strata (zeros included), so the table is complete.
    strata = [{key[:2] for key in table if key[2] == decision} for decision in ("A1", "A3", "A4")]
    assert strata[0] == strata[1] == strata[2]
    assert ("tier", "network", "A3") in table and table[("tier", "network", "A3")] == (0, 0)


def test_the_report_reads_every_page_on_each_store(client_on_each_store, monkeypatch):
    """The same quarter read two resources a page and one member per Task search: nothing lost or counted twice."""
    first_quarter(client_on_each_store)
    monkeypatch.setattr(references, "SEARCH_PAGE_SIZE", 2)
    monkeypatch.setattr(reports, "PATIENTS_PER_TASK_SEARCH", 1)
    assert non_zero(report_table(get_report(client_on_each_store).json())) == Q1_EXPECTED


def test_period_days_are_inclusive_days_of_the_plans_time_zone_on_each_store(client_on_each_store):
    """A decision on the first or last second of the period (Pacific time, the plan calendar's zone) is in it; one
    second outside either edge is not."""
    first_quarter(client_on_each_store)
    assert totals(client_on_each_store, "start=2026-01-01&end=2026-01-01")["A1"] == (1, 0)
    assert totals(client_on_each_store, "start=2025-12-31&end=2025-12-31")["A1"] == (1, 0)
    assert totals(client_on_each_store, "start=2026-03-31&end=2026-03-31") == {"A1": (1, 0), "A3": (0, 0), "A4": (1, 0)}
    assert totals(client_on_each_store, "start=2026-04-01&end=2026-06-30")["A1"] == (1, 0)
    assert totals(client_on_each_store, "start=2025-01-01&end=2026-12-31")["A1"] == (5, 0)


def test_a_pended_case_becomes_overdue_once_its_due_time_passes(client):
    """"Decisions past their due time are counted apart": the case in physician review since 3 March (due
    10 March 16:00 UTC) is on time in a report made before then, and overdue in one made after."""
    first_quarter(client)
    march_third = "start=2026-03-03&end=2026-03-03"
    at(client, utc("2026-03-10T15:59:59"))
    assert totals(client, march_third)["A4"] == (1, 0)
    at(client, utc("2026-03-10T16:00:01"))
    assert totals(client, march_third)["A4"] == (1, 1)


def test_csv_is_the_same_table_as_the_measure_report(client):
    """``Accept: text/csv`` (or ``_format=csv``) gives the MeasureReport's table: a header row, then per decision
    its total and one row per stratum."""
    first_quarter(client)
    report = get_report(client).json()
    for response in (get_report(client, accept="text/csv"), get_report(client, f"{Q1}&_format=csv")):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "second-opinion-report_2026-01-01_2026-03-31.csv" in response.headers["content-disposition"]
        header, table = csv_table(response.text)
        assert header == ["stratifier", "stratum", "decision", "count", "overdue"]
        assert table == report_table(report)
        assert non_zero(table) == Q1_EXPECTED


def test_post_with_parameters_gives_the_same_report(client):
    first_quarter(client)
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "start", "valueDate": "2026-01-01"}, {"name": "end", "valueDate": "2026-03-31"}],
    }
    posted = client.post("/fhir/$second-opinion-report", json=body, headers=FHIR_JSON)
    assert posted.status_code == 200, posted.text
    assert posted.json() == get_report(client).json()
    as_csv = client.post("/fhir/$second-opinion-report", json=body, headers={**FHIR_JSON, "accept": "text/csv"})
    assert csv_table(as_csv.text)[1] == report_table(posted.json())


def test_a_period_without_cases_reports_zeros(client):
    at(client, REPORTED_AT)
    report = get_report(client).json()
    assert [(g["code"]["coding"][0]["code"], [p["count"] for p in g["population"]]) for g in report["group"]] == [
        ("A1", [0, 0]), ("A3", [0, 0]), ("A4", [0, 0])]
    assert all(not s["stratum"] for g in report["group"] for s in g["stratifier"])
    assert csv_table(get_report(client, accept="text/csv").text)[1] == report_table(report)


def test_the_report_is_valid_r4_and_follows_the_published_measure(client):
    """The MeasureReport passes the server's own R4 validation, and its groups, populations and stratifiers are
    the ones the published Measure declares, in its order."""
    first_quarter(client)
    report = get_report(client).json()
    structure_issues, profile_issues = collect_issues(client.app.state.validator, report)
    assert [i for i in structure_issues + profile_issues if i.is_error] == []
    measure = client.get("/fhir/Measure/second-opinion-decisions", headers=FHIR_JSON).json()
    assert measure["url"] == report["measure"]

    def shape(groups: list[dict]) -> list:
        return [
            (g["code"]["coding"][0]["code"], [p["code"] for p in g["population"]],
             [s["code"][0]["text"] if isinstance(s["code"], list) else s["code"]["text"] for s in g["stratifier"]])
            for g in groups
        ]

    assert shape(report["group"]) == shape(measure["group"])


def test_metadata_lists_the_operation(client):
    statement = client.get("/fhir/metadata", headers=FHIR_JSON).json()
    operations = {o["name"]: o["definition"] for o in statement["rest"][0].get("operation", ())}
    assert operations["second-opinion-report"] == f"{CANON}/OperationDefinition/second-opinion-report"


def test_bad_periods_are_400_naming_every_problem(client):
    def problems(query: str) -> list[tuple[str, list[str]]]:
        response = get_report(client, query)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        return [(i["code"], i.get("expression", [])) for i in outcome["issue"]]

    assert problems("") == [("required", ["start"]), ("required", ["end"])]
    assert problems("start=2026-02-30&end=2026-1-05") == [("invalid", ["start"]), ("invalid", ["end"])]
    assert problems("start=2026-01&end=2026-03-31T00:00:00Z") == [("invalid", ["start"]), ("invalid", ["end"])]
    assert problems("start=2026-04-01&end=2026-03-31") == [("invalid", ["end"])]
    assert problems("start=2026-01-01&start=2026-02-01&end=2026-03-31") == [("invalid", ["start"])]


def test_bad_post_bodies_and_unservable_media_types(client):
    only_start = {"resourceType": "Parameters", "parameter": [{"name": "start", "valueDate": "2026-01-01"}]}
    missing = client.post("/fhir/$second-opinion-report", json=only_start, headers=FHIR_JSON)
    assert missing.status_code == 400
    assert missing.json()["issue"][0]["expression"] == ["Parameters.parameter.end"]
    as_string = {"resourceType": "Parameters", "parameter": [{"name": "start", "valueString": "2026-01-01"}]}
    wrong_type = client.post("/fhir/$second-opinion-report", json=as_string, headers=FHIR_JSON)
    assert wrong_type.status_code == 400
    assert wrong_type.json()["issue"][0]["expression"] == ["Parameters.parameter[0].valueDate"]
    not_parameters = client.post("/fhir/$second-opinion-report", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert not_parameters.status_code == 400
    xml = get_report(client, accept="application/fhir+xml")
    assert xml.status_code == 406 and xml.json()["resourceType"] == "OperationOutcome"


def test_a_tagged_claim_response_without_a_task_is_counted_never_overdue(client):
    """A ClaimResponse written through REST with the decision tags (say, migrated from an older system) and a
    date-only ``created`` counts in its decision group; without a Task there is no due time to miss."""
    migrated = {
        "resourceType": "ClaimResponse",
        "meta": {"tag": decision_tags(reason="care-concerns", decision="A3", tier="none", plan=HN, group=None)},
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "preauthorization",
        "patient": {"reference": "Patient/migrated"},
        "created": "2026-02-01",
        "insurer": {"reference": "Organization/health-net"},
        "outcome": "complete",
    }
    created = client.post("/fhir/ClaimResponse", json=migrated, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    at(client, REPORTED_AT)
    table = report_table(get_report(client).json())
    assert non_zero(table) == {
        ("total", "total", "A3"): (1, 0),
        ("reason", "care-concerns", "A3"): (1, 0),
        ("tier", "none", "A3"): (1, 0),
        ("group", "none", "A3"): (1, 0),
        ("requester", "member", "A3"): (1, 0),
        ("consultant", "none", "A3"): (1, 0),
        ("plan", HN, "A3"): (1, 0),
    }


def test_90_2_17_procedure_12_a_new_years_eve_evening_in_california_is_the_fourth_quarter(client):
    """90.2.17 procedure 12 (quarterly reports) in the plan's time zone: a certification at 20:00 Pacific on
    31 December 2026 (04:00 UTC on 1 January 2027) is counted in Q4 2026, not in Q1 2027; the member's own request
    is stratified under requester ``member``."""
    certified_at(client, utc("2027-01-01T04:00:00"), "new-years-eve")
    q4 = report_table(get_report(client, "start=2026-10-01&end=2026-12-31").json())
    assert q4[("total", "total", "A1")] == (1, 0)
    assert report_table(get_report(client, "start=2027-01-01&end=2027-03-31").json())[("total", "total", "A1")] == (0, 0)
    assert q4[("requester", "Practitioner/pract-04", "A1")] == (1, 0)
