"""Resource -> search index values, shared by every store.

Each store persists the output of :func:`extract_index` next to the resource (rows in SQLite, an embedded
field in MongoDB) and answers a :class:`~fhir_server.search.query.SearchQuery` from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IndexValue:
    """One indexed value of one search parameter.

    token:     ``system`` (may be None) and ``code``; ``text`` holds a display/text for ``:text``.
    string:    ``value`` normalised (casefold, accents stripped); ``exact`` the original text.
    reference: ``value`` "Type/id" for local references (``ref_type`` / ``ref_id`` split), or the absolute URL.
    date:      ``low`` / ``high``: UTC ISO instants bounding the value's period (inclusive low, exclusive high).
    uri:       ``value``.
    """

    system: str | None = None
    code: str | None = None
    text: str | None = None
    value: str | None = None
    exact: str | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    low: str | None = None
    high: str | None = None


def extract_index(resource_type: str, resource: dict[str, Any]) -> dict[str, list[IndexValue]]:
    """Search parameter name -> its values in ``resource`` (parameters with no value are absent)."""
    raise NotImplementedError  # implemented with the search parameter table in search/parameters.py
