"""The delivery worker, on both stores, driven round by round with an injected clock (no sleeps).

The receiving side is an ``httpx.MockTransport`` standing in for the network: it answers what each test
scripts (a status, or a refused connection) and records what arrived. The two-server test of plan copies
covers delivery over real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest

from fhir_server.clock import Clock
from fhir_server.outbox import OutboxWorker
from fhir_server.storage.base import OutboxMessage

START = datetime(2026, 3, 8, 9, 30, tzinfo=timezone.utc)  # any moment: the store and the worker share the clock


class Receiver:
    """Scripted answers, one per request (the last one repeats); ``"refuse"`` is a refused connection."""

    def __init__(self, *answers: int | str) -> None:
        self.answers = list(answers)
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(int(answer), json={"resourceType": "OperationOutcome", "answer": answer})


@pytest.fixture
def clock() -> Clock:
    """One frozen clock for the store (it stamps when a message is due) and the workers (they read what is due)."""
    return Clock(frozen_at=START)


@pytest.fixture
def store_clock(clock: Clock) -> Clock:
    return clock


@pytest.fixture
async def worker_for(store, clock: Clock) -> AsyncIterator:
    clients: list[httpx.AsyncClient] = []

    def build(receiver: Receiver, **options) -> OutboxWorker:
        client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
        clients.append(client)
        defaults = dict(client=client, clock=clock, base_delay=2.0, max_delay=60.0, lease=30.0, jitter=lambda: 1.0)
        return OutboxWorker(store, **{**defaults, **options})

    yield build
    for client in clients:
        await client.aclose()


def copy(message_id: str = "plan-copy:ClaimResponse/1/_history/2") -> OutboxMessage:
    return OutboxMessage(
        id=message_id,
        channel="plan-copy",
        destination="http://plan.test/fhir",
        payload={"resourceType": "Bundle", "type": "transaction", "entry": []},
        headers={"X-Correlation-Id": message_id},
    )


async def only_message(store) -> OutboxMessage:
    [message] = await store.outbox_messages()
    return message


async def test_a_2xx_answer_delivers_once_with_fhir_json_and_headers(store, worker_for, clock):
    receiver = Receiver(201)
    worker = worker_for(receiver)
    await store.enqueue(copy())
    assert await worker.run_once() == 1
    [request] = receiver.received
    assert request.method == "POST" and str(request.url) == "http://plan.test/fhir"
    assert request.headers["content-type"] == "application/fhir+json"
    assert request.headers["x-correlation-id"] == "plan-copy:ClaimResponse/1/_history/2"
    assert orjson.loads(request.content) == copy().payload
    assert (await only_message(store)).delivered_at == START
    clock.advance(3600)
    assert await worker.run_once() == 0
    assert len(receiver.received) == 1


async def test_failures_back_off_exponentially_up_to_the_cap_then_deliver(store, worker_for, clock):
    receiver = Receiver(503, "refuse", 500, 404, 503, 503, 200)
    worker = worker_for(receiver)
    await store.enqueue(copy())
    waits = []
    for _ in range(6):
        assert await worker.run_once() == 0
        failed = await only_message(store)
        waits.append((failed.next_attempt_at - clock()).total_seconds())
        clock.advance(waits[-1] - 0.001)
        assert await worker.run_once() == 0  # not due yet: not tried
        clock.advance(0.001)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0]  # base 2 s doubling, capped at 60 s
    failed = await only_message(store)
    assert failed.attempts == 6 and failed.last_error.startswith("HTTP 503")
    assert await worker.run_once() == 1
    assert len(receiver.received) == 7
    assert (await only_message(store)).delivered_at == clock()


async def test_a_refused_connection_is_a_failed_attempt_with_its_error(store, worker_for):
    worker = worker_for(Receiver("refuse"))
    await store.enqueue(copy())
    assert await worker.run_once() == 0
    failed = await only_message(store)
    assert failed.attempts == 1 and failed.delivered_at is None
    assert "ConnectError" in failed.last_error and "refused" in failed.last_error


def test_jitter_takes_a_random_half_of_the_delay(store, clock):
    assert OutboxWorker(store, clock=clock, base_delay=1.0, max_delay=100.0, jitter=lambda: 0.0).retry_delay(3).total_seconds() == 4
    assert OutboxWorker(store, clock=clock, base_delay=1.0, max_delay=100.0, jitter=lambda: 1.0).retry_delay(3).total_seconds() == 8
    huge = OutboxWorker(store, clock=clock, base_delay=1.0, max_delay=100.0, jitter=lambda: 1.0).retry_delay(500)
    assert huge.total_seconds() == 100


async def test_one_failing_destination_does_not_hold_back_the_others(store, worker_for, clock):
    def by_destination(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "down.test" else 200)

    await store.enqueue(OutboxMessage(id="to-down", channel="c", destination="http://down.test/", payload={"a": 1}))
    await store.enqueue(OutboxMessage(id="to-up", channel="c", destination="http://up.test/", payload={"a": 2}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(by_destination)) as client:
        assert await OutboxWorker(store, client=client, clock=clock).run_once() == 1
    states = {m.id: (m.delivered_at is not None, m.attempts) for m in await store.outbox_messages()}
    assert states == {"to-down": (False, 1), "to-up": (True, 0)}


async def test_a_second_worker_does_not_take_a_leased_message(store, worker_for, clock):
    """Worker A claimed the message and died before answering: worker B waits for the lease to run out."""
    await store.enqueue(copy())
    await store.claim_outbox(clock(), clock() + timedelta(seconds=30))  # A's claim
    receiver = Receiver(200)
    worker_b = worker_for(receiver)
    clock.advance(29)
    assert await worker_b.run_once() == 0 and receiver.received == []
    clock.advance(1)
    assert await worker_b.run_once() == 1


async def test_background_start_and_stop(store, clock):
    """The polling task runs and stops cleanly; the client it opened itself is closed."""
    worker = OutboxWorker(store, client=None, clock=clock)
    worker.start(poll_seconds=3600)
    worker.start(poll_seconds=3600)  # idempotent
    await worker.stop()
    await worker.stop()
