"""Two server processes on loopback: a delegated group's server copies its decisions to the plan's server.

The plan's server is down when the group decides (it starts later), the group's server restarts while the copy
waits in its outbox, and the plan's server goes down and comes back again for a second decision: each copy
arrives, exactly once, and a copy sent again is not stored twice (conditional creates).
Waits poll the servers with deadlines (tests/servers.py); nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.storage import open_store
from fhir_server.storage.base import OutboxMessage
from tests.case_management.helpers import decide_ok, in_review, parameters
from tests.conftest import _free_port
from tests.outbox.plan_servers import mappings_with_endpoint
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json
from tests.servers import ServerProcess, wait_until

# Fast retries so the test waits little once the plan is back; the back-off itself is tested in test_worker.
WORKER_ENVIRONMENT = {
    "FHIR_OUTBOX_POLL_SECONDS": "0.1",
    "FHIR_OUTBOX_BASE_DELAY_SECONDS": "0.1",
    "FHIR_OUTBOX_MAX_DELAY_SECONDS": "0.5",
    # Retries this fast would use up the usual cap while the plan is down on purpose: no message is parked here.
    "FHIR_OUTBOX_MAX_ATTEMPTS": "100000",
    "FHIR_LOG_LEVEL": "warning",
}


def sqlite_server(port: int, store_file: Path, mappings: Path) -> ServerProcess:
    """A server on a SQLite file with its own plan data and the fast retries above."""
    return ServerProcess(port, f"sqlite:///{store_file}", {**WORKER_ENVIRONMENT, "FHIR_MAPPINGS_DIR": str(mappings)})


def outbox_of(server: ServerProcess) -> list[OutboxMessage]:
    """The server's outbox, read from its SQLite file (as a second process sharing the file would)."""

    async def read() -> list[OutboxMessage]:
        store = open_store(server.store_url)
        await store.open()
        try:
            return await store.outbox_messages("plan-copy")
        finally:
            await store.close()

    return asyncio.run(read())


def matches(server: ServerProcess, query: str) -> list[dict[str, Any]]:
    with server.client() as http:
        answer = http.get(f"/fhir/{query}", headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", ()) if e.get("search", {}).get("mode") == "match"]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    plan_port, group_port = _free_port(), _free_port()
    plan = sqlite_server(plan_port, tmp_path / "plan.db", mappings_with_endpoint(tmp_path / "plan-mappings", None))
    group_mappings = mappings_with_endpoint(tmp_path / "group-mappings", f"http://127.0.0.1:{plan_port}/fhir")
    group = sqlite_server(group_port, tmp_path / "group.db", group_mappings)
    try:
        yield group, plan
    finally:
        group.stop()
        plan.stop()


def decide_a_case(group: ServerProcess, identifier: str) -> dict[str, Any]:
    """A Harbor IPA case approved by the physician designee; returns the decided ServiceRequest."""
    with group.client() as http:
        case = in_review(http, identifier=identifier)
        return decide_ok(http, case.task["id"], parameters("approve")).service_request


def copied_case(plan: ServerProcess, service_request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What the plan holds of one case, found by the request's identifier and the records that point at it."""
    identifier = service_request["identifier"][0]
    [request] = matches(plan, f"ServiceRequest?identifier={identifier['system']}|{identifier['value']}")
    tasks = matches(plan, f"Task?focus=ServiceRequest/{request['id']}")
    claims = [claim for claim in matches(plan, "Claim?_count=100")
              if claim["referral"]["reference"] == f"ServiceRequest/{request['id']}"]
    responses = [response for response in matches(plan, "ClaimResponse?_count=100")
                 if response["request"]["reference"] in {f"Claim/{claim['id']}" for claim in claims}]
    return {"ServiceRequest": [request], "Task": tasks, "Claim": claims, "ClaimResponse": responses}


def test_copies_reach_a_plan_that_was_down_exactly_once_across_restarts(servers: tuple[ServerProcess, ServerProcess]):
    group, plan = servers
    group.start()
    with group.client() as http:
        assert http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200

    # the plan is down when the group decides: the copy waits in the group's outbox, failing
    first = decide_a_case(group, "copy-one")
    [waiting] = wait_until(lambda: [m for m in outbox_of(group) if m.attempts >= 2], "failed delivery attempts")
    assert waiting.delivered_at is None and waiting.destination == f"{plan.base}"

    # the group restarts meanwhile: nothing is lost
    group.stop()
    assert [m.id for m in outbox_of(group)] == [waiting.id]
    group.start()

    # the plan comes up: the copy arrives, once, with the decision
    plan.start()
    wait_until(lambda: all(m.delivered_at for m in outbox_of(group)), "the copy to be delivered")
    held = copied_case(plan, first)
    assert {kind: len(found) for kind, found in held.items()} == {
        "ServiceRequest": 1, "Task": 1, "Claim": 1, "ClaimResponse": 1}
    [task] = held["Task"]
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "approved"
    assert task["output"][0]["valueReference"]["reference"] == f"ClaimResponse/{held['ClaimResponse'][0]['id']}"

    # the plan goes down and comes back for the next decision; the first copy is not sent again
    plan.stop()
    second = decide_a_case(group, "copy-two")
    wait_until(lambda: [m for m in outbox_of(group) if m.attempts >= 1], "the second copy to fail")
    plan.start()
    wait_until(lambda: len(outbox_of(group)) == 2 and all(m.delivered_at for m in outbox_of(group)),
               "the second copy to be delivered")
    assert {kind: len(found) for kind, found in copied_case(plan, second).items()} == {
        "ServiceRequest": 1, "Task": 1, "Claim": 1, "ClaimResponse": 1}
    assert len(copied_case(plan, first)["Task"]) == 1
    patient_identifier = "urn:oid:2.16.840.1.113883.3.1000.2|VMG-448812"
    assert len(matches(plan, f"Patient?identifier={patient_identifier}")) == 1  # one member, two cases

    # a copy delivered again (an answer lost on the way back) is not stored twice
    [resent, _] = outbox_of(group)
    with plan.client() as http:
        again = http.post("/fhir", json=resent.payload, headers=FHIR_JSON)
    assert again.status_code == 200, again.text
    assert {kind: len(found) for kind, found in copied_case(plan, first).items()} == {
        "ServiceRequest": 1, "Task": 1, "Claim": 1, "ClaimResponse": 1}
