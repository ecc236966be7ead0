"""What only the embedded store can show: two stores on one file (two worker processes) and a reopen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fhir_server.storage.sqlite import SqliteStore
from tests.storage.test_store_outbox import LEASE, T0, message


async def test_two_stores_on_one_file_never_claim_the_same_message_and_keep_it_across_reopen(tmp_path: Path):
    path = tmp_path / "fhir.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    for number in range(6):
        await first.enqueue(message(f"m{number}"))
    taken = [m.id for m in await first.claim_outbox(T0, T0 + LEASE, limit=3)]
    taken += [m.id for m in await second.claim_outbox(T0, T0 + LEASE, limit=10)]
    assert sorted(taken) == [f"m{number}" for number in range(6)]
    await second.outbox_failed("m0", "HTTP 500", T0 + timedelta(seconds=10))
    await first.close()
    await second.close()
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        [back] = await reopened.claim_outbox(T0 + timedelta(seconds=10), T0 + LEASE)
        assert (back.id, back.attempts, back.last_error) == ("m0", 1, "HTTP 500")
    finally:
        await reopened.close()
