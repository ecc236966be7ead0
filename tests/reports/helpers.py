"""A first quarter of second-opinion cases placed in time, and the report read the way a committee reads it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi.testclient import TestClient

from tests.case_management.helpers import decide_ok, in_review, parameters
from tests.second_opinion.conftest import FHIR_JSON
from tests.second_opinion.helpers import Answer, submission, submit_ok

Q1 = "start=2026-01-01&end=2026-03-31"
REPORTED_AT = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)
# The expert-panel cardiologist of the plan's network: assigning him re-tiers a case to ``network``.
EXPERT_PANEL = {"valueReference": {"reference": "PractitionerRole/role-19"}}
DENIAL_REASON = {"valueString": "Two concordant cardiology opinions already on file"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def at(client: TestClient, moment: datetime) -> None:
    """Move the server's clock."""
    client.app.state.clock.freeze(moment)  # type: ignore[attr-defined]


def certified_at(client: TestClient, moment: datetime, identifier: str) -> Answer:
    """A Health Net cardiology request, certified at once (reason questions-surgery, tier group, ppg-valley)."""
    at(client, moment)
    answer = submit_ok(client, submission(identifier=identifier))
    assert answer.review_action == "A1"
    return answer


@dataclass(frozen=True)
class Quarter:
    """The cases of :func:`first_quarter`, by what the report should make of them."""

    answers: dict[str, Answer]


def first_quarter(client: TestClient) -> Quarter:
    """Cases around Q1 2026 (the report is made on 1 April 12:00 UTC):

    - certified exactly on the period's first and last second in the plan's time zone (Pacific: 08:00 UTC on
      1 January, 06:59:59 UTC on 1 April under daylight time) (in), and one second outside each edge (out);
    - a Blue Shield Promise case (serious-condition) approved by the CMO the day after it arrived with the expert
      panel's cardiologist (A1, on time, tier network);
    - one denied three weeks after it arrived (A3, past its due time: overdue);
    - one (not-improving) in physician review since 3 March (A4, past its due time at report time: overdue);
    - one pended for missing information on 31 March (A4, not yet due).
    """
    answers = {
        "before": certified_at(client, utc("2026-01-01T07:59:59"), "before"),
        "first-second": certified_at(client, utc("2026-01-01T08:00:00"), "first-second"),
        "last-second": certified_at(client, utc("2026-04-01T06:59:59"), "last-second"),
        "after": certified_at(client, utc("2026-04-01T07:00:00"), "after"),
    }
    at(client, utc("2026-03-10T17:00:00"))
    approved = in_review(client, identifier="approved", reason="serious-condition")
    at(client, utc("2026-03-11T17:00:00"))
    answers["approved"] = decide_ok(client, approved.task["id"], parameters("approve", assignedProvider=EXPERT_PANEL))
    at(client, utc("2026-03-02T17:00:00"))
    denied = in_review(client, identifier="denied-late")
    at(client, utc("2026-03-25T17:00:00"))
    answers["denied-late"] = decide_ok(client, denied.task["id"], parameters("deny", reason=DENIAL_REASON))
    at(client, utc("2026-03-03T17:00:00"))
    answers["in-review"] = in_review(client, identifier="in-review-overdue", reason="not-improving")
    at(client, utc("2026-03-31T20:00:00"))
    answers["incomplete"] = submit_ok(client, submission("submit-incomplete", identifier="incomplete"))
    at(client, REPORTED_AT)
    return Quarter(answers)


def get_report(client: TestClient, query: str = Q1, **headers: str) -> Any:
    return client.get(f"/fhir/$second-opinion-report?{query}", headers={**FHIR_JSON, **headers})


def report_table(report: dict[str, Any]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(stratifier, stratum, decision) -> (count, overdue) read from the MeasureReport; ``total`` rows for groups."""

    def counts(populations: list[dict[str, Any]]) -> tuple[int, int]:
        by_code = {p["code"].get("text") or p["code"]["coding"][0]["code"]: p["count"] for p in populations}
        assert len(by_code) == len(populations) == 2
        return by_code["initial-population"], by_code["overdue"]

    table = {}
    for group in report["group"]:
        decision = group["code"]["coding"][0]["code"]
        table[("total", "total", decision)] = counts(group["population"])
        for stratifier in group["stratifier"]:
            for stratum in stratifier["stratum"]:
                value = stratum["value"]
                code = value["coding"][0]["code"] if value.get("coding") else value["text"]
                key = (stratifier["code"][0]["text"], code, decision)
                table[key] = counts(stratum["population"])
    return table


def csv_table(text: str) -> tuple[list[str], dict[tuple[str, str, str], tuple[int, int]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], {(s, v, d): (int(n), int(o)) for s, v, d, n, o in rows[1:]}
