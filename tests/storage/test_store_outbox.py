"""The transactional outbox, on every store: atomic with the transaction's writes, idempotent by id, leased."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from fhir_server.errors import FhirError
from fhir_server.storage.base import OutboxMessage
from tests.storage.helpers import patient

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)  # after any created_at the store stamps
LEASE = timedelta(minutes=5)


def message(message_id: str, channel: str = "plan-copy", **fields) -> OutboxMessage:
    return OutboxMessage(
        id=message_id,
        channel=channel,
        destination="http://127.0.0.1:9/fhir",
        payload={"resourceType": "Bundle", "type": "transaction", "id": message_id},
        headers={"X-Case": message_id},
        **fields,
    )


async def test_enqueue_in_a_committed_transaction_stores_it_with_the_writes(store):
    async with store.transaction() as tx:
        created = await tx.create(patient("Copied"))
        assert await tx.enqueue(message(f"copy:{created.id}"))
    [stored] = await store.outbox_messages()
    assert stored.id == f"copy:{created.id}" and stored.channel == "plan-copy"
    assert stored.payload == {"resourceType": "Bundle", "type": "transaction", "id": stored.id}
    assert stored.headers == {"X-Case": stored.id}
    assert stored.attempts == 0 and stored.delivered_at is None and stored.last_error is None
    # Due at once (at the store clock's now); the creation time, which orders the outbox, is never earlier.
    assert stored.created_at is not None and stored.next_attempt_at <= stored.created_at


async def test_enqueue_inside_a_rolled_back_transaction_leaves_nothing(store):
    with pytest.raises(FhirError):
        async with store.transaction() as tx:
            await tx.enqueue(message("lost"))
            await tx.create(patient("Twice"), resource_id="twice")
            await tx.create(patient("Twice"), resource_id="twice")  # 409: the whole block rolls back
    assert await store.outbox_messages() == []
    assert (await store.history()).total == 0


async def test_duplicate_id_is_ignored_inside_and_outside_transactions(store):
    assert await store.enqueue(message("once"))
    assert not await store.enqueue(message("once", channel="other"))
    async with store.transaction() as tx:
        assert not await tx.enqueue(message("once"))
        assert await tx.enqueue(message("second"))
        assert not await tx.enqueue(message("second"))
    assert [m.id for m in await store.outbox_messages()] == ["once", "second"]
    assert [m.channel for m in await store.outbox_messages()] == ["plan-copy", "plan-copy"]


async def test_claim_leases_due_messages_oldest_first_and_not_twice(store):
    for name in ("a", "b", "c"):
        await store.enqueue(message(name))
    await store.enqueue(message("later", next_attempt_at=T0 + timedelta(hours=1)))
    first = await store.claim_outbox(T0, T0 + LEASE, limit=2)
    assert [m.id for m in first] == ["a", "b"]
    assert all(m.next_attempt_at == T0 + LEASE for m in first)
    assert [m.id for m in await store.claim_outbox(T0, T0 + LEASE)] == ["c"]
    assert await store.claim_outbox(T0 + timedelta(minutes=1), T0 + LEASE) == []
    # a worker that died: its lease ends and the messages come back, still oldest first
    again = await store.claim_outbox(T0 + LEASE, T0 + 2 * LEASE)
    assert [m.id for m in again] == ["a", "b", "c"]
    for leased in again:
        await store.outbox_delivered(leased.id, T0 + LEASE)
    later = T0 + timedelta(hours=2)
    assert [m.id for m in await store.claim_outbox(later, later + LEASE)] == ["later"]


async def test_concurrent_claims_never_share_a_message(store):
    for number in range(12):
        await store.enqueue(message(f"m{number:02d}"))
    batches = await asyncio.gather(*(store.claim_outbox(T0, T0 + LEASE, limit=5) for _ in range(4)))
    claimed = [m.id for batch in batches for m in batch]
    assert sorted(claimed) == [f"m{number:02d}" for number in range(12)]


async def test_delivered_is_never_claimed_again(store):
    await store.enqueue(message("done"))
    [claimed] = await store.claim_outbox(T0, T0 + LEASE)
    await store.outbox_delivered(claimed.id, T0 + timedelta(seconds=1))
    assert await store.claim_outbox(T0 + timedelta(days=30), T0 + timedelta(days=31)) == []
    [stored] = await store.outbox_messages()
    assert stored.delivered_at == T0 + timedelta(seconds=1)
    await store.outbox_failed("done", "late failure report", T0)  # a stale failure cannot revive it
    assert await store.claim_outbox(T0 + timedelta(days=30), T0 + timedelta(days=31)) == []
    assert not await store.enqueue(message("done"))


async def test_failed_comes_back_when_due_with_attempts_and_error(store):
    await store.enqueue(message("flaky"))
    await store.claim_outbox(T0, T0 + LEASE)
    await store.outbox_failed("flaky", "HTTP 503", T0 + timedelta(seconds=30))
    assert await store.claim_outbox(T0 + timedelta(seconds=29), T0 + LEASE) == []
    [back] = await store.claim_outbox(T0 + timedelta(seconds=30), T0 + LEASE)
    assert (back.id, back.attempts, back.last_error) == ("flaky", 1, "HTTP 503")
    await store.outbox_failed("flaky", "connection refused", T0 + timedelta(minutes=1))
    [stored] = await store.outbox_messages()
    assert (stored.attempts, stored.last_error) == (2, "connection refused")
    assert stored.next_attempt_at == T0 + timedelta(minutes=1)


async def test_messages_by_channel_and_clear(store):
    await store.enqueue(message("copy", channel="plan-copy"))
    await store.enqueue(message("note", channel="subscription-notification"))
    assert [m.id for m in await store.outbox_messages("subscription-notification")] == ["note"]
    assert [m.id for m in await store.outbox_messages()] == ["copy", "note"]
    await store.clear()
    assert await store.outbox_messages() == []
