"""The server's one notion of "now".

``create_app`` puts :func:`utc_now` in ``app.state.clock``; everything that decides by time (due dates, decision
times, retries, notifications) reads the clock from there, so a test fixes time in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
