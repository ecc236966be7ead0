"""Two stores on one file, as two server workers share it: waiting for the other's write lock and checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fhir_server.storage.base import StoreUnavailable
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


async def test_the_waiting_writer_takes_its_turn_as_soon_as_the_other_commits(tmp_path: Path):
    """The turn is a file lock the waiter sleeps on (no polling pauses): it writes right after the holder's
    COMMIT, whatever the holder held it for, and its loop keeps serving meanwhile."""
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        async with first.transaction() as tx:
            await tx.create({"resourceType": "Patient"}, resource_id="first")
            waiting = asyncio.create_task(second.create({"resourceType": "Patient"}, resource_id="second"))
            for _ in range(20):  # the waiter is parked on the file lock, the loop goes on
                await asyncio.sleep(0.001)
            assert not waiting.done()
        stored = await asyncio.wait_for(waiting, timeout=5)
        assert stored.version_id == 1
        assert [item.id for item in (await first.history("Patient")).items] == ["second", "first"]
    finally:
        await first.close()
        await second.close()


async def test_a_writer_that_cannot_get_its_turn_gives_up_and_the_file_stays_writable(tmp_path: Path):
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        assert second._turn is not None
        async with first.transaction():
            with pytest.raises(TimeoutError):
                await second._turn.acquire(timeout=0.05)
        await asyncio.sleep(0.05)  # the abandoned wait got the turn on its thread, and gave it back
        assert (await second.create({"resourceType": "Patient"}, resource_id="later")).id == "later"
        assert (await first.create({"resourceType": "Patient"}, resource_id="after")).id == "after"
    finally:
        await first.close()
        await second.close()


async def test_a_write_cancelled_during_its_commit_is_committed_and_the_next_write_goes_through(tmp_path: Path):
    store = SqliteStore(tmp_path / "fhir.db")
    await store.open()
    try:
        writing = asyncio.create_task(store.create({"resourceType": "Patient"}, resource_id="cancelled"))
        await asyncio.sleep(0)
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert (await store.create({"resourceType": "Patient"}, resource_id="next")).id == "next"
    finally:
        await store.close()


@pytest.mark.parametrize(("url", "synced"), [("fhir.db", True), ("fhir.db?synchronous=full", True),
                                             ("fhir.db?synchronous=NORMAL", False)])
async def test_writes_are_synced_to_the_disk_before_they_are_answered_unless_the_url_says_normal(
    tmp_path: Path, url: str, synced: bool
):
    store = SqliteStore.from_url(f"sqlite:///{tmp_path / url}")
    await store.open()
    try:
        assert store._connection(store._writer).execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no sync
        assert (await store.create({"resourceType": "Patient"}, resource_id="p")).id == "p"  # inside COMMIT itself
        assert (store._group_sync is not None and store._group_sync.syncs == 1) is synced
    finally:
        await store.close()


@pytest.mark.parametrize("option", ["synchronous=off", "cache=shared"])
def test_an_unknown_sqlite_url_option_is_refused(tmp_path: Path, option: str):
    with pytest.raises(StoreUnavailable, match="synchronous"):
        SqliteStore.from_url(f"sqlite:///{tmp_path / 'fhir.db'}?{option}")
