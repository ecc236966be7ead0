"""Two stores on one file, as two server workers share it: waiting for the other's write lock and checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite_connection import checkpoint, connect


async def test_a_writer_waiting_for_the_other_workers_lock_leaves_its_event_loop_serving(tmp_path: Path):
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        await second.create({"resourceType": "Patient"}, resource_id="already")
        async with first.transaction() as tx:
            await tx.create({"resourceType": "Patient"}, resource_id="first")
            waiting = asyncio.create_task(second.create({"resourceType": "Patient"}, resource_id="second"))
            await asyncio.sleep(0)  # let the task try BEGIN IMMEDIATE and find the lock taken
            assert (await second.read("Patient", "already")).id == "already"  # the loop is not blocked
            assert not waiting.done()
        stored = await waiting
        assert stored.version_id == 1
        assert (await first.read("Patient", "second")).id == "second"
    finally:
        await first.close()
        await second.close()


async def test_a_checkpoint_copies_the_committed_pages_into_the_database(tmp_path: Path):
    path = tmp_path / "fhir.db"
    store = SqliteStore(path)
    await store.open()
    try:
        for number in range(20):
            await store.create({"resourceType": "Patient", "gender": "female"}, resource_id=f"p{number}")
        side = connect(str(path))
        busy, wal_pages, copied = checkpoint(side)
        side.close()
        assert (busy, copied) == (0, wal_pages) and wal_pages > 0
        assert (await store.read("Patient", "p19")).resource["gender"] == "female"
    finally:
        await store.close()
