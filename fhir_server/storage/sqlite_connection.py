"""Connections to the SQLite file: their pragmas, taking the write lock, and checkpoints off the request path.

Durability
----------
The file is in WAL mode. By default (``?synchronous=full``) a committed write survives a crash of the server
process, of the kernel and a power loss alike: it is answered only after the WAL holding its COMMIT has been
synced to the disk. The sync takes its time (0.5-4 ms per call on the development machine's virtual disk), so it
is a *group commit* (:class:`GroupSync`): SQLite itself runs at ``synchronous = NORMAL`` (a COMMIT appends to the
WAL without a sync), the write lock is given back at once, and the transaction then waits, on the event loop,
for one ``fsync`` of the WAL file that started after its COMMIT. Every transaction committed while a sync runs
shares the next one, so the write rate is no longer bounded by the disk's sync rate, while no write is answered
before it is on the disk. (Another request may read a committed write a few milliseconds before that sync ends,
as with any group commit; nothing is answered to its writer before.)

``sqlite:///file.db?synchronous=normal`` trades that for speed: a COMMIT is answered without any sync, and the
WAL is synced before every checkpoint copies it into the database. A crash of the server process still loses
nothing that was committed (the pages are in the operating system's hands) and nothing ever corrupts the file,
but a power loss or a kernel crash may roll back the transactions committed since the last checkpoint (about the
last second), never half of one. ``OFF`` would risk corruption on power loss and is not offered.

Checkpoints run on a background thread of each store (:class:`Checkpointer`), at most ``interval`` apart and
only when the WAL has pages to copy. SQLite would otherwise run them inside whichever COMMIT crosses its
1000-page threshold, stalling that request and every other one on the event loop for the fsyncs (tens of
milliseconds on a virtual disk). With ``synchronous=normal``, a checkpoint at most a second old also bounds what a power loss can take to
about that second, where the page threshold alone leaves it unbounded on a quiet server. SQLite's own
threshold stays as a safety net, raised so that it only acts when the thread falls behind.

Writers
-------
A write transaction starts with ``BEGIN IMMEDIATE``, after the processes' turn to write (:class:`WriterTurn`, an
``flock`` on ``<file>-writer``). When another process sharing the file (a second worker) is writing, SQLite's
own lock could only be waited for by polling: its busy handler sleeps inside the call (blocking this process's
event loop and all its reads), and retrying with ``asyncio.sleep`` pauses leaves the waiter asleep for up to a
pause after the lock is free (a hand-off took 1.1-4.2 ms that way). The waiting process instead sleeps on the file
lock, on a thread, and writes as soon as the other one gives the turn back (0.07-0.15 ms). :func:`begin_immediate`
still retries with short ``asyncio.sleep`` pauses, for a writer that takes no turn (another program on the file),
and gives up (SQLITE_BUSY, a 500) after 5 seconds, as a turn not had by then does.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: writers of other processes are waited for by polling only
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 5.0
_FIRST_PAUSE_SECONDS = 0.0002
_LONGEST_PAUSE_SECONDS = 0.005
# SQLite's own checkpoint threshold (pages), only reached when the checkpoint thread falls behind.
AUTOCHECKPOINT_PAGES = 10_000
CHECKPOINT_INTERVAL_SECONDS = 1.0
# Page cache per connection (KiB). SQLite's default, 2 MiB, holds a few thousand index pages: a search at 200,000
# stored requests then reads most of its pages from the file again on every request, and a large transaction
# (a 100-entry Bundle, the bulk loader's batches) spills dirty pages to the WAL and reads them back while it
# runs. The cache only grows as pages are used: at most 2 x 16 MiB per worker process (a reader and a writer).
CACHE_KIB = 16 * 1024


SYNCHRONOUS = ("full", "normal")


def connect(file: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, ``synchronous = NORMAL``: a COMMIT never
    syncs by itself; durable stores add a :class:`GroupSync` (see the module's notes)."""
    connection = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    connection.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


