"""Report dimensions of every decision, coded for the quarterly report (90.2.17 procedure 11: "All second
opinion request approvals and denials are coded by category ... for tracking and reporting purposes").

Where they live: ``meta.tag`` of both the ClaimResponse and the Task, one Coding per dimension, so any store
answers ``ClaimResponse?_tag=<system>|<code>`` and a report can count by dimension without reading bodies:

| dimension | system | code |
| --- | --- | --- |
| reason | ``{canon}/CodeSystem/second-opinion-reason`` | the reported reason (first qualifying one) |
| decision | ``https://codesystem.x12.org/005010/306`` | A1 / A3 / A4 |
| routing tier | ``{canon}/CodeSystem/second-opinion-routing-tier`` | group / network / out-of-network / none |
| plan | ``{canon}/plan-key`` | the plan key (Coverage.class value) |
| physician group | ``{canon}/physician-group`` | the member's group Organization id, or ``none`` |

The Task's ``businessStatus`` (searchable as ``business-status``) adds the workflow state.
"""

from __future__ import annotations

from fhir_server.second_opinion.codes import (
    PHYSICIAN_GROUP_SYSTEM,
    PLAN_KEY_SYSTEM,
    REASON_SYSTEM,
    ROUTING_TIER_SYSTEM,
    X12_REVIEW_ACTION_SYSTEM,
)

DIMENSION_SYSTEMS = {
    "reason": REASON_SYSTEM,
    "decision": X12_REVIEW_ACTION_SYSTEM,
    "tier": ROUTING_TIER_SYSTEM,
    "plan": PLAN_KEY_SYSTEM,
    "group": PHYSICIAN_GROUP_SYSTEM,
}


def decision_tags(*, reason: str, decision: str, tier: str, plan: str, group: str | None) -> list[dict[str, str]]:
    values = {
        "reason": reason,
        "decision": decision,
        "tier": tier,
        "plan": plan,
        "group": group.rpartition("/")[2] if group else "none",
    }
    return [{"system": DIMENSION_SYSTEMS[name], "code": values[name]} for name in DIMENSION_SYSTEMS]


def tag_value(tags: list[dict[str, str]], dimension: str) -> str | None:
    """Read one dimension back from a resource's ``meta.tag`` (for reports and tests)."""
    system = DIMENSION_SYSTEMS[dimension]
    return next((t.get("code") for t in tags if t.get("system") == system), None)


def with_dimension(tags: list[dict[str, str]], dimension: str, code: str) -> list[dict[str, str]]:
    """``tags`` with one dimension re-coded (a physician's decision changes ``decision`` from A4 to A1/A3),
    every other tag kept as it was."""
    system = DIMENSION_SYSTEMS[dimension]
    if not any(t.get("system") == system for t in tags):
        return [*tags, {"system": system, "code": code}]
    return [{"system": system, "code": code} if t.get("system") == system else t for t in tags]
