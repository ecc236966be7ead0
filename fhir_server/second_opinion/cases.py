"""The workflow already running for a stored ServiceRequest (for resubmissions).

Found through the Task that focuses on the request (``Task?focus=``) and claims the second-opinion-task
profile; its output names the ClaimResponse, whose ``request`` names the Claim. A resubmission reuses these
ids so its decision is a new version of the same records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery
from fhir_server.second_opinion.codes import STATUS_SYSTEM, TASK_PROFILE
from fhir_server.second_opinion.evaluation import RecordIds
from fhir_server.second_opinion.references import Resolver
from fhir_server.second_opinion.workflow import FINAL_TASK_STATUSES
from fhir_server.storage.base import ResourceOperations


@dataclass(frozen=True)
class ExistingCase:
    task: dict[str, Any]
    claim_response: dict[str, Any] | None
    ids: RecordIds

    @property
    def final(self) -> bool:
        return self.task.get("status") in FINAL_TASK_STATUSES

    @property
    def held_for_consultation(self) -> bool:
        """Referred for a consultative review: the consultant's recommendation decides (90.2.17 procedure 6)."""
        status = self.task.get("businessStatus") or {}
        return any(c.get("system") == STATUS_SYSTEM and c.get("code") == "consultative-review"
                   for c in status.get("coding", ()))

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.task["authoredOn"].replace("Z", "+00:00"))


async def existing_case(ops: ResourceOperations, service_request_ref: str) -> ExistingCase | None:
    """The Task (and its ClaimResponse/Claim) the server made for a stored ServiceRequest, if any."""
    resource_type, _, resource_id = service_request_ref.partition("/")
    page = await ops.search(
        SearchQuery(
            resource_type="Task",
            criteria=[Criterion("focus", "reference", (ReferenceValue(resource_type, resource_id),))],
            count=50,
            total="none",
        )
    )
    tasks = [i.resource for i in page.items if i.resource and is_second_opinion_task(i.resource)]
    for task in tasks:
        case = await case_of_task(ops, task)
        if case is not None:
            return case
    return None


def is_second_opinion_task(task: dict[str, Any]) -> bool:
    return TASK_PROFILE in task.get("meta", {}).get("profile", ())


async def case_of_task(ops: ResourceOperations, task: dict[str, Any]) -> ExistingCase | None:
    """The case a second-opinion Task tracks: its ClaimResponse (first ``output``) and that one's Claim."""
    output = next((o["valueReference"]["reference"] for o in task.get("output", ()) if "valueReference" in o), None)
    if not output or not output.startswith("ClaimResponse/"):
        return None
    claim_response = await Resolver(ops).get(output)
    claim_ref = (claim_response or {}).get("request", {}).get("reference", "")
    claim_id = claim_ref.partition("/")[2] or str(uuid.uuid4())
    return ExistingCase(task, claim_response, RecordIds(claim_id, output.partition("/")[2], task["id"]))


def new_ids(claim_id: str | None = None) -> RecordIds:
    """Fresh ids of a new case's records (``claim_id``: the id of a Claim the client submitted itself)."""
    return RecordIds(claim_id or str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
