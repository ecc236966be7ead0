"""Two server processes on loopback: a delegated group's server copies its decisions to the plan's server.

The plan's server is down when the group decides (it starts later), the group's server restarts while the copy
waits in its outbox, and the plan's server goes down and comes back again for a second decision: each copy
arrives, exactly once, and a copy sent again is not stored twice (conditional creates).
Waits poll the servers with deadlines (the processes run on their own clocks); nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.settings import PROJECT_ROOT
from fhir_server.storage.base import OutboxMessage
from fhir_server.storage.sqlite import SqliteStore
from tests.case_management.helpers import decide_ok, in_review, parameters
from tests.conftest import _free_port
from tests.outbox.plan_servers import mappings_with_endpoint
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json

DEADLINE_SECONDS = 60.0
# Fast retries so the test waits little once the plan is back; the back-off itself is tested in test_worker.
WORKER_ENVIRONMENT = {
    "FHIR_OUTBOX_POLL_SECONDS": "0.1",
    "FHIR_OUTBOX_BASE_DELAY_SECONDS": "0.1",
    "FHIR_OUTBOX_MAX_DELAY_SECONDS": "0.5",
    # Retries this fast would use up the usual cap while the plan is down on purpose: no message is parked here.
    "FHIR_OUTBOX_MAX_ATTEMPTS": "100000",
    "FHIR_LOG_LEVEL": "warning",
}


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


class Server:
    """One ``python -m fhir_server serve`` process on a fixed port, SQLite file and mappings directory."""

    def __init__(self, port: int, store_file: Path, mappings: Path) -> None:
        self.port = port
        self.store_file = store_file
        self.mappings = mappings
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        environment = {**os.environ, **WORKER_ENVIRONMENT, "FHIR_MAPPINGS_DIR": str(self.mappings)}
        command = [sys.executable, "-m", "fhir_server", "serve", "--port", str(self.port),
                   "--store", f"sqlite:///{self.store_file}"]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, f"the server on port {self.port} to start")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "the server exited"
        try:
            return httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)


def outbox_of(server: Server) -> list[OutboxMessage]:
    """The server's outbox, read from its SQLite file (as a second process sharing the file would)."""

    async def read() -> list[OutboxMessage]:
        store = SqliteStore(server.store_file)
        await store.open()
        try:
            return await store.outbox_messages("plan-copy")
        finally:
            await store.close()

    return asyncio.run(read())


def matches(server: Server, query: str) -> list[dict[str, Any]]:
    with server.client() as http:
        answer = http.get(f"/fhir/{query}", headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", ()) if e.get("search", {}).get("mode") == "match"]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    plan_port, group_port = _free_port(), _free_port()
    plan = Server(plan_port, tmp_path / "plan.db", mappings_with_endpoint(tmp_path / "plan-mappings", None))
    group_mappings = mappings_with_endpoint(tmp_path / "group-mappings", f"http://127.0.0.1:{plan_port}/fhir")
    group = Server(group_port, tmp_path / "group.db", group_mappings)
    try:
        yield group, plan
    finally:
        group.stop()
        plan.stop()


def decide_a_case(group: Server, identifier: str) -> dict[str, Any]:
    """A Harbor IPA case approved by the physician designee; returns the decided ServiceRequest."""
    with group.client() as http:
        case = in_review(http, identifier=identifier)
        return decide_ok(http, case.task["id"], parameters("approve")).service_request


def copied_case(plan: Server, service_request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What the plan holds of one case, found by the request's identifier and the records that point at it."""
    identifier = service_request["identifier"][0]
    [request] = matches(plan, f"ServiceRequest?identifier={identifier['system']}|{identifier['value']}")
    tasks = matches(plan, f"Task?focus=ServiceRequest/{request['id']}")
    claims = [claim for claim in matches(plan, "Claim?_count=100")
              if claim["referral"]["reference"] == f"ServiceRequest/{request['id']}"]
    responses = [response for response in matches(plan, "ClaimResponse?_count=100")
                 if response["request"]["reference"] in {f"Claim/{claim['id']}" for claim in claims}]
    return {"ServiceRequest": [request], "Task": tasks, "Claim": claims, "ClaimResponse": responses}


def test_copies_reach_a_plan_that_was_down_exactly_once_across_restarts(servers: tuple[Server, Server]):
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
