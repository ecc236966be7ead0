"""A resource's search index in the shape the ``resources`` collection stores it.

:func:`fhir_server.search.index.extract_index` gives parameter -> values; MongoDB gets them as one flat
``_idx`` array of entries that name their parameter (so a fixed set of compound multikey indexes serves every
parameter), plus ``_sort``: parameter -> ``{"has": True, "asc": smallest, "desc": largest}``, what ``_sort`` on
that parameter orders by (as the SQLite store's MIN / MAX over its index rows).
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.index import IndexValue, extract_index
from fhir_server.storage.mongo.documents import INDEX_ENTRY_ATTRIBUTES

# The attribute a value sorts by, (ascending, descending): a date by its start / end, a string, uri or reference
# by its value, a token by its code. The first pair the parameter's values fill is the one.
SORT_ATTRIBUTES: tuple[tuple[str, str], ...] = (("low", "high"), ("value", "value"), ("code", "code"))


def _entry(param: str, value: IndexValue) -> dict[str, Any]:
    entry: dict[str, Any] = {"param": param}
    for attribute in INDEX_ENTRY_ATTRIBUTES:
        found = getattr(value, attribute)
        if found is not None:
            entry[attribute] = found
    return entry


def _sort_key(values: list[IndexValue]) -> dict[str, Any] | None:
    for ascending, descending in SORT_ATTRIBUTES:
        lows = [getattr(v, ascending) for v in values if getattr(v, ascending) is not None]
        highs = [getattr(v, descending) for v in values if getattr(v, descending) is not None]
        if lows and highs:
            return {"has": True, "asc": min(lows), "desc": max(highs)}
    return None


def search_fields(
    resource_type: str, resource: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(_idx entries, _sort keys)`` of a stored resource; a deletion marker has neither."""
    if resource is None:
        return [], {}
    index = extract_index(resource_type, resource)
    entries = [_entry(param, value) for param, values in index.items() for value in values]
    sort_keys = {param: key for param, key in ((p, _sort_key(values)) for p, values in index.items()) if key}
    return entries, sort_keys
