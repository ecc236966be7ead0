"""The Task that tracks a second-opinion request: its state for each outcome, its due time, its inputs.

States (contract "The workflow"): an automatic certification completes the Task at once; a physician or
Member Services review leaves it ``in-progress``; missing information puts it ``on-hold`` until a resubmission
supplies it; a physician's referral for consultative review keeps it ``in-progress`` as ``consultative-review``.

Why the stored history of a ``$submit`` Task starts at its routed state, not at ``requested``/``received``/
``accepted``: the server receives, accepts and routes the request inside the one HTTP exchange and the one
transaction that stores it (PAS: the answer in the same exchange), so no reader could ever observe those
states, and writing them as versions would only send each subscriber notifications of states that never held.
What they would say is kept on the Task itself: ``authoredOn`` is the receipt, ``owner`` the organization that
accepted the case, ``lastModified`` the decision. A Task a client creates through REST keeps its own
``requested`` version as the first of its history. ``rejected`` is never written by the server: only an owner
refusing the case itself sets it.

The due time (``Task.restriction.period.end``) comes from the plan's data: expedited requests
72 hours from receipt, routine ones the plan's standard time frame in business days of its calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from fhir_server.second_opinion.codes import (
    EXPEDITED_PRIORITIES,
    STATUS_SYSTEM,
    TASK_CODE_SYSTEM,
    TASK_INPUT_SYSTEM,
    TASK_PROFILE,
)
from fhir_server.second_opinion.completeness import MissingItem
from fhir_server.second_opinion.plans import DueTimes
from fhir_server.second_opinion.routing import RoutingDecision


@dataclass(frozen=True)
class OutcomeState:
    task_status: str
    business_status: str
    review_action: str  # X12 306
    notes_key: str  # which of the plan's processNote lists applies
    display: str


OUTCOME_STATES: dict[str, OutcomeState] = {
    "certify": OutcomeState("completed", "approved", "A1", "certified", "Certified"),
    "physician-review": OutcomeState("in-progress", "physician-review", "A4", "pended", "Pended for physician review"),
    "member-services": OutcomeState("in-progress", "member-services", "A4", "member_services", "Pended: Member Services"),
    "information-missing": OutcomeState("on-hold", "information-missing", "A4", "information_missing", "Pended: information missing"),
    # 90.2.17 procedure 5: the CMO or physician designee may "refer it for a consultative review with a physician
    # within the same specialty" ($decide ``refer``): still pended, still in review, no determination yet.
    "consultative-review": OutcomeState("in-progress", "consultative-review", "A4", "pended", "Pended for consultative review"),
    # Only a physician reviewer's $decide reaches this state: routing never denies.
    "deny": OutcomeState("completed", "denied", "A3", "denied", "Not certified"),
}
FINAL_TASK_STATUSES = frozenset({"completed", "rejected", "cancelled", "failed"})


def business_status(code: str, display: str) -> dict[str, Any]:
    """``Task.businessStatus`` from the status CodeSystem (one shape for every writer of the Task)."""
    return {"coding": [{"system": STATUS_SYSTEM, "code": code}], "text": display}


def is_expedited(priority: str | None) -> bool:
    return priority in EXPEDITED_PRIORITIES


def due_time(received: datetime, expedited: bool, due: DueTimes) -> datetime:
    """Decision due time: ``expedited_hours`` after receipt, or ``routine_business_days`` business days after
    it at the same local time (weekends and holidays of the plan's calendar skipped)."""
    if expedited:
        return received + timedelta(hours=due.expedited_hours)
    zone = ZoneInfo(due.calendar.time_zone)
    local = received.astimezone(zone)
    day, remaining = local.date(), due.routine_business_days
    while remaining:
        day += timedelta(days=1)
        if due.calendar.is_business_day(day):
            remaining -= 1
    naive = datetime.combine(day, local.time().replace(tzinfo=None))
    return naive.replace(tzinfo=zone).astimezone(received.tzinfo)


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _reference(target: str | None) -> dict[str, str] | None:
    return {"reference": target} if target else None


def task_inputs(decision: RoutingDecision, missing: Sequence[MissingItem]) -> list[dict[str, Any]]:
    inputs = [
        {
            "type": {"coding": [{"system": TASK_INPUT_SYSTEM, "code": "missing-information"}], "text": item.description},
            "valueString": item.expression,
        }
        for item in missing
    ]
    if decision.provider is not None and decision.outcome != "certify":
        inputs.append(
            {
                "type": {"coding": [{"system": TASK_INPUT_SYSTEM, "code": "proposed-provider"}]},
                "valueReference": {"reference": decision.provider.practitioner},
            }
        )
    return inputs


def build_task(
    *,
    service_request: dict[str, Any],
    service_request_ref: str,
    decision: RoutingDecision,
    missing: Sequence[MissingItem],
    owner: str,
    received: datetime,
    due: datetime,
    now: datetime,
    claim_response_ref: str,
    tags: list[dict[str, str]],
    task_id: str | None = None,
    identifier: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    state = OUTCOME_STATES[decision.outcome]
    task: dict[str, Any] = {
        "resourceType": "Task",
        "meta": {"profile": [TASK_PROFILE], "tag": tags},
        "status": state.task_status,
        "businessStatus": business_status(state.business_status, state.display),
        "intent": "order",
        "priority": service_request.get("priority", "routine"),
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "approve"}]},
        "focus": {"reference": service_request_ref},
        "for": service_request.get("subject"),
        "authoredOn": instant(received),
        "lastModified": instant(now),
        "requester": service_request.get("requester"),
        "owner": _reference(owner),
        "restriction": {"period": {"end": instant(due)}},
        "input": task_inputs(decision, missing),
        "output": [{"type": {"text": "authorization"}, "valueReference": {"reference": claim_response_ref}}],
    }
    if task_id:
        task["id"] = task_id
    if identifier:
        task["identifier"] = identifier
    if missing:
        task["statusReason"] = {"text": "Information missing: " + "; ".join(f"{m.description} ({m.expression})" for m in missing)}
    return {key: value for key, value in task.items() if value not in (None, [], {})}
