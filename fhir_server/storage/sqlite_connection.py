"""Connections to the SQLite file: their pragmas, taking the write lock, and checkpoints off the request path.

Durability
----------
The file is in WAL mode with ``synchronous = NORMAL``: a COMMIT appends the transaction's pages to the WAL and
returns without an fsync; the WAL is fsynced before every checkpoint copies it into the database. So a crash of
the server process loses nothing that was committed (the pages are in the operating system's hands) and never
corrupts the file; a power loss or kernel crash may roll back the transactions committed since the last
checkpoint, never half of one. ``FULL`` would fsync the WAL at every COMMIT (measured here: +25 % per write);
``OFF`` would risk corruption on power loss: neither is used.

Checkpoints run on a background thread of each store (:class:`Checkpointer`), at most ``interval`` apart and
only when the WAL has pages to copy. SQLite would otherwise run them inside whichever COMMIT crosses its
1000-page threshold, stalling that request and every other one on the event loop for the fsyncs (tens of
milliseconds on a virtual disk). A checkpoint at most a second old also bounds what a power loss can take to
about that second, where the page threshold alone leaves it unbounded on a quiet server. SQLite's own
threshold stays as a safety net, raised so that it only acts when the thread falls behind.

Writers
-------
A write transaction starts with ``BEGIN IMMEDIATE``. When another process sharing the file (a second worker)
holds the write lock, SQLite's busy handler would sleep inside the call, blocking this process's event loop and
all its reads for up to the timeout. :func:`begin_immediate` instead retries with short ``asyncio.sleep`` pauses,
so the loop keeps serving while it waits, and gives up (SQLITE_BUSY, a 500) after the same 5 seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

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


def connect(file: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, ``synchronous = NORMAL``."""
    connection = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    connection.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


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
