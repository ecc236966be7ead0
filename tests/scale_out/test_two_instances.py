"""Several instances on one MongoDB: two real server processes share the suite's replica set.

What must hold when instances scale out: each outbox message (a plan copy, a subscription notification) is
delivered once although both instances' workers poll the same outbox; concurrent ``$submit`` of one request
through both instances stores one case; an instance killed in the middle of a delivery loses nothing (another
instance takes the message over when its lease runs out). The same race on one instance is checked in-process
on both stores.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.storage import open_store
from fhir_server.storage.base import OutboxMessage
from tests.case_management.helpers import decide_ok, in_review, parameters
from tests.conftest import _free_port
from tests.scale_out.receiver import Receiver
from tests.second_opinion.conftest import DIRECTORY_FILE, FHIR_JSON, load_json
from tests.second_opinion.helpers import submission
from tests.servers import ServerProcess, wait_until

BSP = "blue-shield-promise-cmc"
SUBSCRIPTION = {
    "resourceType": "Subscription",
    "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"]},
    "status": "requested",
    "reason": "Harbor IPA decisions",
    "criteria": "http://example.org/fhir/second-opinion/SubscriptionTopic/second-opinion-decision",
    "_criteria": {"extension": [{
        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
        "valueString": "Task?organization=Organization/ipa-harbor"}]},
    "channel": {"type": "rest-hook", "payload": "application/fhir+json", "_payload": {"extension": [{
        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
        "valueCode": "id-only"}]}},
}


def instance_environment(receiver: Receiver, **more: str) -> dict[str, str]:
    return {
        f"FHIR_PLAN_COPY_ENDPOINT__{BSP.upper().replace('-', '_')}": receiver.url("/plan"),
        "FHIR_OUTBOX_POLL_SECONDS": "0.05",
        "FHIR_OUTBOX_BASE_DELAY_SECONDS": "0.2",
        "FHIR_OUTBOX_MAX_DELAY_SECONDS": "1",
        "FHIR_LOG_LEVEL": "warning",
        **more,
    }


def outbox(store_url: str) -> list[OutboxMessage]:
    async def read() -> list[OutboxMessage]:
        store = open_store(store_url)
        await store.open()
        try:
            return await store.outbox_messages()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def shared_store(mongo_server_url: str) -> Iterator[str]:
    url = f"{mongo_server_url}/scale_out_{uuid.uuid4().hex[:12]}?directConnection=true"
    yield url

    async def drop() -> None:
        store = open_store(url)
        await store.open()
        await store.clear()
        await store.close()

    asyncio.run(drop())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def start_instances(store_url: str, environment: dict[str, str], count: int = 2) -> list[ServerProcess]:
    instances = [ServerProcess(_free_port(), store_url, environment) for _ in range(count)]
    try:
        for instance in instances:
            instance.start()
    except BaseException:
        for instance in instances:
            instance.stop()
        raise
    return instances


def canonical(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


@pytest.mark.mongo
def test_copies_and_notifications_are_delivered_once_by_two_instances(shared_store: str, receiver: Receiver):
    instances = start_instances(shared_store, instance_environment(receiver))
    try:
        a, b = instances
        with a.client() as http_a, b.client() as http_b:
            assert http_a.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200
            subscription = {**SUBSCRIPTION, "channel": {**SUBSCRIPTION["channel"], "endpoint": receiver.url("/ehr")}}
            created = http_b.post("/fhir/Subscription", json=subscription, headers=FHIR_JSON)
            assert created.status_code == 201 and created.json()["status"] == "active", created.text
            for number, (submitter, decider) in enumerate([(http_a, http_b), (http_b, http_a), (http_a, http_a)]):
                case = in_review(submitter, identifier=f"scale-{number}")
                decide_ok(decider, case.task["id"], parameters("approve"))
        messages = wait_until(lambda: (lambda found: found if found and all(m.delivered_at for m in found) else None)(
            outbox(shared_store)), "every outbox message to be delivered")
    finally:
        for instance in instances:
            instance.stop()
    by_channel = {channel: [m for m in messages if m.channel == channel] for channel in {m.channel for m in messages}}
    assert len(by_channel["plan-copy"]) == 3
    assert len(by_channel["subscription-notification"]) >= 6  # pended and decided, for each of the three cases
    sent = sorted(canonical(m.payload) for m in messages)
    received = sorted(canonical(body) for path in ("/plan", "/ehr") for body in receiver.bodies(path)
                      if canonical(body) in set(sent))
    assert received == sent  # each message arrived, and none twice
    handshakes = [body for body in receiver.bodies("/ehr") if canonical(body) not in set(sent)]
    assert len(handshakes) == 1  # the subscription's handshake, sent once when it was created


@pytest.mark.mongo
def test_concurrent_submits_of_one_request_through_two_instances_store_one_case(shared_store: str, receiver):
    instances = start_instances(shared_store, instance_environment(receiver, FHIR_OUTBOX_ENABLED="false"))
    try:
        a, b = instances
        with a.client() as http:
            assert http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200
        bundle = submission(identifier="raced-request")

        def send(instance: ServerProcess) -> httpx.Response:
            with instance.client() as http:
                return http.post("/fhir/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(send, [a, b] * 3))
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {200, 409} and 200 in statuses, [answer.text[:300] for answer in answers]
        decided = {answer.json()["entry"][1]["resource"]["id"] for answer in answers if answer.status_code == 200}
        assert len(decided) == 1  # every successful answer names the one Task
        with b.client() as http:
            identifier = bundle["entry"][0]["resource"]["identifier"][0]
            requests = http.get("/fhir/ServiceRequest", params={
                "identifier": f"{identifier['system']}|{identifier['value']}"}).json()
            assert requests["total"] == 1
            request_id = requests["entry"][0]["resource"]["id"]
            tasks = http.get("/fhir/Task", params={"focus": f"ServiceRequest/{request_id}"}).json()
            assert tasks["total"] == 1
            assert http.get("/fhir/Claim", params={"_summary": "count"}).json()["total"] == 1
            assert http.get("/fhir/ClaimResponse", params={"_summary": "count"}).json()["total"] == 1
    finally:
        for instance in instances:
            instance.stop()


@pytest.mark.mongo
def test_an_instance_killed_mid_delivery_loses_nothing(shared_store: str):
    with Receiver(hold=1) as receiver:  # the first delivery is kept waiting: the sender is killed meanwhile
        # The held delivery must not time out before the kill (8 s); the lease (at least twice the timeout: 16 s)
        # is how long the second instance waits before taking the message over.
        environment = instance_environment(receiver, FHIR_OUTBOX_TIMEOUT_SECONDS="8", FHIR_OUTBOX_LEASE_SECONDS="8")
        first = ServerProcess(_free_port(), shared_store, environment)
        first.start()
        try:
            with first.client() as http:
                assert http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON).status_code == 200
                decide_ok(http, in_review(http, identifier="killed").task["id"], parameters("approve"))
            wait_until(lambda: receiver.bodies("/plan"), "the first instance to start delivering the copy")
            first.kill()
        finally:
            first.stop()
        [message] = [m for m in outbox(shared_store) if m.channel == "plan-copy"]
        assert message.delivered_at is None and message.attempts == 0  # in flight when the instance died
        second = ServerProcess(_free_port(), shared_store, environment)
        second.start()
        try:
            wait_until(lambda: all(m.delivered_at for m in outbox(shared_store) if m.channel == "plan-copy"),
                       "the second instance to deliver the copy once the lease ran out")
        finally:
            second.stop()
        copies = receiver.bodies("/plan")
        assert len(copies) == 2 and canonical(copies[0]) == canonical(copies[1]) == canonical(message.payload)


@pytest.mark.parametrize("concurrent", [4])
async def test_concurrent_submits_on_one_instance_store_one_case(store_url: str, concurrent: int):
    """The same race inside one process (both stores): the derived id makes the losers' creates conflict."""
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    app = create_app(Settings(store=store_url, outbox_enabled=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.post("/fhir", json=load_json(DIRECTORY_FILE), headers=FHIR_JSON)).status_code == 200
            bundle = submission(identifier="raced-in-process")
            answers = await asyncio.gather(*(http.post("/fhir/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)
                                             for _ in range(concurrent)))
            assert {answer.status_code for answer in answers} <= {200, 409}
            counts = {kind: (await http.get(f"/fhir/{kind}", params={"_summary": "count"})).json()["total"]
                      for kind in ("ServiceRequest", "Task", "Claim", "ClaimResponse")}
        await app.state.store.clear()
    assert counts == {"ServiceRequest": 1, "Task": 1, "Claim": 1, "ClaimResponse": 1}
