"""The server's one notion of "now".

``create_app`` builds one :class:`Clock` (or takes the one it is given) and hands the same instance to the store
(version times, outbox due times), the services, the delivery worker, notices, due times and reports, and keeps it
in ``app.state.clock``. No component reads the wall clock on its own, so a test that freezes or moves this clock
moves every component at once, and the suite means the same thing on any date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Now = Callable[[], datetime]
"""What a component needs of a clock: a call that answers the current UTC time (a :class:`Clock` is one)."""


def utc_now() -> datetime:
    """The machine's wall clock, in UTC: the source of a :class:`Clock` that is not frozen."""
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a clock time needs a time zone: {moment.isoformat()}")
    return moment.astimezone(timezone.utc)


class Clock:
    """A callable UTC clock that follows the wall clock until it is frozen at a moment (and moved from there).

    Freezing and moving change the instance in place, so every component holding it sees the new time: replace
    nothing, call :meth:`freeze` / :meth:`advance` / :meth:`unfreeze` on the one clock instead.
    """

    def __init__(self, frozen_at: datetime | None = None, source: Now = utc_now) -> None:
        self._source = source
        self._frozen: datetime | None = None if frozen_at is None else _aware(frozen_at)

    def __call__(self) -> datetime:
        return self._frozen if self._frozen is not None else self._source()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def freeze(self, moment: datetime) -> None:
        """Stop at ``moment`` (time-zone aware) until moved or unfrozen."""
        self._frozen = _aware(moment)

    def advance(self, by: timedelta | float) -> datetime:
        """Move a frozen clock forward by a timedelta or a number of seconds; answers the new time."""
        if self._frozen is None:
            raise RuntimeError("only a frozen clock can be moved: freeze() it first")
        self._frozen += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self._frozen

    def unfreeze(self) -> None:
        """Follow the source (the wall clock) again."""
        self._frozen = None
