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


async def test_after_max_attempts_a_message_is_parked_as_dead_logged_and_kept(store, worker_for, clock, caplog):
    receiver = Receiver(503)
    worker = worker_for(receiver, max_attempts=3)
    await store.enqueue(copy())
    with caplog.at_level("WARNING", logger="fhir_server.outbox"):
        for _ in range(3):
            assert await worker.run_once() == 0
            clock.advance(3600)
    dead = await only_message(store)
    assert dead.dead and dead.attempts == 3 and dead.last_error.startswith("HTTP 503")
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "ERROR"]
    assert all(r.message_id == copy().id and r.destination == "http://plan.test/fhir" for r in caplog.records)
    assert caplog.records[0].attempt == 1 and caplog.records[-1].attempt == 3
    clock.advance(86400)
    assert await worker.run_once() == 0 and len(receiver.received) == 3  # never tried again on its own
    summary = await store.outbox_summary()
    assert (summary.pending, summary.dead, summary.delivered) == (0, 1, 0)


async def test_a_message_cap_from_plan_data_wins_over_the_worker_default(store, worker_for, clock):
    worker = worker_for(Receiver(500), max_attempts=10)
    await store.enqueue(OutboxMessage(id="capped", channel="plan-copy", destination="http://plan.test/fhir",
                                      payload={"a": 1}, max_attempts=1))
    await worker.run_once()
    assert (await only_message(store)).dead


async def test_retry_revives_dead_messages_which_then_deliver(store, worker_for, clock):
    receiver = Receiver(500)
    worker = worker_for(receiver, max_attempts=1)
    await store.enqueue(copy("dead-1"))
    await store.enqueue(copy("dead-2"))
    await worker.run_once()
    assert all(m.dead for m in await store.outbox_messages())
    receiver.answers = [200]
    assert await store.outbox_retry(["dead-1"], clock()) == 1
    assert await store.outbox_retry(["dead-1"], clock()) == 0  # no longer dead
    revived = {m.id: m for m in await store.outbox_messages()}["dead-1"]
    assert not revived.dead and revived.attempts == 0 and revived.next_attempt_at == clock()
    assert await worker.run_once() == 1
    assert await store.outbox_retry(None, clock()) == 1  # every dead one: dead-2
    summary = await store.outbox_summary()
    assert (summary.pending, summary.dead, summary.delivered) == (1, 0, 1)
    assert summary.oldest_pending_at == START


async def test_the_summary_counts_each_state_and_the_oldest_waiting_message(store, worker_for, clock):
    empty = await store.outbox_summary()
    assert (empty.pending, empty.dead, empty.delivered, empty.oldest_pending_at) == (0, 0, 0, None)
    await store.enqueue(copy("first"))
    clock.advance(10)
    await store.enqueue(copy("second"))
    summary = await store.outbox_summary()
    assert (summary.pending, summary.oldest_pending_at) == (2, START)


async def test_deliveries_are_counted_by_channel_and_result(store, worker_for, clock):
    from fhir_server.metrics import Metrics

    metrics = Metrics()
    worker = worker_for(Receiver(500, 200), max_attempts=5, metrics=metrics)
    await store.enqueue(copy())
    await worker.run_once()
    clock.advance(3600)
    await worker.run_once()
    text = metrics.render().decode()
    assert 'fhir_outbox_deliveries_total{channel="plan-copy",result="failed"} 1.0' in text
    assert 'fhir_outbox_deliveries_total{channel="plan-copy",result="delivered"} 1.0' in text
