"""What only the embedded store promises: URLs, durability across reopen, WAL, throw-away ``:memory:``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fhir_server.storage.sqlite import SqliteStore


def test_from_url_forms():
    assert SqliteStore.from_url("sqlite:///data/fhir.db").path == "data/fhir.db"
    assert SqliteStore.from_url("sqlite:////var/lib/fhir.db").path == "/var/lib/fhir.db"
    assert SqliteStore.from_url("sqlite:///:memory:").in_memory
    with pytest.raises(ValueError):
        SqliteStore.from_url("postgres://x")


async def test_durable_file_survives_reopen_and_keeps_time_moving_forward(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "fhir.db"
    first = SqliteStore(path)
    await first.open()
    created = await first.create({"resourceType": "Patient", "gender": "male"}, resource_id="p")
    await first.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SqliteStore(path)
    await again.open()
    try:
        assert (await again.read("Patient", "p")).resource == created.resource
        updated, _ = await again.update(created.resource)
        assert updated.last_updated > created.last_updated
    finally:
        await again.close()


async def test_memory_store_is_a_throw_away_file():
    store = SqliteStore.from_url("sqlite:///:memory:")
    await store.open()
    await store.create({"resourceType": "Patient"}, resource_id="p")
    assert (await store.read("Patient", "p")).version_id == 1
    scratch = Path(store._scratch_dir)
    assert scratch.exists()
    await store.close()
    assert not scratch.exists()


async def test_operations_before_open_explain_themselves(tmp_path: Path):
    with pytest.raises(RuntimeError, match="not open"):
        await SqliteStore(tmp_path / "x.db").read("Patient", "p")
