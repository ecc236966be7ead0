"""The one clock: what it does, that the app hands it to every component, and that nothing else tells time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fhir_server.app import create_app
from fhir_server.clock import Clock
from fhir_server.settings import PROJECT_ROOT, Settings

MOMENT = datetime(2029, 3, 11, 9, 59, 30, tzinfo=timezone.utc)  # a US daylight-saving change day


def test_a_clock_follows_its_source_until_frozen_then_moves_only_when_told():
    ticks = iter([MOMENT, MOMENT + timedelta(hours=1)])
    clock = Clock(source=lambda: next(ticks))
    assert clock() == MOMENT and not clock.frozen
    clock.freeze(datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert clock() == clock() == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert clock.advance(90) == datetime(2030, 1, 1, 0, 1, 30, tzinfo=timezone.utc)
    assert clock.advance(timedelta(days=1)) == datetime(2030, 1, 2, 0, 1, 30, tzinfo=timezone.utc)
    clock.unfreeze()
    assert clock() == MOMENT + timedelta(hours=1)


def test_a_clock_refuses_naive_times_and_moving_while_it_follows_its_source():
    with pytest.raises(ValueError):
        Clock(frozen_at=datetime(2030, 1, 1))
    with pytest.raises(RuntimeError):
        Clock().advance(1)
    # Another zone is kept as the same instant, in UTC.
    pacific = timezone(timedelta(hours=-8))
    assert Clock(frozen_at=datetime(2030, 1, 1, 16, tzinfo=pacific))() == datetime(2030, 1, 2, tzinfo=timezone.utc)


def test_the_app_gives_its_clock_to_the_store_and_the_capability_statement(tmp_path: Path):
    clock = Clock(frozen_at=MOMENT)
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'fhir.db'}"), clock=clock)
    assert app.state.clock is clock
    with TestClient(app) as client:
        assert client.get("/fhir/metadata").json()["date"] == "2029-03-11T09:59:30+00:00"
        clock.advance(timedelta(days=1))
        created = client.post("/fhir/Patient", json={"resourceType": "Patient", "active": True})
        assert created.status_code == 201, created.text
        assert created.json()["meta"]["lastUpdated"] == "2029-03-12T09:59:30.000+00:00"


WALL_CLOCK_READS = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(|time\.localtime\(")


def test_no_product_module_reads_the_wall_clock_but_the_clock_module():
    """Every component takes the app's clock; a module reading the wall clock itself would not move with it."""
    package = PROJECT_ROOT / "fhir_server"
    readers = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for path in package.rglob("*.py")
        if path.name != "clock.py" or path.parent != package
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WALL_CLOCK_READS.search(line.split("#", 1)[0])
    ]
    assert readers == []
