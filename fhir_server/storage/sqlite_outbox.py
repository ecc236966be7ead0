"""The SQLite store's transactional outbox: the ``outbox`` table and the statements on it.

A message is a row written on the same connection, inside the same ``BEGIN IMMEDIATE ... COMMIT``, as the
resources whose change it reports, so both commit or neither does. ``id`` is the primary key and enqueueing is
``INSERT OR IGNORE``: the same id twice is one message. A claim moves the due messages' ``next_attempt_at`` to
the lease's end inside one write transaction, which SQLite serialises across processes sharing the file, so two
workers never take the same message; a worker that dies mid-delivery leaves a lease that simply expires.
Undelivered messages are found through a partial index on ``next_attempt_at``; delivered ones cost it nothing.
A message that used up its attempts is parked (``dead_at`` set): claims skip it, ``outbox retry`` revives it.
Files made before ``max_attempts`` and ``dead_at`` existed get the columns at start-up (:data:`OUTBOX_COLUMNS_ADDED`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import orjson

from fhir_server.storage.base import OutboxMessage, OutboxSummary
from fhir_server.storage.versioning import format_timestamp

OUTBOX_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        destination TEXT NOT NULL,
        payload BLOB NOT NULL,
        headers BLOB NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at TEXT,
        max_attempts INTEGER,
        dead_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL",
    "CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, created_at)",
)

# Columns added after the table's first release: (name, declaration), added to older files by add_missing_columns.
OUTBOX_COLUMNS_ADDED: tuple[tuple[str, str], ...] = (("max_attempts", "INTEGER"), ("dead_at", "TEXT"))

_COLUMNS = ("id, channel, destination, payload, headers, created_at, next_attempt_at, attempts, last_error,"
            " delivered_at, max_attempts, dead_at")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _message(row: tuple[Any, ...]) -> OutboxMessage:
    """A row in :data:`_COLUMNS` order -> OutboxMessage."""
    message_id, channel, destination, payload, headers, created, due, attempts, error, delivered, cap, dead = row
    return OutboxMessage(
        id=message_id,
        channel=channel,
        destination=destination,
        payload=orjson.loads(payload),
        headers=orjson.loads(headers),
        created_at=_time(created),
        next_attempt_at=_time(due),
        attempts=attempts,
        last_error=error,
        delivered_at=_time(delivered),
        max_attempts=cap,
        dead_at=_time(dead),
    )


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring an outbox table made by an older release up to :data:`_COLUMNS` (a no-op on a current one)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for name, declaration in OUTBOX_COLUMNS_ADDED:
        if name not in present:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {declaration}")


def enqueue(db: sqlite3.Connection, message: OutboxMessage, now: datetime) -> bool:
    """Insert ``message`` unless its id exists; True when inserted. Runs in the caller's transaction."""
    created = message.created_at or now
    cursor = db.execute(
        f"INSERT OR IGNORE INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            message.channel,
            message.destination,
            orjson.dumps(message.payload),
            orjson.dumps(message.headers),
            format_timestamp(created),
            format_timestamp(message.next_attempt_at or created),
            message.attempts,
            message.last_error,
            format_timestamp(message.delivered_at) if message.delivered_at else None,
            message.max_attempts,
            format_timestamp(message.dead_at) if message.dead_at else None,
        ),
    )
    return cursor.rowcount == 1


def claim(db: sqlite3.Connection, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
    """Due undelivered messages, oldest first, leased until ``lease_until``. The caller holds a write
    transaction, so the select and the lease are one atomic step."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?"
        " ORDER BY created_at, rowid LIMIT ?",
        (format_timestamp(now), limit),
    ).fetchall()
    lease = format_timestamp(lease_until)
    db.executemany("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", [(lease, row[0]) for row in rows])
    return [_message(row[:6] + (lease,) + row[7:]) for row in rows]


def mark_delivered(db: sqlite3.Connection, message_id: str, at: datetime) -> None:
    db.execute("UPDATE outbox SET delivered_at = ? WHERE id = ?", (format_timestamp(at), message_id))


def mark_failed(db: sqlite3.Connection, message_id: str, error: str, next_attempt_at: datetime) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
        " WHERE id = ? AND delivered_at IS NULL",
        (error, format_timestamp(next_attempt_at), message_id),
    )


def mark_dead(db: sqlite3.Connection, message_id: str, error: str, at: datetime) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, dead_at = ? WHERE id = ? AND delivered_at IS NULL",
        (error, format_timestamp(at), message_id),
    )


def revive(db: sqlite3.Connection, message_ids: list[str] | None, now: datetime) -> int:
    """Dead messages (those named, or all) due again at ``now`` with their attempts reset; how many."""
    where, params = "dead_at IS NOT NULL AND delivered_at IS NULL", []
    if message_ids is not None:
        where += f" AND id IN ({', '.join('?' * len(message_ids))})"
        params = list(message_ids)
    cursor = db.execute(
        f"UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = ? WHERE {where}",
        [format_timestamp(now), *params],
    )
    return cursor.rowcount


def summary(db: sqlite3.Connection) -> OutboxSummary:
    pending, dead, delivered, oldest = db.execute(
        "SELECT COALESCE(SUM(delivered_at IS NULL AND dead_at IS NULL), 0),"
        " COALESCE(SUM(delivered_at IS NULL AND dead_at IS NOT NULL), 0),"
        " COALESCE(SUM(delivered_at IS NOT NULL), 0),"
        " MIN(CASE WHEN delivered_at IS NULL AND dead_at IS NULL THEN created_at END) FROM outbox"
    ).fetchone()
    return OutboxSummary(pending=pending, dead=dead, delivered=delivered, oldest_pending_at=_time(oldest))


def messages(db: sqlite3.Connection, channel: str | None) -> list[OutboxMessage]:
    where, params = ("WHERE channel = ?", [channel]) if channel is not None else ("", [])
    rows = db.execute(f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY created_at, rowid", params).fetchall()
    return [_message(row) for row in rows]


def delete_all(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM outbox")
