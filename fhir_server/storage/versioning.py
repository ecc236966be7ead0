"""What every store does the same way when it versions a resource: ids, stamping, write times, sort keys.

A store owns ``id``, ``meta.versionId`` and ``meta.lastUpdated``; the rules for those are the interface's, not a
backend's, so they live here once and both stores (SQLite, MongoDB) import them. Any difference between two
backends in what a client sees (an id accepted by one and refused by the other, a timestamp format, a history
method) would be a bug, which one shared implementation makes impossible.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from fhir_server.clock import Now, utc_now
from fhir_server.storage.base import OutboxMessage
from fhir_server.errors import bad_request, precondition_failed
from fhir_server.search.parameters import ParamType

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
ONE_MS = timedelta(milliseconds=1)

# The index attribute each parameter type sorts by: (ascending: the smallest, descending: the largest).
# A date sorts ascending by where it starts and descending by where it ends. Types absent here do not sort.
SORT_ATTRIBUTES: dict[ParamType, tuple[str, str]] = {
    "date": ("low", "high"),
    "string": ("value", "value"),
    "token": ("code", "code"),
    "reference": ("value", "value"),
    "uri": ("value", "value"),
}


def check_id(resource_id: Any) -> None:
    """Refuse (400) an id the client chose that is not a FHIR id, before anything is stored under it."""
    if not isinstance(resource_id, str) or not ID_PATTERN.match(resource_id):
        raise bad_request(f"'{resource_id}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)", "id")


def resource_type_of(resource: dict[str, Any]) -> str:
    """The resource's type, refusing (400) a body that names none: the store keys everything by it."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request("The resource has no resourceType", "resourceType")
    return resource_type


def update_target(resource: dict[str, Any]) -> tuple[str, str]:
    """``(type, id)`` of the resource an update writes; 400 when the body names no id or an invalid one."""
    resource_type = resource_type_of(resource)
    resource_id = resource.get("id")
    if not resource_id:
        raise bad_request("An update needs the resource id", "id")
    check_id(resource_id)
    return resource_type, resource_id


def check_if_match(reference: str, if_match: int | None, live_version: int | None) -> None:
    """412 unless ``if_match`` (the version the client last saw; None: no condition) is the current version
    (``live_version``: None when the resource does not exist or is deleted)."""
    if if_match is None or if_match == live_version:
        return
    found = f"version {live_version}" if live_version is not None else "no current version"
    raise precondition_failed(f"{reference}: If-Match expected version {if_match}, found {found}")


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``+00:00``: one fixed width, so text order is time order."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def ceil_to_millisecond(moment: datetime) -> datetime:
    """The first whole millisecond at or after ``moment``. Stored times are whole milliseconds, so a ``since``
    of 12:00:00.123456 must become .124 (not .123) for ``last_updated >= since`` to keep its meaning."""
    spare = moment.microsecond % 1000
    return moment + timedelta(microseconds=1000 - spare) if spare else moment


def stamp(resource: dict[str, Any], resource_id: str, version_id: int, last_updated: datetime) -> dict[str, Any]:
    """A copy of ``resource`` carrying the store-owned ``id``, ``meta.versionId`` and ``meta.lastUpdated``
    (first in ``meta``; the caller's other meta, profiles and tags, kept after them)."""
    client_meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    meta = {"versionId": str(version_id), "lastUpdated": format_timestamp(last_updated), **client_meta}
    return {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta, **body}


def history_method(version_id: int, deleted: bool) -> str:
    """The HTTP method a history bundle shows for a version: POST created it, DELETE removed it, PUT otherwise."""
    return "DELETE" if deleted else ("POST" if version_id == 1 else "PUT")


class MillisecondClock:
    """Write times at millisecond precision (what both stores keep) that strictly increase.

    Within one process every call returns a later time than the one before; ``previous`` (the resource's last
    stored version, which another process sharing the store may have written with a clock slightly ahead) is a
    floor too, so the versions of one resource strictly increase in time across processes and ``_since`` and
    history order never disagree with version order.
    """

    def __init__(self, now: Now = utc_now, last: datetime | None = None) -> None:
        self.now = now
        self.last = last

    def next(self, previous: datetime | None = None) -> datetime:
        moment = self.now()
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        floor = max((t for t in (self.last, previous) if t is not None), default=None)
        if floor is not None and moment <= floor:
            moment = floor + ONE_MS
        self.last = moment
        return moment

    def stamp_outbox(self, message: OutboxMessage) -> tuple[OutboxMessage, datetime]:
        """A new outbox message as stored, and its creation time. It is due at the clock's now (unless it says
        otherwise), so a worker on the same clock takes it at once; creation times strictly increase (they order
        the outbox), so messages are delivered in the order they were written even while the clock stands still."""
        due = message if message.next_attempt_at is not None else replace(message, next_attempt_at=self.now())
        return due, self.next()
