"""Every backend stamps what it writes with the clock it was given, never the wall clock of its own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fhir_server.clock import Clock
from fhir_server.storage.base import OutboxMessage
from tests.storage.helpers import patient

MOMENT = datetime(2031, 7, 4, 6, 15, tzinfo=timezone.utc)  # far from any date the suite runs on


@pytest.fixture
def store_clock() -> Clock:
    return Clock(frozen_at=MOMENT)


async def test_versions_are_stamped_with_the_stores_clock_and_still_strictly_increase(store):
    first = await store.create(patient("Chalmers"))
    second, _ = await store.update({**first.resource, "active": True})
    assert first.last_updated == MOMENT
    assert first.resource["meta"]["lastUpdated"] == "2031-07-04T06:15:00.000+00:00"
    # A frozen clock still gives each version of a resource a later time than the one before.
    assert second.last_updated == MOMENT + timedelta(milliseconds=1)


async def test_outbox_messages_are_due_at_the_stores_now_and_keep_their_written_order(store, store_clock):
    # Ids that sort against the written order: only the creation times can keep it on a clock standing still.
    for message_id in ("m-3", "m-2", "m-1"):
        await store.enqueue(OutboxMessage(id=message_id, channel="c", destination="http://plan.test/",
                                          payload={"a": 1}))
    assert [m.id for m in await store.claim_outbox(MOMENT, MOMENT + timedelta(seconds=30))] == ["m-3", "m-2", "m-1"]
    messages = await store.outbox_messages()
    assert [m.id for m in messages] == ["m-3", "m-2", "m-1"]
    created = [m.created_at for m in messages]
    assert created == sorted(created) and len(set(created)) == 3 and created[0] >= MOMENT


async def test_moving_the_clock_moves_the_store(store, store_clock):
    store_clock.advance(timedelta(days=400))
    stored = await store.create(patient("Later"))
    assert stored.last_updated == MOMENT + timedelta(days=400)
