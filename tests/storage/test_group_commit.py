"""Group commit of the durable SQLite store (:class:`fhir_server.storage.sqlite_connection.GroupSync`): no caller
returns before a sync that started after its call has ended, and callers arriving during one sync share the next."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from fhir_server.storage.sqlite_connection import GroupSync


class GatedSync:
    """A sync that blocks until the test opens its gate, recording each call."""

    def __init__(self) -> None:
        self.started = 0
        self.gates: list[threading.Event] = []
        self.entered = threading.Semaphore(0)

    def __call__(self, fd: int) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        self.started += 1
        self.entered.release()
        assert gate.wait(10), "the test never opened the gate"


async def _entered(sync: GatedSync) -> None:
    assert await asyncio.to_thread(sync.entered.acquire, True, 10), "no sync started"


@pytest.fixture
def wal(tmp_path: Path) -> str:
    path = tmp_path / "fhir.db-wal"
    path.write_bytes(b"")
    return str(path)


async def test_a_caller_arriving_during_a_sync_waits_for_the_next_one(wal: str):
    sync = GatedSync()
    group = GroupSync(wal, sync)
    first = asyncio.create_task(group.wait())
    await _entered(sync)  # sync 1 runs: it may not cover what the second caller committed
    second = asyncio.create_task(group.wait())
    await asyncio.sleep(0.05)
    sync.gates[0].set()
    await first
    assert not second.done()
    await _entered(sync)
    assert sync.started == 2
    sync.gates[1].set()
    await second
    await group.close()


async def test_callers_arriving_during_one_sync_share_the_next(wal: str):
    sync = GatedSync()
    group = GroupSync(wal, sync)
    first = asyncio.create_task(group.wait())
    await _entered(sync)
    later = [asyncio.create_task(group.wait()) for _ in range(5)]
    await asyncio.sleep(0.05)
    sync.gates[0].set()
    await first
    await _entered(sync)
    sync.gates[1].set()
    await asyncio.gather(*later)
    assert sync.started == 2 and group.syncs == 2
    await group.close()


async def test_a_failed_sync_is_raised_to_its_waiters_and_the_next_sync_still_runs(wal: str):
    calls: list[int] = []

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    group = GroupSync(wal, failing_once)
    with pytest.raises(OSError, match="Input/output"):
        await group.wait()
    await group.wait()
    assert len(calls) == 2 and group.syncs == 1
    await group.close()


async def test_a_cancelled_caller_does_not_cancel_the_sync_of_the_others(wal: str):
    sync = GatedSync()
    group = GroupSync(wal, sync)
    leaving = asyncio.create_task(group.wait())
    staying = asyncio.create_task(group.wait())
    await _entered(sync)
    leaving.cancel()
    await asyncio.sleep(0)
    sync.gates[0].set()
    await staying
    assert leaving.cancelled() and group.syncs == 1
    await group.close()
