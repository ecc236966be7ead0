"""The review form: each physician review of a case documented as a ``QuestionnaireResponse``.

90.2.17 procedure 5: "The physician reviewing the request shall document his findings and recommendations on the
form below"; procedure 6: the consultative physician recommends or does not recommend the second opinion. The form
is the Questionnaire ``{canon}/Questionnaire/second-opinion-review`` (profiles/); every ``$decide`` (approvals too,
not only denials) answers it, and the Task's ``output`` and the decision's Provenance reference the answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fhir_server.second_opinion.codes import CANON
from fhir_server.second_opinion.workflow import instant

REVIEW_FORM = f"{CANON}/Questionnaire/second-opinion-review"
DETERMINATION_SYSTEM = f"{CANON}/CodeSystem/second-opinion-review-determination"
DETERMINATIONS = {
    "approve": "Approve",
    "deny": "Deny",
    "refer": "Refer for a consultative review",
    "recommend": "Recommend the second opinion",
    "not-recommend": "Do not recommend the second opinion",
}
REVIEW_OUTPUT_TYPE = {"coding": [{"system": "http://loinc.org", "code": "74465-6", "display": "Questionnaire response Document"}],
                      "text": "review form"}


def _text(link_id: str, text: str, value: str | None) -> list[dict[str, Any]]:
    return [{"linkId": link_id, "text": text, "answer": [{"valueString": value}]}] if value else []


def review_form(
    *,
    task: dict[str, Any],
    determination: str,
    reviewer: str,
    findings: str,
    recommendation: str | None,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The completed review form of one decision on ``task``."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(uuid.uuid4()),
        "questionnaire": REVIEW_FORM,
        "status": "completed",
        "basedOn": [task["focus"]],
        "subject": task["for"],
        "authored": instant(now),
        "author": {"reference": reviewer},
        "item": [
            {"linkId": "determination", "text": "Determination", "answer": [{"valueCoding": {
                "system": DETERMINATION_SYSTEM, "code": determination, "display": DETERMINATIONS[determination]}}]},
            *_text("findings", "Findings", findings),
            *_text("recommendation", "Recommendation", recommendation),
            *_text("reason", "Reason given to the member and the provider", reason),
        ],
    }


def with_review_output(task: dict[str, Any], form_reference: str) -> dict[str, Any]:
    """``task`` with the review form appended to its outputs (after the authorization)."""
    return {**task, "output": [*task.get("output", ()), {"type": REVIEW_OUTPUT_TYPE, "valueReference": {"reference": form_reference}}]}