class GroupSync:
    """Group commit: :meth:`wait` returns once an ``fsync`` of the WAL file that *started after the call* has
    ended, so everything committed before the call is on the disk. One sync runs at a time, on a thread (the event
    loop goes on serving); callers arriving while it runs share the next one. With 32 writers waiting, one sync
    answers them all instead of 32 syncs one after the other.

    The WAL file exists as long as a connection to the database is open (SQLite deletes it only when the last
    one closes), and a WAL restarted after a checkpoint is the same file, so the descriptor opened once stays
    valid. ``sync`` is the call that reaches the disk (``os.fsync``; tests hand in one they can watch)."""

    def __init__(self, wal_file: str, sync: Callable[[int], None] = os.fsync) -> None:
        self._fd = os.open(wal_file, os.O_RDONLY)
        self._sync = sync
        self._next: asyncio.Future[None] | None = None  # the sync the newest callers wait for (not started yet)
        self._runner: asyncio.Task[None] | None = None
        self.syncs = 0  # syncs done, for tests and curiosity

    async def wait(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())
        await asyncio.shield(waiting)  # a cancelled caller leaves the sync to the others

    async def _run(self) -> None:
        while self._next is not None:
            batch, self._next = self._next, None
            try:
                await asyncio.to_thread(self._sync, self._fd)
            except Exception as exc:  # every waiter of this batch learns of the failure; the next batch still syncs
                batch.set_exception(exc)
            except BaseException:  # the runner itself is stopped: its waiters must not wait for ever
                batch.set_exception(OSError("the WAL sync was interrupted"))
                raise
            else:
                self.syncs += 1
                batch.set_result(None)

    async def close(self) -> None:
        if self._runner is not None and not self._runner.done():
            await asyncio.shield(self._runner)
        os.close(self._fd)


class WriterTurn:
    """The processes' turn to write, as an exclusive ``flock`` on a file beside the database (``<file>-writer``),
    taken before ``BEGIN IMMEDIATE`` and given back after COMMIT or ROLLBACK.

    SQLite's own write lock cannot be waited for without polling (its busy handler sleeps and retries). A process
    waiting for the file lock instead sleeps in the kernel and wakes the moment the holder gives it back, so a
    second worker no longer loses up to a few milliseconds per write to its polling pauses. Uncontended, the turn is
    a non-blocking ``flock`` on this process's descriptor. Contended, the wait runs on a thread (the event loop goes
    on serving) on a descriptor of its own: a wait given up after the timeout leaves that descriptor to the thread,
    which closes it, releasing whatever it got. Where ``fcntl`` is missing, the turn is nothing and
    :func:`begin_immediate`'s polling does the waiting, as it still does for a writer that takes no turn (another
    program on the file)."""

    def __init__(self, file: str) -> None:
        self._path = f"{file}-writer"
        self._fd: int | None = None  # this process's descriptor, opened once
        self._held: int | None = None  # the descriptor holding the turn now

    def _open(self) -> int:
        return os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)

    async def acquire(self, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        if fcntl is None:
            return
        if self._fd is None:
            self._fd = self._open()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._held = self._fd
            return
        except BlockingIOError:
            pass
        fd = self._open()
        waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except BaseException:
            waiting.add_done_callback(lambda _done: os.close(fd))  # gives back whatever the thread gets
            raise
        self._held = fd

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if held == self._fd:
            fcntl.flock(held, fcntl.LOCK_UN)
        else:
            os.close(held)

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def begin_immediate(connection: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
    """``BEGIN IMMEDIATE`` on a connection whose busy timeout is 0, waiting for another process's write
    transaction with ``asyncio.sleep`` (growing pauses) rather than a sleep that blocks the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = _FIRST_PAUSE_SECONDS
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if not _busy(error) or loop.time() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)


class Checkpointer:
    """A daemon thread that checkpoints the WAL (PASSIVE: never waits for readers or writers) every
    ``interval`` seconds on a connection of its own; sqlite3 releases the GIL while it works."""

    def __init__(self, file: str, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self._file = file
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (an unfinished checkpoint completes first)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._file, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout = 0")
            while not self._stopping.wait(self._interval):
                checkpoint(connection)
        finally:
            connection.close()


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One PASSIVE checkpoint: (busy flag, pages in the WAL, pages copied). A busy or locked file is skipped
    (another process is checkpointing; the next round will do it)."""
    try:
        return tuple(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())  # type: ignore[return-value]
    except sqlite3.OperationalError as error:
        if _busy(error):
            return (1, -1, -1)
        raise
