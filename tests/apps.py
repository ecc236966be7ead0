"""The in-process app every test module builds the same way: created from its settings with the clock standing at
a fixed moment, so that due dates, decisions and tokens do not depend on the day the suite runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI

from fhir_server.app import create_app
from fhir_server.settings import Settings


def frozen_app(moment: datetime, settings: Settings, **options: Any) -> FastAPI:
    """``create_app(settings, **options)`` with its clock frozen at ``moment`` (tests move it with ``advance``)."""
    app = create_app(settings, **options)
    app.state.clock.freeze(moment)
    return app
